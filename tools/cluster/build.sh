#!/usr/bin/env bash
# Build the local control plane's binaries (and helm) once into a cache outside the checkout.
# With --helm-only, just helm (prints its bin directory).
#
# The cache is keyed by a hash of the three go.mod/go.sum pairs, so a fresh clone on the same
# machine reuses it and a version bump rebuilds it. Prints the bin directory as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${MERGEWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mergeway}
# Stamp the real version into the binaries (as Kubernetes' own release build does); without it the
# API server reports v0.0.0-master and Helm charts gated on kubeVersion refuse to render.
kube_version=$(sed -nE 's/^(require)?[[:space:]]*k8s\.io\/kubernetes (v[0-9.]+).*/\2/p' "$here/kube/go.mod" | head -n1)
[[ -n "$kube_version" ]] || { echo "cannot read the k8s.io/kubernetes version from tools/kube/go.mod" >&2; exit 1; }
kube_minor=$(echo "$kube_version" | cut -d. -f2)
version_ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1"
version_ldflags+=" -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean"
version_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$kube_version -X k8s.io/client-go/pkg/version.gitMajor=1"
version_ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$kube_minor"
key=$( (echo "$version_ldflags"; cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum \
          "$here"/kwok/go.mod "$here"/kwok/go.sum) | sha256sum | cut -c1-16)
bin="$cache_root/cluster-$key/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

complete() {
  for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

# helm renders charts for previews; it has its own key so a helm bump does not rebuild the cluster.
helm_key=$(cat "$here"/helm/go.mod "$here"/helm/go.sum | sha256sum | cut -c1-16)
helm_bin="$cache_root/helm-$helm_key/bin"
if [[ ! -x "$helm_bin/helm" ]]; then
  echo "building helm ..." >&2
  mkdir -p "$helm_bin.partial"
  (cd "$here/helm" && CGO_ENABLED=0 GOFLAGS=-mod=mod \
     go build -trimpath -ldflags "-s -w" -o "$helm_bin.partial/helm" helm.sh/helm/v3/cmd/helm)
  rm -rf "$helm_bin" && mv "$helm_bin.partial" "$helm_bin"
fi
# --helm-only (the image build): helm's directory, without the cluster binaries.
if [[ "${1:-}" == "--helm-only" ]]; then
  echo "$helm_bin"
  exit 0
fi

if complete; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin.partial"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# -trimpath and no debug info keep the cache small; these are test binaries, not for debugging.
ldflags="-s -w"
start=$(date +%s)
build() {  # build <module dir> <package> <output name> [extra ldflags]
  echo "building $3 ..." >&2
  (cd "$here/$1" && go build -trimpath -ldflags "$ldflags ${4:-}" -o "$bin.partial/$3" "$2")
}
[[ -x "$bin.partial/etcd" ]] || build etcd go.etcd.io/etcd/server/v3 etcd
[[ -x "$bin.partial/kwok" ]] || build kwok sigs.k8s.io/kwok/cmd/kwok kwok
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  [[ -x "$bin.partial/$c" ]] || build kube "k8s.io/kubernetes/cmd/$c" "$c" "$version_ldflags"
done
rm -rf "$bin"
mv "$bin.partial" "$bin"
# Older versions' binaries are of no further use; keep the cache to one version.
for old in "$cache_root"/cluster-*/bin; do
  [[ "$old" == "$bin" || ! -d "$old" ]] || rm -rf "$(dirname "$old")"
done
echo "built in $(( $(date +%s) - start ))s: $(du -sh "$bin" | cut -f1) in $bin" >&2
echo "$bin"
