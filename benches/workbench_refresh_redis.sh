#!/usr/bin/env bash
# What the search index costs a Redis refresh: the full refresh of DATA_DIR
# into one fresh redis-server (flushed before each), two builds alternating,
# RUNS times. Prints build, wall seconds and Redis used_memory (bytes) after
# each; DATA_DIR holds merchants.jsonl and records.jsonl (`yisaozhi gen`).
#
#   bash benches/workbench_refresh_redis.sh BIN_A BIN_B DATA_DIR [RUNS=3]
set -euo pipefail
A=${1:?BIN_A}; B=${2:?BIN_B}; DATA=${3:?DATA_DIR}; RUNS=${4:-3}
work=$(mktemp -d)
rpid=""
trap '[[ -n $rpid ]] && kill "$rpid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save '' --appendonly no --dir "$work" >/dev/null &
rpid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "build,wall_s,used_memory_bytes"
for run in $(seq "$RUNS"); do
  for label in A B; do
    bin=$A; [[ $label == B ]] && bin=$B
    redis-cli -p "$port" flushall >/dev/null
    /usr/bin/time -f "%e" -o "$work/time" "$bin" refresh --store "redis://127.0.0.1:$port" \
      --merchants "$DATA/merchants.jsonl" --records "$DATA/records.jsonl" --as-of 2026-11-29 \
      --rejects "$work/rejects" >/dev/null 2>&1
    memory=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
    echo "$label,$(cat "$work/time"),$memory"
  done
done
