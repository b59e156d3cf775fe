#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium). Install it when it is missing
# and we may (root with apt-get); otherwise say how. Browsers are never downloaded by a test tool.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "warning: /usr/bin/chromium is missing; the browser tests will be skipped" \
     "(install it with: sudo apt-get install chromium)" >&2
