#!/usr/bin/env bash
# Make sure Debian's chromium and chromium-driver are installed: the environments page's browser
# tests (tests/page) drive that Chromium headless through Selenium.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "chromium or chromedriver is missing; install them with: sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
echo "installing chromium and chromium-driver from Debian ..." >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a parallel job) holds the lock for a while: wait for it rather than fail.
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -qq >/dev/null
apt_get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
