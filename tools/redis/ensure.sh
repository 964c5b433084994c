#!/usr/bin/env bash
# Make sure Debian's redis-server is installed (tests and `make run` start their own instances).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "redis-server is missing; install it with: sudo apt-get install -y redis-server" >&2
  exit 1
fi
echo "installing redis-server from Debian ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package starts a system service where systemd runs; we start our own instances instead.
command -v redis-server >/dev/null
