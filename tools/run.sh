#!/usr/bin/env bash
# `make run`: Redis (if none answers), the web service, a worker and the scheduler (beat), from the
# Procfile's commands.
#
# Settings come from the environment and from .env (see .env.example). Without KUBECONFIG and
# MERGEWAY_CLUSTERS, the local cluster (`make cluster`) is the target: this script's default (Mergeway
# itself has none: an unset KUBECONFIG is the Kubernetes client's default, ~/.kube/config).
# Both processes validate their settings first and refuse to start, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .env ]]; then
  set -a; source .env; set +a
fi
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
if [[ "$REDIS_URL" == redis://127.0.0.1:* || "$REDIS_URL" == redis://localhost:* ]]; then
  port=${REDIS_URL#redis://*:}; port=${port%%/*}
  REDIS_PORT=$port bash tools/redis/start.sh
fi
if [[ -z "${KUBECONFIG:-}" && -z "${MERGEWAY_CLUSTERS:-}" ]]; then
  line=$(.venv/bin/python tools/cluster/localcluster.py up | tail -n1)
  export "${line?}"
  echo "target: the local cluster ($KUBECONFIG)"
fi
if [[ -z "${MERGEWAY_POLICY_FILE:-}" && -z "${MERGEWAY_POLICY:-}" ]]; then
  # Local default only: a shared install sets MERGEWAY_POLICY_FILE (see .env.example).
  export MERGEWAY_POLICY=allow-all
  echo "policy: allow-all (every repository may deploy anything; set MERGEWAY_POLICY_FILE to restrict)"
fi
export PATH="$PWD/.venv/bin:$PATH"
web=$(sed -n 's/^web: //p' Procfile)
worker=$(sed -n 's/^worker: //p' Procfile)
beat=$(sed -n 's/^beat: //p' Procfile)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
eval "exec_web() { exec $web; }"; exec_web & pids+=($!)
eval "exec_worker() { exec $worker; }"; exec_worker & pids+=($!)
eval "exec_beat() { exec $beat; }"; exec_beat & pids+=($!)
echo "web on ${MERGEWAY_BIND:-0.0.0.0:${PORT:-8080}} (pid ${pids[0]}), worker (pid ${pids[1]}), beat (pid ${pids[2]}); Ctrl-C stops them"
wait -n "${pids[@]}"
