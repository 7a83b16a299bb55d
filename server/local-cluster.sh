#!/usr/bin/env bash
# A local cluster: one Redis with the persistence the cluster's guarantees need (AOF,
# appendfsync always; its files in a temporary directory) and two server nodes that share
# it, on ports 60000 and 60001 (or the ports given as arguments). Ctrl-C stops them all.
#
#   server/local-cluster.sh [PORT...]      REDIS_PORT=6380 by default
#
# Then: target/release/client --server 127.0.0.1:60000,127.0.0.1:60001
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || {
  echo "local-cluster: redis-server is not installed (Debian: apt-get install redis-server)" >&2
  exit 1
}
redis_port=${REDIS_PORT:-6380}
ports=("$@")
[ ${#ports[@]} -gt 0 ] || ports=(60000 60001)
cargo build --release -q -p chat-server
dir=$(mktemp -d)
pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 0' INT TERM
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" --save "" \
  --appendonly yes --appendfsync always --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { echo "local-cluster: Redis did not start" >&2; exit 1; }
for port in "${ports[@]}"; do
  target/release/server --port "$port" --redis "redis://127.0.0.1:$redis_port" &
  pids+=($!)
done
echo "local-cluster: Redis on $redis_port, nodes on ${ports[*]}; connect with" \
  "target/release/client --server $(printf '127.0.0.1:%s,' "${ports[@]}" | sed 's/,$//')" >&2
wait
