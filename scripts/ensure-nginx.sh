#!/usr/bin/env bash
# The cluster tests (tests/e2e/test_cluster.py) and the cluster benchmark (bench/run.py --nodes)
# put Debian's nginx in front of several `enclave serve` processes. They run it as a child
# process with a configuration of their own (never the system service), so only the binary is
# needed. Install it when it is missing and we may (root with apt-get); otherwise say how.
# Nothing is downloaded at test time beyond this package.
set -euo pipefail
if [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing for the cluster tests: nginx"
  apt-get update -qq
  # policy-rc.d (where present) keeps the package from starting the system service; the tests
  # never use it either way.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
  exit 0
fi
echo "warning: nginx is missing; the cluster tests will be skipped (and fail in CI)" \
     "(install with: sudo apt-get install nginx)" >&2
