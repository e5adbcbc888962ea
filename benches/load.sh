#!/usr/bin/env bash
# HTTP load benchmark, one run: build, generate N merchants, then ROUNDS
# times, one case after another: a bare actix-web handler (baseline), the
# reference design the targets were set against (one moka read returning a
# pre-serialized body, here of the scan JSON answer's size), the scan JSON
# with a warm cache, the scan page, the cold scan (view cache
# disabled: every scan reads the store), with STORE=redis the reference of
# the cold scan (one Redis GET of such a body through one shared connection
# manager), and the warm scan JSON for a client
# that accepts gzip, as phones do. Each case is wrk on random codes
# among the N merchants. Then, ROUNDS times, p99 latency at half the saturating warm rate
# with a constant-rate load generator (benches/constant_rate.rs).
#
#   bash benches/load.sh [N=100000] [SECONDS=10] [STORE=redis] [ROUNDS=3]
#
# STORE=redis (the default) starts a throw-away redis-server on a free port:
# the cold case is then a Redis read. STORE=embedded uses SQLite.
# Needs wrk (Debian: apt-get install wrk), curl, redis-server for
# STORE=redis (apt-get install redis-server).
# With PIN=1 the servers run on core 0 only and wrk (and Redis) on core 1,
# so a case's req/s is what one core of the service serves (deploy/SIZING.md).
# Prints req/s and the ratio of each case to the baseline of the same round,
# and the median of the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECS=${2:-10}
STORE_KIND=${3:-redis}
ROUNDS=${4:-3}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl: apt-get install curl" >&2; exit 1; }
# YSZ_BIN_DIR=dir: measure the yisaozhi, bare_server and constant_rate
# binaries in it (built earlier) instead of building this tree's.
if [[ -n ${YSZ_BIN_DIR:-} ]]; then
  BIN=$YSZ_BIN_DIR
  EX=$YSZ_BIN_DIR
else
  cargo build --release --quiet --bin yisaozhi --example bare_server --example constant_rate
  BIN=$PWD/target/release
  EX=$PWD/target/release/examples
fi
B=$BIN/yisaozhi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { echo "# $*" >&2; }
# PIN=1: servers on core 0, load generator and Redis on core 1.
on_server=(); on_client=()
if [[ ${PIN:-0} == 1 ]]; then on_server=(taskset -c 0); on_client=(taskset -c 1); fi

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
store="embedded:$work/data"
if [[ $STORE_KIND == redis ]]; then
  rp=$(free_port)
  "${on_client[@]}" redis-server --port "$rp" --save '' --appendonly no --dir "$work" >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
  store="redis://127.0.0.1:$rp"
fi
say "preparing $N merchants in $STORE_KIND"
$B gen --merchants "$N" --records $((N * 3)) --seed 1 --out "$work/in" >/dev/null
$B keys generate --store "$store" --key-dir "$work/keys" >/dev/null
$B refresh --store "$store" --merchants "$work/in/merchants.jsonl" --records "$work/in/records.jsonl" --full --rejects "$work/rejects.jsonl" >/dev/null 2>&1
$B codes issue --all --out "$work/printed" --store "$store" --key-dir "$work/keys" >/dev/null 2>&1
$B codes list --store "$store" --key-dir "$work/keys" | awk '{n=split($2,a,"/"); print "/api/v1/scan/" a[n]}' >"$work/json.txt"
sed 's#^/api/v1/scan/#/s/#' "$work/json.txt" >"$work/page.txt"
codes=$(wc -l <"$work/json.txt")
say "$codes codes"

run() { # url-file port [header...] -> req/s
  "${on_client[@]}" wrk -t2 -c64 -d"${SECS}s" -s benches/scan.lua "http://127.0.0.1:$2" -- "$1" "${@:3}" | awk '/Requests\/sec/ {print $2}'
}
wait_up() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return; curl -fs "http://127.0.0.1:$1/" >/dev/null 2>&1 && return; sleep 0.1; done; }
walk() { # port [curl option...]: request every code once, in order, 32 at a time
  awk -v p="$1" '{print "url = \"http://127.0.0.1:" p $0 "\"\noutput = \"/dev/null\""}' "$work/json.txt" >"$work/walk.cfg"
  curl -s --no-progress-meter -Z --parallel-max 32 -K "$work/walk.cfg" "${@:2}" -w '%{http_code}\n' | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}'
}
misses() { # port -> view-cache misses so far
  curl -s "http://127.0.0.1:$1/metrics" | awk '/ysz_cache_requests_total\{cache="merchant_views",result="miss"\}/ {print $2}'
}
reads() { # port -> store reads of views so far (misses, and views read again ahead of expiry)
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^ysz_store_read_duration_seconds_count/ {print $2}'
}

bp=$(free_port)
"${on_server[@]}" $EX/bare_server "127.0.0.1:$bp" &
bpid=$!; pids+=($!)
sp=$(free_port)
YSZ_CACHE_CAPACITY=$((N * 2)) "${on_server[@]}" $B serve --store "$store" --key-dir "$work/keys" --listen "127.0.0.1:$sp" 2>"$work/warm.log" &
spid=$!; pids+=($!)
cp=$(free_port)
YSZ_CACHE_CAPACITY=0 "${on_server[@]}" $B serve --store "$store" --key-dir "$work/keys" --listen "127.0.0.1:$cp" 2>"$work/cold.log" &
pids+=($!)
wait_up "$bp"; wait_up "$sp"; wait_up "$cp"
# The reference: as many pre-serialized bodies as codes, each the size of a
# scan JSON answer.
size=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$sp$(head -1 "$work/json.txt")")
mkp=$(free_port)
"${on_server[@]}" $EX/bare_server "127.0.0.1:$mkp" "$work/json.txt" "$size" &
mkpid=$!; pids+=($!)
wait_up "$mkp"
# The cold scan's reference, with Redis: the same bodies, one GET each.
if [[ $STORE_KIND == redis ]]; then
  rfp=$(free_port)
  "${on_server[@]}" $EX/bare_server "127.0.0.1:$rfp" "$work/json.txt" "$size" "redis://127.0.0.1:$rp" &
  pids+=($!)
  wait_up "$rfp"
fi

# Warm-up: every code once. On the warm service this fills the view cache
# (one miss per merchant); on the cold one it fills only the verified-token
# cache, which is on in both (a cold scan is a store read, not a verify).
t0=$(date +%s.%N)
say "warm-up walk (warm service): $(walk "$sp")in $(python3 -c "import time; print(f'{time.time()-$t0:.1f}')") s, view-cache misses $(misses "$sp")"
say "warm-up walk (warm service, gzip): $(walk "$sp" -H "Accept-Encoding: gzip")"
say "warm-up walk (cold service): $(walk "$cp")"

printf '%-6s %-28s %10s %6s\n' round case req/s ratio
declare -a B_ M_ W_ P_ C_ R_ G_
for r in $(seq "$ROUNDS"); do
  before=$(misses "$sp")
  bare=$(run "$work/json.txt" "$bp")
  moka=$(run "$work/json.txt" "$mkp")
  warm=$(run "$work/json.txt" "$sp")
  page=$(run "$work/page.txt" "$sp")
  cold=$(run "$work/json.txt" "$cp")
  rget=0
  if [[ $STORE_KIND == redis ]]; then rget=$(run "$work/json.txt" "$rfp"); fi
  gzip=$(run "$work/json.txt" "$sp" "Accept-Encoding: gzip, deflate")
  after=$(misses "$sp")
  B_+=("$bare"); M_+=("$moka"); W_+=("$warm"); P_+=("$page"); C_+=("$cold"); R_+=("$rget"); G_+=("$gzip")
  ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
  printf '%-6s %-28s %10s %6s\n' "$r" "bare actix handler" "$bare" "1.00"
  printf '%-6s %-28s %10s %6s\n' "$r" "moka + body of ${size} B" "$moka" "$(ratio "$moka" "$bare")"
  printf '%-6s %-28s %10s %6s\n' "$r" "scan JSON, warm cache" "$warm" "$(ratio "$warm" "$bare")"
  printf '%-6s %-28s %10s %6s\n' "$r" "scan page, warm cache" "$page" "$(ratio "$page" "$bare")"
  printf '%-6s %-28s %10s %6s\n' "$r" "scan JSON, cold ($STORE_KIND)" "$cold" "$(ratio "$cold" "$bare")"
  if [[ $STORE_KIND == redis ]]; then
    printf '%-6s %-28s %10s %6s\n' "$r" "Redis GET + body of ${size} B" "$rget" "$(ratio "$rget" "$bare")"
  fi
  printf '%-6s %-28s %10s %6s\n' "$r" "scan JSON, warm, gzip client" "$gzip" "$(ratio "$gzip" "$bare")"
  say "round $r: view-cache misses on the warm service during the round: $((after - before)); load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mb=$(median "${B_[@]}"); mm=$(median "${M_[@]}"); mw=$(median "${W_[@]}"); mp=$(median "${P_[@]}"); mc=$(median "${C_[@]}"); mg=$(median "${G_[@]}")
# ratios of medians and medians of the per-round ratios
mr() { # list-name
  local -n xs=$1; local out=()
  for i in "${!xs[@]}"; do out+=("$(python3 -c "print(${xs[$i]}/${B_[$i]})")"); done
  python3 -c "print(f'{$(median "${out[@]}"):.2f}')"
}
echo
printf '%-28s %10s %18s\n' "median of $ROUNDS rounds" req/s "ratio (median)"
printf '%-28s %10.0f %18s\n' "bare actix handler" "$mb" "1.00"
printf '%-28s %10.0f %18s\n' "moka + body of ${size} B" "$mm" "$(mr M_)"
printf '%-28s %10.0f %18s\n' "scan JSON, warm cache" "$mw" "$(mr W_)"
printf '%-28s %10.0f %18s\n' "scan page, warm cache" "$mp" "$(mr P_)"
printf '%-28s %10.0f %18s\n' "scan JSON, cold ($STORE_KIND)" "$mc" "$(mr C_)"
if [[ $STORE_KIND == redis ]]; then
  printf '%-28s %10.0f %18s\n' "Redis GET + body of ${size} B" "$(median "${R_[@]}")" "$(mr R_)"
fi
printf '%-28s %10.0f %18s\n' "scan JSON, warm, gzip client" "$mg" "$(mr G_)"
# The scans against their reference designs: the median of the per-round ratios.
against() { # scan-list reference-list
  local -n xs=$1 ys=$2
  python3 -c "
w, m = [$(IFS=,; echo "${xs[*]}")], [$(IFS=,; echo "${ys[*]}")]
r = sorted(a / b for a, b in zip(w, m)); n = len(r)
print(f'{(r[n // 2] if n % 2 else (r[n // 2 - 1] + r[n // 2]) / 2):.2f}')"
}
printf '%-28s %10s %18s\n' "scan JSON warm / moka ref." "" "$(against W_ M_)"
if [[ $STORE_KIND == redis ]]; then
  printf '%-28s %10s %18s\n' "scan JSON cold / Redis ref." "" "$(against C_ R_)"
fi

# p99 at half the saturating warm rate: a constant-rate generator
# (benches/constant_rate.rs, latency from each request's scheduled time, as
# wrk2 measures it), 64 connections, on random codes; then the same rate on
# the bare handler, for the latency the HTTP stack itself adds here, and
# the moka reference, for what the design the targets were set against
# gets here; ROUNDS times, and the median p99 of each.
# Each run also prints the server's CPU, how idle the machine was and how
# much of its time the hypervisor took (steal): with the generator on the
# same cores, a tail that grows while the machine has no idle time left is
# queueing for CPU, not the service stalling.
at_rate() { # server-pid port label
  local ticks0 ticks1 stat0 stat1 out
  ticks0=$(awk '{print $14 + $15}' "/proc/$1/stat"); stat0=$(head -1 /proc/stat)
  out=$("${on_client[@]}" $EX/constant_rate "127.0.0.1:$2" "$work/json.txt" "$rate" "$SECS" 64)
  echo "$out" | sed 's/^/  /'
  echo "$out" | grep -o 'p99 [0-9.]*' | awk '{print $2}' >>"$work/p99.$3"
  ticks1=$(awk '{print $14 + $15}' "/proc/$1/stat"); stat1=$(head -1 /proc/stat)
  python3 - "$ticks0" "$ticks1" "$stat0" "$stat1" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import sys
t0, t1, s0, s1, secs, hz = sys.argv[1:]
a = [int(x) for x in s0.split()[1:9]]
b = [int(x) for x in s1.split()[1:9]]
busy = [y - x for x, y in zip(a, b)]
total = max(sum(busy), 1)
print(f"  server CPU {(int(t1) - int(t0)) / int(hz) / float(secs):.2f} cores; machine idle {100 * busy[3] / total:.0f} %, stolen by the host {100 * busy[7] / total:.1f} %")
PY
}
rate=$(python3 -c "print(int($mw/2))")
for r in $(seq "$ROUNDS"); do
  echo "round $r: scan JSON at $rate req/s (half the median warm rate), ${SECS} s:"
  m0=$(misses "$sp"); r0=$(reads "$sp")
  at_rate "$spid" "$sp" scan
  echo "  view-cache misses during the run: $(( $(misses "$sp") - m0 )); store reads (misses and views read again ahead of expiry): $(( $(reads "$sp") - r0 ))"
  echo "round $r: bare handler at the same rate:"
  at_rate "$bpid" "$bp" bare
  echo "round $r: the moka reference at the same rate:"
  at_rate "$mkpid" "$mkp" moka
done
printf 'p99 at %s req/s, median of %s runs: scan JSON %s ms, bare handler %s ms, moka reference %s ms\n' "$rate" "$ROUNDS" \
  "$(median $(cat "$work/p99.scan"))" "$(median $(cat "$work/p99.bare"))" "$(median $(cat "$work/p99.moka"))"
# Every run, not only the median (the target holds in each).
each() { # label: every run's p99 and the worst
  echo "$(paste -sd/ "$work/p99.$1" | sed 's#/# / #g') ms (worst $(sort -g "$work/p99.$1" | tail -1))"
}
printf 'p99 of each run: scan JSON %s; bare handler %s; moka reference %s\n' "$(each scan)" "$(each bare)" "$(each moka)"
say "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
