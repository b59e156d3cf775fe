#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium), with a CJK font and an emoji
# font so that the zh-CN screens and reactions render (and show in screenshots). Install what is
# missing when we may (root with apt-get); otherwise say how. No test tool downloads a browser.
set -euo pipefail
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || packages+=(fonts-wqy-microhei)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || packages+=(fonts-noto-color-emoji)
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing for the browser tests: ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  exit 0
fi
echo "warning: missing ${packages[*]}; the browser tests may be skipped or render boxes" \
     "(install with: sudo apt-get install ${packages[*]})" >&2
