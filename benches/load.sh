#!/usr/bin/env bash
# HTTP load benchmark, one run: a bare actix-web handler (baseline), then the
# scan JSON with a warm cache, the scan page, and the cold scan (view cache
# disabled), each with wrk on random codes among N merchants.
#
#   bash benches/load.sh [N=100000] [SECONDS=10] [STORE=embedded]
#
# STORE=redis starts a throw-away redis-server on a free port for the cold
# scan. Needs wrk (Debian package `wrk`). Prints req/s and the ratio of each
# to the baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECS=${2:-10}
STORE_KIND=${3:-embedded}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin yisaozhi --example bare_server
B=$PWD/target/release/yisaozhi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

store="embedded:$work/data"
if [[ $STORE_KIND == redis ]]; then
  rp=$(free_port)
  redis-server --port "$rp" --save '' --appendonly no --dir "$work" >/dev/null &
  pids+=($!)
  sleep 0.5
  store="redis://127.0.0.1:$rp"
fi
$B gen --merchants "$N" --records $((N * 3)) --seed 1 --out "$work/in" >/dev/null
$B keys generate --store "$store" --key-dir "$work/keys" >/dev/null
$B refresh --store "$store" --merchants "$work/in/merchants.jsonl" --records "$work/in/records.jsonl" --full --rejects "$work/rejects.jsonl" >/dev/null
$B codes issue --all --out "$work/printed" --store "$store" --key-dir "$work/keys" >/dev/null 2>&1
$B codes list --store "$store" | awk '{n=split($2,a,"/"); print "/api/v1/scan/" a[n]}' > "$work/json.txt"
sed 's#^/api/v1/scan/#/s/#' "$work/json.txt" > "$work/page.txt"

run() { # url-file port -> req/s
  wrk -t2 -c64 -d"${SECS}s" -s benches/scan.lua "http://127.0.0.1:$2" -- "$1" | awk '/Requests\/sec/ {print $2}'
}
wait_up() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return; curl -fs "http://127.0.0.1:$1/" >/dev/null 2>&1 && return; sleep 0.1; done; }

bp=$(free_port)
target/release/examples/bare_server "127.0.0.1:$bp" & pids+=($!)
wait_up "$bp"
bare=$(run "$work/json.txt" "$bp")

sp=$(free_port)
YSZ_CACHE_CAPACITY=$((N * 2)) $B serve --store "$store" --key-dir "$work/keys" --listen "127.0.0.1:$sp" 2>/dev/null & pids+=($!)
wait_up "$sp"
run "$work/json.txt" "$sp" >/dev/null # warm the cache
warm=$(run "$work/json.txt" "$sp")
page=$(run "$work/page.txt" "$sp")

cp=$(free_port)
YSZ_CACHE_CAPACITY=0 $B serve --store "$store" --key-dir "$work/keys" --listen "127.0.0.1:$cp" 2>/dev/null & pids+=($!)
wait_up "$cp"
cold=$(run "$work/json.txt" "$cp")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-28s %10s %6s\n' "case" "req/s" "ratio"
printf '%-28s %10s %6s\n' "bare actix handler" "$bare" "1.00"
printf '%-28s %10s %6s\n' "scan JSON, warm cache" "$warm" "$(ratio "$warm" "$bare")"
printf '%-28s %10s %6s\n' "scan page, warm cache" "$page" "$(ratio "$page" "$bare")"
printf '%-28s %10s %6s\n' "scan JSON, cold ($STORE_KIND)" "$cold" "$(ratio "$cold" "$bare")"
