#!/usr/bin/env bash
# The workbench at a province's size on the embedded store (DESIGN §11:
# search and the merchant page ≤ 50 ms to first byte, the dashboard
# ≤ 200 ms at 10^6 merchants).
#
#   bash benches/workbench.sh [DATA=/tmp/big] [ROUNDS=5]
#   STORE=redis bash benches/workbench.sh DATA [ROUNDS]
#
# STORE=redis: a throw-away redis-server on a free port, refreshed from
# DATA, and the in-process queries only (step 1).
#
# Uses DATA/merchants.jsonl and DATA/records.jsonl (made with
# `yisaozhi gen --merchants 1000000 --records 10000000 --seed 1
# --as-of 2026-11-29 --out DATA` if missing) and the store DATA/store
# (refreshed as of 2026-11-29 if missing, timed). Then:
#   1. the queries in process (`benches/workbench.rs`): searches, stats,
#      the dashboard's data, a ledger page; medians of ROUNDS runs beside
#      one projection read by id (the baseline); the days before the
#      refresh get copies of its daily counts, as twelve weeks of daily
#      refreshes would leave;
#   2. over HTTP, `yisaozhi serve` on the store: time to first byte (curl's
#      time_starttransfer) of each URL, ROUNDS times, median, beside
#      `/healthz` (the baseline); codes are issued to 1,000 merchants
#      first and 200 of them reclassified red, so the reprint queue is not
#      empty (each run adds to the store's codes and overrides).
# Rows are appended to benches/results/workbench.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/tmp/big}
ROUNDS=${2:-5}
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
cargo build --release --quiet --bin yisaozhi --example workbench
B=$PWD/target/release/yisaozhi
KIND=${STORE:-embedded}
STORE="embedded:$DATA/store"
CSV=benches/results/workbench.csv
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
say() { echo "# $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
at=$(date -u +%Y-%m-%dT%H:%MZ)
export COMMIT=$(git rev-parse --short HEAD) MACHINE=${MACHINE:-epyc-2c}
export COMMAND="bash benches/workbench.sh $*"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $KIND == redis ]]; then
  rp=$(free_port)
  redis-server --port "$rp" --save '' --appendonly no --dir "$work" >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
  STORE="redis://127.0.0.1:$rp"
  say "refreshing $DATA into $STORE"
  /usr/bin/time -f '%e s wall, %M KiB peak RSS' \
    $B refresh --store "$STORE" --merchants "$DATA/merchants.jsonl" --records "$DATA/records.jsonl" \
      --as-of 2026-11-29 --rejects "$work/rejects.jsonl" >/dev/null 2>"$work/refresh.err" \
    || { tail -5 "$work/refresh.err" >&2; exit 1; }
  say "refresh: $(tail -1 "$work/refresh.err"); Redis memory: $(redis-cli -p "$rp" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
  [[ -f $CSV ]] || echo "date,commit,target,case,figure,unit,baseline,ratio,command,machine,notes" >"$CSV"
  target/release/examples/workbench "$STORE" "$ROUNDS" "$CSV"
  exit 0
fi
if [[ ! -f $DATA/merchants.jsonl ]]; then
  say "generating 10^6 merchants and 10^7 records in $DATA"
  $B gen --merchants 1000000 --records 10000000 --seed 1 --as-of 2026-11-29 --out "$DATA" >/dev/null
fi
if [[ ! -f $DATA/store/yisaozhi.sqlite ]]; then
  say "refreshing into $STORE"
  /usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB peak RSS' \
    $B refresh --store "$STORE" --merchants "$DATA/merchants.jsonl" --records "$DATA/records.jsonl" \
      --as-of 2026-11-29 --rejects "$work/rejects.jsonl" >"$work/refresh.out" 2>"$work/refresh.err" \
    || { tail -5 "$work/refresh.err" >&2; exit 1; }
  say "refresh: $(tail -1 "$work/refresh.err")"
fi
[[ -f $CSV ]] || echo "date,commit,target,case,figure,unit,baseline,ratio,command,machine,notes" >"$CSV"

say "queries in process, $ROUNDS rounds"
target/release/examples/workbench "$STORE" "$ROUNDS" "$CSV"

say "over HTTP"
mkdir -p "$work/keys"
$B keys generate --store "$STORE" --key-dir "$work/keys" >/dev/null
token=$($B tokens add --store "$STORE" --name "bench-$at" --scope write 2>/dev/null)
port=$(free_port)
YSZ_LOG=warn $B serve --store "$STORE" --key-dir "$work/keys" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
base="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $token")
# Codes for 1,000 merchants, some of which a later regrade would put on
# the reprint queue; here it only has to be a real count.
for i in $(seq 1 1000); do
  printf 'url = "%s/api/v1/admin/merchants/M%07d/codes"\noutput = "/dev/null"\n' "$base" $((i * 997))
done >"$work/issue.cfg"
say "codes issued: $(curl -s --no-progress-meter -X POST "${auth[@]}" -Z --parallel-max 8 -K "$work/issue.cfg" -w '%{http_code}\n' | sort | uniq -c | xargs)"
# Reclassified after printing: 200 of them on the reprint queue.
for i in $(seq 1 200); do
  curl -s -o /dev/null -X PUT "${auth[@]}" -H 'content-type: application/json' \
    -d '{"grade":"red","reason":"基准测试：重新分级"}' "$base/api/v1/admin/merchants/M$(printf %07d $((i * 997)))/override"
done
say "reprint queue: $(curl -s "${auth[@]}" "$base/api/v1/admin/reprint" | python3 -c 'import sys, json; print(json.load(sys.stdin)["total"])')"

ttfb() { # url [curl args...] -> seconds to the first byte, median of ROUNDS
  for _ in $(seq "$ROUNDS"); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' "${@:2}" "$1"
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
ttfb_each() { # url... -> seconds to the first byte of each (once), median
  for u in "$@"; do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' "${auth[@]}" "$u"
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
cases=(
  "healthz (baseline)|/healthz"
  "merchant API page (cached)|/api/v1/merchants/M0500000"
  "search all page 1|/api/v1/admin/merchants"
  "search district red|/api/v1/admin/merchants?region=511504&grade=red"
  "search name 鑫源超市|/api/v1/admin/merchants?q=$(enc 鑫源超市)"
  "search name 超市 in district|/api/v1/admin/merchants?q=$(enc 超市)&region=511504"
  "search name 超市 everywhere|/api/v1/admin/merchants?q=$(enc 超市)"
  "stats all|/api/v1/admin/stats"
  "reprint queue|/api/v1/admin/reprint"
  "ledger first byte (district)|/api/v1/admin/merchants.csv?region=511504"
)
# The workbench's pages, when this build has them: a session first.
if [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/admin/login") == 200 ]]; then
  csrf=$(curl -s -c "$work/jar" "$base/admin/login" | grep -o 'name="csrf"[^>]*value="[^"]*"' | sed 's/.*value="//; s/"$//' || true)
  curl -s -b "$work/jar" -c "$work/jar" -o /dev/null -X POST --data-urlencode "token=$token" \
    --data-urlencode "csrf=$csrf" "$base/admin/login"
  auth+=(-b "$work/jar")
  cases+=(
    "page: dashboard|/admin"
    "page: search 超市|/admin/merchants?q=$(enc 超市)"
    "page: merchant|/admin/merchants/M0500000"
  )
else
  say "no workbench pages in this build (GET /admin/login is not 200): API figures only"
fi
healthz=""
row() { # case ms ratio notes: a row of benches/results/
  local target=workbench-first-byte base=$healthz ratio=$3
  [[ -z $healthz || $1 == healthz* ]] && { target=""; base=""; ratio=""; }
  [[ $1 == ledger* || $1 == reprint* ]] && target=""
  echo "$at,$COMMIT,$target,\"$1 (first byte over HTTP, embedded)\",$2,ms,$base,$ratio,$COMMAND,$MACHINE,\"median of $ROUNDS; $4; load average $(cut -d' ' -f1-3 /proc/loadavg)\"" >>"$CSV"
}
for c in "${cases[@]}"; do
  name=${c%%|*}; path=${c#*|}
  s=$(ttfb "$base$path" "${auth[@]}")
  ms=$(awk -v s="$s" 'BEGIN {printf "%.2f", s * 1000}')
  [[ -z $healthz ]] && healthz=$ms
  ratio=$(awk -v a="$ms" -v b="$healthz" 'BEGIN {printf "%.1f", a / b}')
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$base$path")
  echo "http: $name,$ms,$ratio,$code"
  row "$name" "$ms" "$ratio" "status $code"
done
# A merchant not read since the start: the store read on the way.
urls=(); for i in $(seq "$ROUNDS"); do urls+=("$base/api/v1/merchants/M$(printf %07d $((i * 7919 + 3)))"); done
ms=$(awk -v s="$(ttfb_each "${urls[@]}")" 'BEGIN {printf "%.2f", s * 1000}')
ratio=$(awk -v a="$ms" -v b="$healthz" 'BEGIN {printf "%.1f", a / b}')
echo "http: merchant API page (uncached),$ms,$ratio"
row "merchant API page (uncached)" "$ms" "$ratio" "$ROUNDS merchants, each once"
