#!/usr/bin/env bash
# Make sure the daemonless container tools are installed: buildah builds the image, podman runs it
# (make image-test), mmdebstrap makes a base image from Debian's packages where no registry with
# base images is reachable. Installs them from Debian when running as root, else says how.
set -euo pipefail
need=()
for tool in buildah podman mmdebstrap crun runc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
# uidmap: podman/buildah need newuidmap even as root for some setups; fuse-overlayfs/slirp4netns:
# rootless use. All small; installed together so a non-root user later finds them too.
pkgs=("${need[@]}" uidmap fuse-overlayfs slirp4netns)
if [[ $(id -u) -ne 0 ]]; then
  echo "missing: ${need[*]}; install with: sudo apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
echo "installing ${pkgs[*]} from Debian ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
for tool in buildah podman mmdebstrap crun runc; do command -v "$tool" >/dev/null; done
