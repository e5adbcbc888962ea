#!/usr/bin/env bash
# What the dashboard's work queues cost (pending reviews, read from their
# region's range of the pending index; overdue patrols, counted exactly up
# to MAX_PATROL_CHECKS = 3,000 merchants on grids, a lower bound past it):
# the first byte of `/admin` over HTTP before and after a grid of
# ASSISTANTS × 30 merchants (default 50: 1,500, counted in full; 150: 4,500,
# past the bound) and 20 pending submissions, beside `/healthz` (the
# baseline), all in one run on the embedded store.
#
#   bash benches/workbench_queues.sh [DATA=/tmp/wq100k] [ROUNDS=9] [MERCHANTS=100000]
#
# Makes DATA/merchants.jsonl and DATA/records.jsonl with `yisaozhi gen`
# (MERCHANTS, 10 records each) and refreshes them into DATA/store if
# missing; the roster and the grid are written into that store (re-runs
# keep them). Rows are appended to benches/results/workbench_queues.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/tmp/wq100k}
ROUNDS=${2:-9}
MERCHANTS=${3:-100000}
ASSISTANTS=${ASSISTANTS:-50}
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
cargo build --release --quiet --bin yisaozhi
B=$PWD/target/release/yisaozhi
STORE="embedded:$DATA/store"
CSV=benches/results/workbench_queues.csv
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
say() { echo "# $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
at=$(date -u +%Y-%m-%dT%H:%MZ)
COMMIT=$(git rev-parse --short HEAD)
MACHINE=${MACHINE:-epyc-2c}
COMMAND="bash benches/workbench_queues.sh $*"
say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ ! -f $DATA/merchants.jsonl ]]; then
  say "generating $MERCHANTS merchants in $DATA"
  $B gen --merchants "$MERCHANTS" --records $((MERCHANTS * 10)) --seed 1 --out "$DATA" >/dev/null
fi
if [[ ! -f $DATA/store/yisaozhi.sqlite ]]; then
  say "refreshing into $STORE"
  $B refresh --store "$STORE" --merchants "$DATA/merchants.jsonl" --records "$DATA/records.jsonl" \
    --rejects "$work/rejects.jsonl" >/dev/null 2>"$work/refresh.err" \
    || { tail -5 "$work/refresh.err" >&2; exit 1; }
fi
[[ -f $CSV ]] || echo "date,commit,target,case,figure,unit,baseline,ratio,command,machine,notes" >"$CSV"

mkdir -p "$work/keys"
$B keys generate --store "$STORE" --key-dir "$work/keys" >/dev/null
token=$($B tokens add --store "$STORE" --name "bench-$at" --scope write 2>/dev/null)
port=$(free_port)
YSZ_LOG=warn $B serve --store "$STORE" --key-dir "$work/keys" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $token")
csrf=$(curl -s -c "$work/jar" "$base/admin/login" | grep -o 'name="csrf"[^>]*value="[^"]*"' | sed 's/.*value="//; s/"$//' || true)
curl -s -b "$work/jar" -c "$work/jar" -o /dev/null -X POST --data-urlencode "token=$token" \
  --data-urlencode "csrf=$csrf" "$base/admin/login"

ttfb() { # url [curl args...] -> milliseconds to the first byte, median of ROUNDS
  for _ in $(seq "$ROUNDS"); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' "${@:2}" "$1"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] * 1000}'
}
row() { # case ms baseline_ms notes
  local ratio
  ratio=$(awk -v a="$2" -v b="$3" 'BEGIN {printf "%.2f", a / b}')
  echo "queues: $1,$2 ms,baseline $3 ms,ratio $ratio" >&2
  echo "$at,$COMMIT,workbench-first-byte,\"$1 (first byte over HTTP, embedded, $MERCHANTS merchants)\",$2,ms,$3,$ratio,$COMMAND,$MACHINE,\"median of $ROUNDS; $4; load average $(cut -d' ' -f1-3 /proc/loadavg)\"" >>"$CSV"
}
queue_text() { curl -s -b "$work/jar" "$base/admin" | grep -o 'id="\(pending-reviews\|overdue-patrols\)"><a [^>]*>[^<]*' | sed 's/.*>//' | xargs; }

# Each timed step holds the machine's benchmark lock.
exec 9>/tmp/bench.lock
flock 9
healthz=$(ttfb "$base/healthz")
before=$(ttfb "$base/admin" -b "$work/jar")
flock -u 9
say "before: $(queue_text)"

# ASSISTANTS assistants of 511504, 30 merchants each; 20 shops' pending submissions.
for i in $(seq -w 1 "$ASSISTANTS"); do
  echo "{\"id\": \"BA-$i\", \"name\": \"协管员$i\", \"unit\": \"基准网格站\", \"region\": \"511504\", \"role\": \"assistant\"}"
done >"$work/roster.jsonl"
$B inspectors import --store "$STORE" "$work/roster.jsonl" >/dev/null
$B grid assign --store "$STORE" --per-assistant 30 >/dev/null
ids=$(curl -s "${auth[@]}" "$base/api/v1/admin/merchants?region=511504&per_page=20" | python3 -c 'import sys, json; print(" ".join(i["id"] for i in json.load(sys.stdin)["items"]))')
today=$(TZ=Asia/Shanghai date +%F)
for id in $ids; do
  code=$(curl -s -X POST "${auth[@]}" "$base/api/v1/admin/merchants/$id/access" | python3 -c 'import sys, json; print(json.load(sys.stdin)["activation_code"])')
  shop=$(curl -s -X POST --data-urlencode "merchant_id=$id" --data-urlencode "activation_code=$code" "$base/api/v1/shop/token" | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $shop" -H 'content-type: application/json' \
    -d "{\"report_type\": \"invoice\", \"date\": \"$today\"}" "$base/api/v1/shop/self-reports"
done
flock 9
after=$(ttfb "$base/admin" -b "$work/jar")
flock -u 9
shown=$(queue_text)
say "after: $shown"

row "healthz (baseline)" "$healthz" "$healthz" "the baseline"
row "page: dashboard, no grid, empty review queue" "$before" "$healthz" "against healthz"
row "page: dashboard, $((ASSISTANTS * 30)) merchants on grids, 20 pending reviews" "$after" "$healthz" "against healthz; shows: $shown"
row "page: dashboard with the queues, against the dashboard without" "$after" "$before" "the same run; shows: $shown"
