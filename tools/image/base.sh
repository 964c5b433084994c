#!/usr/bin/env bash
# Make a minimal Debian base image from Debian's own packages with mmdebstrap, for machines that
# reach a Debian mirror but no container registry. Elsewhere the Dockerfile's default public base
# image is used instead (see tools/image/build.sh).
#
# The image holds what both Dockerfile stages need from the OS: Python 3.11 (with venv, for the
# build stage), CA certificates, git (the worker clones repositories), tini (PID 1) and tzdata
# (Celery needs the UTC zone).
# Usage: base.sh IMAGE_NAME   (imports IMAGE_NAME into the local container storage; cached by the
# package list and the suite, so a second call is a no-op)
set -euo pipefail
name=${1:?usage: base.sh IMAGE_NAME}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/image/common.sh
source "$here/common.sh"
suite=${MERGEWAY_DEBIAN_SUITE:-bookworm}
mirror=${MERGEWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3.11,python3.11-venv,ca-certificates,git,tini,tzdata
if buildah_ images --noheading --format '{{.Name}}:{{.Tag}}' | grep -qx "$name"; then
  echo "base image $name exists" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "making $name from Debian $suite with mmdebstrap ..." >&2
# variant=apt: essential packages + apt, no recommends; docs, man pages and locales are dropped as
# the official slim images do. The security suite keeps the base patched.
mmdebstrap --variant=apt --include="$packages" --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$suite" "$tmp/rootfs.tar" "deb $mirror $suite main" "deb $mirror $suite-updates main" \
  "deb ${mirror%/debian}/debian-security $suite-security main"
podman_ import --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$name" >/dev/null
echo "base image $name: $(podman_ image inspect --format '{{.Size}}' "$name" | numfmt --to=iec)" >&2
