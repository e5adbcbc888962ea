#!/usr/bin/env bash
# Two builds of the redis_writes bench (benches/redis_writes.rs) alternating
# on one throw-away redis-server, each round: FLUSHALL, the redis-benchmark
# baseline (as in redis_writes.sh), FLUSHALL, one build's write phase; A
# then B. Prints each run's projections/s, its ratio to the baseline just
# before it, and how long Redis spent in the scripts (slowlog, commands of
# 1 ms or more: the search index, projection and change-notice scripts).
#
#   bash benches/redis_writes_ab.sh BENCH_A BENCH_B DATA_DIR [ROUNDS=3]
#
# BENCH_A / BENCH_B: redis_writes bench binaries (`cargo bench --bench
# redis_writes --no-run` prints the path); DATA_DIR as in redis_writes.sh.
set -euo pipefail
A=$1 B=$2 DATA=$3 ROUNDS=${4:-3}
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install redis-server redis-tools" >&2; exit 1; }
done
work=$(mktemp -d /tmp/redis-writes-ab.XXXXXX)
port=""
cleanup() {
  if [ -n "$port" ]; then redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for p in $(shuf -i 20000-29999 -n 50); do
  if ! (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port" >&2; exit 1; }
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$work" --logfile "$work/redis.log" --slowlog-log-slower-than 1000 --slowlog-max-len 100000 >/dev/null
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
size=$("$A" --input "$DATA" --size-only | sed -n 's/^projection_bytes=\([0-9]*\).*/\1/p')
N=$(grep -c . "$DATA/merchants.jsonl")
# Milliseconds the slowlog holds, by command (scripts by their SHA1's first 8).
script_ms() {
  redis-cli -p "$port" slowlog get 100000 | python3 -c '
import sys, collections
lines = sys.stdin.buffer.read().decode("utf-8", "replace").split("\n")
ms = collections.Counter()
for i in range(len(lines) - 4):
    a, b, c = (l.strip() for l in lines[i:i + 3])
    if a.isdigit() and b.isdigit() and c.isdigit() and 10**9 < int(b) < 3 * 10**9:
        cmd = lines[i + 3].strip().upper()
        ms[cmd + (" " + lines[i + 4].strip()[:8] if cmd == "EVALSHA" else "")] += int(c) / 1000
print(", ".join(f"{k} {v:.0f} ms" for k, v in ms.most_common(3)))'
}
for r in $(seq "$ROUNDS"); do
  for which in A B; do
    bin=$A; [ "$which" = B ] && bin=$B
    redis-cli -p "$port" flushall >/dev/null
    base=$(redis-benchmark -p "$port" -P 64 -t set -d "$size" -n $((N * 2)) -r "$N" -q 2>/dev/null \
      | tr '\r' '\n' | sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    redis-cli -p "$port" flushall >/dev/null
    redis-cli -p "$port" slowlog reset >/dev/null
    rate=$("$bin" --redis "redis://127.0.0.1:$port" --input "$DATA" | sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p')
    echo "round $r $which: redis-benchmark $base SET/s; put_projections $rate projections/s; ratio $(awk -v a="$rate" -v b="$base" 'BEGIN {printf "%.3f", a / b}'); slowlog: $(script_ms); load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
