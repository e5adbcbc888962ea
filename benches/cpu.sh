#!/usr/bin/env bash
# Server CPU per request on the scan path: user and system time of the
# serving process (/proc/<pid>/stat) over a wrk run, divided by the requests
# it answered. Cases: the bare actix handler (baseline), the warm scan JSON,
# the warm scan page, the warm scan JSON for a client that accepts gzip
# (served from the view's memoised gzip body) and for one that accepts only
# deflate (compressed per request by the compression middleware).
#
#   bash benches/cpu.sh [N=100000] [SECONDS=6] [ROUNDS=2]
#
# Embedded store, throw-away data directory. Needs wrk and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECS=${2:-6}
ROUNDS=${3:-2}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin yisaozhi --example bare_server
B=$PWD/target/release/yisaozhi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
store="embedded:$work/data"
echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); preparing $N merchants" >&2
$B gen --merchants "$N" --records $((N * 3)) --seed 1 --out "$work/in" >/dev/null 2>&1
$B keys generate --store "$store" >/dev/null
$B refresh --store "$store" --merchants "$work/in/merchants.jsonl" --records "$work/in/records.jsonl" --full --rejects "$work/rejects.jsonl" >/dev/null 2>&1
$B codes issue --all --out "$work/printed" --store "$store" >/dev/null 2>&1
$B codes list --store "$store" | awk '{n=split($2,a,"/"); print "/api/v1/scan/" a[n]}' >"$work/json.txt"
sed 's#^/api/v1/scan/#/s/#' "$work/json.txt" >"$work/page.txt"
bp=$(free_port); sp=$(free_port)
target/release/examples/bare_server "127.0.0.1:$bp" &
pids+=($!); bare=$!
YSZ_CACHE_CAPACITY=$((N * 2)) $B serve --store "$store" --listen "127.0.0.1:$sp" 2>"$work/serve.log" &
pids+=($!); scan=$!
for p in "$bp" "$sp"; do for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.1; done; done
walk() { # [curl option...]: every code once
  awk -v p="$sp" '{print "url = \"http://127.0.0.1:" p $0 "\"\noutput = \"/dev/null\""}' "$work/json.txt" >"$work/walk.cfg"
  curl -s --no-progress-meter -Z --parallel-max 32 -K "$work/walk.cfg" "$@" -w '%{http_code}\n' | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}'
}
echo "# warm-up: $(walk) / gzip: $(walk -H 'Accept-Encoding: gzip')" >&2
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
measure() { # label pid port url-file [header...]
  local u0 s0 u1 s1 out
  read -r u0 s0 < <(ticks "$2")
  out=$(wrk -t2 -c64 -d"${SECS}s" -s benches/scan.lua "http://127.0.0.1:$3" -- "$4" "${@:5}")
  read -r u1 s1 < <(ticks "$2")
  python3 - "$1" "$out" "$u0" "$s0" "$u1" "$s1" "$hz" <<'PY'
import re, sys
label, out, u0, s0, u1, s1, hz = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
us = lambda t: t * 1e6 / hz / n
print(f"{label:<28} {rps:>10.0f} {us(u1 - u0):>8.2f} {us(s1 - s0):>8.2f} {us(u1 - u0 + s1 - s0):>8.2f}")
PY
}
printf '%-28s %10s %8s %8s %8s\n' case req/s "user µs" "sys µs" "total µs"
for r in $(seq "$ROUNDS"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  measure "bare actix handler" "$bare" "$bp" "$work/json.txt"
  measure "scan JSON, warm" "$scan" "$sp" "$work/json.txt"
  measure "scan page, warm" "$scan" "$sp" "$work/page.txt"
  measure "scan JSON, warm, gzip" "$scan" "$sp" "$work/json.txt" "Accept-Encoding: gzip"
  measure "scan JSON, warm, deflate" "$scan" "$sp" "$work/json.txt" "Accept-Encoding: deflate"
done
