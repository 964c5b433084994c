#!/usr/bin/env bash
# Start a private redis-server for `make run` on 127.0.0.1:${REDIS_PORT:-6379} unless one answers there.
# Persistence as production needs it (docs/DECISIONS.md, "Failures"): an append-only file fsynced
# every second. A killed or restarted Redis loses nothing it acknowledged; a crash of the machine
# itself loses at most the last ~1 s (2 s worst case) of writes. No RDB snapshots: the AOF is enough.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/ensure.sh"
port=${REDIS_PORT:-6379}
state=${MERGEWAY_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/mergeway}/redis-$port
if redis-cli -p "$port" ping >/dev/null 2>&1; then
  exit 0
fi
mkdir -p "$state"
redis-server --port "$port" --bind 127.0.0.1 --dir "$state" --daemonize yes \
  --pidfile "$state/redis.pid" --logfile "$state/redis.log" --save "" --appendonly yes --appendfsync everysec
for _ in $(seq 50); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "redis-server did not answer on port $port; see $state/redis.log" >&2
exit 1
