#!/usr/bin/env bash
# The refresh job's Redis write rate against redis-benchmark, same server, same run.
#
#   bash benches/redis_writes.sh [MERCHANTS] [ROUNDS] [DATA_DIR]
#
# MERCHANTS (default 100000) merchants with 10 records each are generated
# into DATA_DIR (default: a temporary directory; an existing DATA_DIR with
# merchants.jsonl and records.jsonl is reused). One throw-away redis-server
# on a free loopback port (no persistence). Then ROUNDS (default 3) rounds,
# each:
#   1. baseline: FLUSHALL, then
#      redis-benchmark -P 64 -t set -d <mean projection JSON bytes> -n <2 x MERCHANTS> -r <MERCHANTS> -q
#   2. the refresh's write phase: benches/redis_writes.rs, i.e. FLUSHDB,
#      merchants upserted (marked for regrading), then timed: every
#      projection written with Store::put_projections in batches of 32,768.
# "Write rate" = projections landed per second. Each projection is one
# atomic per-merchant write (its JSON in an MSET, its regrade mark cleared,
# its due-index entry set or removed, in one MULTI/EXEC per chunk of 1,000
# projections with the chunk's change notice), so it does three kinds of
# work where the baseline does one SET: the ratio compares
# merchants per second with SETs per second of the same value size.
# Prints each round and the medians; the ratio is the median of the
# per-round ratios. Wrap it in `flock /tmp/bench.lock` on a shared machine.
set -euo pipefail

N=${1:-100000}
ROUNDS=${2:-3}
DATA=${3:-}
cd "$(dirname "$0")/.."

for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install redis-server redis-tools" >&2; exit 1; }
done

work=$(mktemp -d /tmp/redis-writes.XXXXXX)
port=""
cleanup() {
  if [ -n "$port" ]; then redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --locked --bin yisaozhi >&2
cargo bench --locked --bench redis_writes --no-run >&2
bench=$(cargo bench --locked --bench redis_writes --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*redis_writes[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "cannot find the redis_writes bench binary" >&2; exit 1; }

if [ -z "$DATA" ]; then DATA=$work/data; fi
if [ ! -f "$DATA/merchants.jsonl" ]; then
  target/release/yisaozhi gen --merchants "$N" --records $((N * 10)) --seed 3 --out "$DATA" >&2
fi
N=$(grep -c . "$DATA/merchants.jsonl")

# A free loopback port.
for p in $(shuf -i 20000-29999 -n 50); do
  if ! (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port" >&2; exit 1; }
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$work" --logfile "$work/redis.log" >/dev/null
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

size=$("$bench" --input "$DATA" --size-only | sed -n 's/^projection_bytes=\([0-9]*\).*/\1/p')
echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
echo "merchants $N, mean projection JSON $size bytes, redis-server on 127.0.0.1:$port"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base_all=(); ours_all=(); ratio_all=()
for r in $(seq "$ROUNDS"); do
  redis-cli -p "$port" flushall >/dev/null
  base=$(redis-benchmark -p "$port" -P 64 -t set -d "$size" -n $((N * 2)) -r "$N" -q 2>/dev/null \
    | tr '\r' '\n' | sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
  out=$("$bench" --redis "redis://127.0.0.1:$port" --input "$DATA")
  ours=$(echo "$out" | sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p')
  ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
  echo "round $r: redis-benchmark SET -P 64 -d $size: $base/s; put_projections: $ours projections/s ($(echo "$out" | tail -1)); ratio $ratio; load $(cut -d' ' -f1-3 /proc/loadavg)"
  base_all+=("$base"); ours_all+=("$ours"); ratio_all+=("$ratio")
done
echo "median: redis-benchmark $(printf '%s\n' "${base_all[@]}" | median)/s, put_projections $(printf '%s\n' "${ours_all[@]}" | median) projections/s, ratio $(printf '%s\n' "${ratio_all[@]}" | median) (target >= 0.5)"
echo "redis used_memory after the last round: $(redis-cli -p "$port" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p') bytes"
