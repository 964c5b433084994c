#!/usr/bin/env bash
# `make image-test`: run the built image with podman as the chart runs it (non-root, read-only root
# filesystem, no capabilities) and check that
#   - the web process answers /healthz with the image's version, and /readyz (Redis reachable),
#   - the worker starts, connects to Redis (its Celery queues appear there) and reports ready,
#   - PID 1 is tini and the processes run as UID 10001; kubectl, helm and git are inside,
#   - secrets come from files (MERGEWAY_SECRETS_DIR), so no process's /proc/<pid>/environ holds one,
#   - kustomize (kubectl) and helm render inside the image under the same restrictions, confined
#     (Landlock: the worker refuses to start where the runtime does not allow it),
#   - `mergeway preview` of a small folder (a ConfigMap and a Secret) works from inside the image
#     against the local cluster, and masks the Secret's value. The cluster is the one CI started
#     (make cluster); run standalone, this script starts it and stops it again afterwards.
# A password-protected Redis is started for the test on a free port (Debian's redis-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/image/common.sh
source "$root/tools/image/common.sh"
bash "$root/tools/image/ensure.sh"
version=$(sed -nE 's/^__version__ = "([^"]+)"/\1/p' "$root/mergeway/__init__.py")
image=${MERGEWAY_IMAGE:-localhost/mergeway:$version}
podman_ image exists "$image" || { echo "no image $image: run make image first" >&2; exit 1; }

tmp=$(mktemp -d)
web=mergeway-test-web-$$ worker=mergeway-test-worker-$$ redis_pid= started_cluster=
cleanup() {
  [[ -z "$started_cluster" ]] || make -s -C "$root" cluster-down >/dev/null 2>&1 || true
  podman_ rm -f -t 5 "$web" "$worker" >/dev/null 2>&1 || true
  [[ -z "$redis_pid" ]] || kill "$redis_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "image-test FAILED: $*" >&2; for c in "$web" "$worker"; do echo "--- $c logs:" >&2; podman_ logs "$c" 2>&1 | tail -20 >&2 || true; done; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_until SECONDS DESCRIPTION COMMAND...: poll a condition, fail with DESCRIPTION on timeout.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || fail "timed out waiting for $what"
    sleep 0.5
  done
}

[[ $(podman_ image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$image") == "$version" ]] \
  || fail "the image label org.opencontainers.image.version is not $version"

password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
redis_port=$(free_port) web_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --requirepass "$password" --save '' --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
rcli() { redis-cli -p "$redis_port" --no-auth-warning -a "$password" "$@"; }
wait_until 20 "redis-server" rcli ping
printf 'rules:\n  - repositories: ["github:acme/*"]\n    clusters: [in-cluster]\n    namespaces: [shop]\n' >"$tmp/policy.yaml"
chmod 644 "$tmp/policy.yaml"

# As the chart runs it: read-only root, writable emptyDir-like tmpfs, no capabilities, no privilege gain.
# Limits: see run_limits in common.sh.
secure=(--network host "${run_limits[@]}" --read-only --cap-drop ALL --security-opt no-new-privileges
        --tmpfs /tmp --tmpfs /var/cache/mergeway:mode=1777 --tmpfs /home/mergeway:mode=1777)
# Secrets as the chart mounts them: one file per variable in the image's MERGEWAY_SECRETS_DIR.
secret_files() {  # DIR NAME=VALUE...
  local dir=$1; shift; mkdir -p "$dir"
  for pair in "$@"; do printf '%s' "${pair#*=}" >"$dir/${pair%%=*}"; done
  chmod -R a+rX "$dir"
}
secret_files "$tmp/secrets-web" "MERGEWAY_REDIS_PASSWORD=$password" \
  GITHUB_WEBHOOK_SECRET=image-test-github GITLAB_WEBHOOK_SECRET=image-test-gitlab
secret_files "$tmp/secrets-worker" "MERGEWAY_REDIS_PASSWORD=$password" \
  GITHUB_TOKEN=ghp_imagetest GITLAB_TOKEN=glpat-imagetest
run=(podman_ run -d "${secure[@]}"
     -v "$tmp/policy.yaml:/etc/mergeway/policy/policy.yaml:ro" -e MERGEWAY_POLICY_FILE=/etc/mergeway/policy/policy.yaml
     -e "REDIS_URL=redis://127.0.0.1:$redis_port/0" -e MERGEWAY_FORGES=github,gitlab)
"${run[@]}" --name "$web" -e "PORT=$web_port" -e WEB_CONCURRENCY=1 \
  -v "$tmp/secrets-web:/etc/mergeway/secrets:ro" "$image" mergeway-web >/dev/null
wait_until 60 "web /healthz" curl -fsS "http://127.0.0.1:$web_port/healthz"
body=$(curl -fsS "http://127.0.0.1:$web_port/healthz")
[[ "$body" == *"\"version\":\"$version\""* || "$body" == *"\"version\": \"$version\""* ]] || fail "/healthz said $body"
curl -fsS "http://127.0.0.1:$web_port/readyz" >/dev/null || fail "/readyz: the web process cannot reach Redis"
echo "web: /healthz $body, /readyz ok"

"${run[@]}" --name "$worker" -v "$tmp/secrets-worker:/etc/mergeway/secrets:ro" \
  "$image" mergeway-worker --concurrency 1 >/dev/null
# Celery's own "celery@<host> ready." record, parsed as the JSON log line it is: not any line that
# happens to contain "ready" (an error about a readiness probe, a task name) would do.
worker_ready() {
  podman_ logs "$worker" 2>&1 | python3 -c '
import json, re, sys
for line in sys.stdin:
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    if isinstance(entry, dict) and re.fullmatch(r"celery@\S+ ready\.", str(entry.get("msg", ""))):
        sys.exit(0)
sys.exit(1)'
}
queues_in_redis() { [[ -n $(rcli --scan --pattern '_kombu.binding.*' | head -n1) ]]; }
wait_until 90 "the worker to report ready" worker_ready
wait_until 30 "the worker's queues in Redis" queues_in_redis
echo "worker: ready, queues bound in Redis ($(rcli --scan --pattern '_kombu.binding.*' | tr '\n' ' '))"

for c in "$web" "$worker"; do
  [[ $(podman_ exec "$c" id -u) == 10001 ]] || fail "$c does not run as UID 10001"
  pid1=$(podman_ exec "$c" cat /proc/1/cmdline | tr '\0' ' ')
  [[ "$pid1" == */tini* ]] || fail "$c: PID 1 is $pid1, not tini"
  environs=$(podman_ exec "$c" sh -c 'cat /proc/[0-9]*/environ 2>/dev/null' | tr '\0' '\n')
  for secret in "$password" image-test-github ghp_imagetest glpat-imagetest; do
    [[ "$environs" != *"$secret"* ]] || fail "$c: a secret is in a process environment"
  done
done
podman_ exec "$worker" kubectl version --client=true >/dev/null || fail "kubectl missing in the image"
podman_ exec "$worker" helm version --short >/dev/null || fail "helm missing in the image"
podman_ exec "$worker" git --version >/dev/null || fail "git missing in the image"
# The worker's renderers as deployed (read-only root, UID 10001): a kustomization through the
# image's kubectl, and a Helm chart (this project's own) through its helm.
mkdir -p "$tmp/repo/app"
cp -r "$root/charts/mergeway" "$tmp/repo/chart"
printf 'resources: [cm.yaml]\n' >"$tmp/repo/app/kustomization.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\ndata: {a: b}\n' >"$tmp/repo/app/cm.yaml"
chmod -R a+rX "$tmp/repo"
rendered=$(podman_ run --rm "${secure[@]}" -v "$tmp/repo:/repo:ro" "$image" python -c '
from pathlib import Path
from mergeway.render import render
kustomized = render(Path("/repo"), "app", namespace="shop")
chart = render(Path("/repo"), "chart", namespace="shop", release="t", kube_version="v1.36.3")
print(len(kustomized.manifests), sorted({m.kind for m in chart.manifests}))') || fail "rendering inside the image"
[[ "$rendered" == "1 "*Deployment* ]] || fail "unexpected renders inside the image: $rendered"
echo "renderers: kustomize and helm work inside the image ($rendered)"

# The image doing real work: `mergeway preview` of a ConfigMap and a Secret against the local
# cluster's API server (127.0.0.1, reached through --network host), as the chart's user runs it.
# The cluster CI started is reused; standalone, one is started here (make cluster) and stopped at the end.
if kubeconfig=$("$root/.venv/bin/python" "$root/tools/cluster/localcluster.py" env 2>/dev/null | tail -n1); then
  echo "preview: using the running local cluster"
else
  echo "preview: no local cluster running: starting one with make cluster (stopped again at the end)"
  started_cluster=1
  kubeconfig=$(make -s -C "$root" cluster | tail -n1)
fi
kubeconfig=${kubeconfig#KUBECONFIG=}
[[ -f "$kubeconfig" ]] || fail "no kubeconfig for the local cluster ($kubeconfig)"
install -m 644 "$kubeconfig" "$tmp/kubeconfig"
secret_value=image-test-$(python3 -c 'import secrets; print(secrets.token_hex(8))')
mkdir -p "$tmp/preview"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: image-test-settings}\ndata: {greeting: hello-from-the-image}\n' \
  >"$tmp/preview/settings.yaml"
printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: image-test-credentials}\nstringData: {pin: %s}\n' \
  "$secret_value" >"$tmp/preview/credentials.yaml"
chmod -R a+rX "$tmp/preview"
set +e
preview=$(podman_ run --rm "${secure[@]}" -e NO_COLOR=1 -v "$tmp/preview:/preview:ro" \
  -v "$tmp/kubeconfig:/etc/mergeway/kubeconfig:ro" "$image" \
  mergeway preview --kubeconfig /etc/mergeway/kubeconfig -n default /preview 2>&1)
code=$?
set -e
# Exit 1: changes to show (0 would mean nothing to add, 2 an error).
[[ $code == 1 ]] || fail "mergeway preview inside the image exited $code: $preview"
[[ "$preview" == *"2 to add, 0 to change, 0 to prune"* ]] || fail "preview summary missing: $preview"
[[ "$preview" == *"add: ConfigMap/default/image-test-settings"* && "$preview" == *"greeting: hello-from-the-image"* ]] \
  || fail "the ConfigMap is not in the preview: $preview"
[[ "$preview" == *"add: Secret/default/image-test-credentials"* && "$preview" == *"pin: '***'"* ]] \
  || fail "the Secret is not in the preview, masked: $preview"
encoded=$(printf '%s' "$secret_value" | base64 -w0)
[[ "$preview" != *"$secret_value"* && "$preview" != *"$encoded"* ]] || fail "the preview shows the Secret's value"
echo "preview: mergeway preview inside the image planned the ConfigMap and the Secret, value masked"
echo "image-test passed: $image"
