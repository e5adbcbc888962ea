#!/usr/bin/env bash
# Service memory per cached projection: start the service with a view cache
# large enough for every merchant, read its memory from /proc/<pid>/status,
# scan every code once as JSON (caches the merchant's view, the verified
# token and the memoised JSON), read it again, scan every code once as the
# page (adds the memoised page), read it again.
#
#   bash benches/rss.sh [N=1000000] [DATA_DIR]
#   STORE=redis bash benches/rss.sh [N=1000000]
#   WALK=wrk bash benches/rss.sh ...   (one walk of both answers, by wrk)
#
# With DATA_DIR (an embedded store with issued codes, e.g. left by an
# earlier run) nothing is generated. Otherwise N merchants with one record
# each are generated, refreshed and issued codes. Reports RssAnon (heap;
# VmRSS also counts the mapped SQLite file) and bytes per merchant.
# STORE=redis puts them in a throw-away redis-server on a free port instead
# (needs redis-server): views read from Redis keep the projection's stored
# JSON and parse it only for a page, so their memory differs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
DATA=${2:-}
# YSZ_BIN=path: measure that binary instead of building this tree's.
if [[ -n ${YSZ_BIN:-} ]]; then
  B=$YSZ_BIN
else
  cargo build --release --quiet --bin yisaozhi
  B=$PWD/target/release/yisaozhi
fi
work=$(mktemp -d)
pid=
rpid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  [[ -n $rpid ]] && kill "$rpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [[ ${STORE:-embedded} == redis ]]; then
  [[ -z $DATA ]] || { echo "DATA_DIR is for the embedded store only" >&2; exit 2; }
  rp=$(free_port)
  redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
  rpid=$!
  for _ in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
  store="redis://127.0.0.1:$rp"
  keys=(--key-dir "$work/keys")
else
  store="embedded:${DATA:-$work/data}"
  keys=()
fi
if [[ -z $DATA ]]; then
  $B gen --merchants "$N" --records "$N" --seed 1 --out "$work/in" >/dev/null
  $B keys generate --store "$store" "${keys[@]}" >/dev/null
  $B refresh --store "$store" --merchants "$work/in/merchants.jsonl" --records "$work/in/records.jsonl" --full --rejects "$work/rejects.jsonl" >/dev/null 2>&1
  $B codes issue --all --out "$work/printed" --store "$store" "${keys[@]}" >/dev/null 2>&1
fi
$B codes list --store "$store" "${keys[@]}" | awk '{n=split($2,a,"/"); print a[n]}' >"$work/tokens.txt"
N=$(wc -l <"$work/tokens.txt")
port=$(free_port)
YSZ_CACHE_CAPACITY=$((N + N / 10)) $B serve --store "$store" "${keys[@]}" --listen "127.0.0.1:$port" 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
anon() { awk '/RssAnon/ {printf "%.0f\n", $2 * 1024}' "/proc/$pid/status"; }
walk() { # path-prefix
  awk -v p="$port" -v pre="$1" '{print "url = \"http://127.0.0.1:" p pre $0 "\"\noutput = \"/dev/null\""}' "$work/tokens.txt" >"$work/walk.cfg"
  curl -s --no-progress-meter -Z --parallel-max 16 -K "$work/walk.cfg" -w '%{http_code} %{size_download}\n' |
    awk '{c[$1]++; b+=$2} END {for (k in c) printf "%s×%s ", c[k], k; printf "body bytes %.0f/merchant", b/NR}'
}
misses() { curl -s "http://127.0.0.1:$port/metrics" | awk '/cache="merchant_views",result="miss"/ {print $2}'; }
sleep 1
a0=$(anon)
echo "merchants: $N; RssAnon at start: $((a0 / 1048576)) MiB"
if [[ ${WALK:-curl} == wrk ]]; then
  # One walk by wrk, each merchant's JSON and page one after the other:
  # at 10^6 curl's two walks outlast the views' safety TTL (240-360 s),
  # and views read first would be read again (or gone) by the end.
  awk '{print "/api/v1/scan/" $0; print "/s/" $0}' "$work/tokens.txt" >"$work/paths.txt"
  started=$(date +%s)
  wrk -t2 -c32 -d3600s -s benches/walk.lua "http://127.0.0.1:$port" -- "$work/paths.txt" 2 "$work/walked" >"$work/wrk.out" 2>&1 &
  wpid=$!
  until [[ -f $work/walked && $(wc -l <"$work/walked") -ge 2 ]]; do
    kill -0 "$wpid" 2>/dev/null || { cat "$work/wrk.out" >&2; exit 1; }
    sleep 1
  done
  kill -INT "$wpid"
  wait "$wpid" || true
  echo "JSON and page walk (wrk): $(grep '^walk thread' "$work/wrk.out" | tr '\n' ' ')in $(($(date +%s) - started)) s; view-cache misses $(misses)"
  sleep 2
  a2=$(anon)
  echo "JSON and page walk: RssAnon $((a2 / 1048576)) MiB, total $(((a2 - a0) / N)) bytes per merchant"
else
  echo "JSON walk: $(walk /api/v1/scan/); view-cache misses $(misses)"
  sleep 2
  a1=$(anon)
  echo "JSON walk: RssAnon $((a1 / 1048576)) MiB, +$(((a1 - a0) / N)) bytes per merchant (view + verified token + memoised JSON)"
  echo "page walk: $(walk /s/); view-cache misses $(misses)"
  sleep 2
  a2=$(anon)
  echo "page walk: RssAnon $((a2 / 1048576)) MiB, +$(((a2 - a1) / N)) bytes per merchant (memoised page); total $(((a2 - a0) / N)) bytes per merchant"
fi
# The answers of a sample of 200, and for comparison what they compress to
# whole (zlib level 6, about what the service's zlib-rs makes): the JSON
# answer's projection members on their own, the page after the head every
# scan page shares. A view keeps less than that: only its own text between
# the wording every answer holds (`scan::packed::Runs`), and the JSON head
# is written per answer.
shuf -n 200 --random-source=<(yes) "$work/tokens.txt" | while read -r t; do
  curl -s "http://127.0.0.1:$port/api/v1/scan/$t" | base64 -w0; echo -n " "
  curl -s "http://127.0.0.1:$port/s/$t" | base64 -w0; echo
done | python3 -c '
import sys, base64, zlib
def deflated(text, window=b""):
    z = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zdict=window) if window else zlib.compressobj(6, zlib.DEFLATED, -15, 9)
    return len(z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH))
n = 0; tot = [0] * 6
for line in sys.stdin:
    j, p = (base64.b64decode(x) for x in line.split())
    a = j.index(b",\"merchant\"") + 1; b = j.rindex(b",\"tips\"")
    h = p.index(b"<title>") + 7
    for i, v in enumerate([len(j), deflated(j[a:b]), a + len(j) - b, len(p), deflated(p[h:], p[:h]), len(zlib.compress(p))]):
        tot[i] += v
    n += 1
t = [v / max(n, 1) for v in tot]
print(f"answers of {n} merchants, mean: JSON {t[0]:.0f} B ({t[2]:.0f} B around the members), page {t[3]:.0f} B ({t[5]:.0f} B gzipped whole); compressed whole, for comparison: JSON members {t[1]:.0f} B, page after the shared head {t[4]:.0f} B")
'

