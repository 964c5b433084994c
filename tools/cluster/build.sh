#!/usr/bin/env bash
# Build the local control plane's binaries once into a cache outside the checkout.
#
# The cache is keyed by a hash of the three go.mod/go.sum pairs, so a fresh clone on the same
# machine reuses it and a version bump rebuilds it. Prints the bin directory as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${MERGEWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mergeway}
key=$(cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum \
          "$here"/kwok/go.mod "$here"/kwok/go.sum | sha256sum | cut -c1-16)
bin="$cache_root/cluster-$key/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

complete() {
  for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

if complete; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin.partial"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# -trimpath and no debug info keep the cache small; these are test binaries, not for debugging.
ldflags="-s -w"
start=$(date +%s)
build() {  # build <module dir> <package> <output name>
  echo "building $3 ..." >&2
  (cd "$here/$1" && go build -trimpath -ldflags "$ldflags" -o "$bin.partial/$3" "$2")
}
[[ -x "$bin.partial/etcd" ]] || build etcd go.etcd.io/etcd/server/v3 etcd
[[ -x "$bin.partial/kwok" ]] || build kwok sigs.k8s.io/kwok/cmd/kwok kwok
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  [[ -x "$bin.partial/$c" ]] || build kube "k8s.io/kubernetes/cmd/$c" "$c"
done
rm -rf "$bin"
mv "$bin.partial" "$bin"
echo "built in $(( $(date +%s) - start ))s: $(du -sh "$bin" | cut -f1) in $bin" >&2
echo "$bin"
