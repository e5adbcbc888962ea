#!/usr/bin/env bash
# Scan p99 of two builds in alternation: both services on one Redis (N
# merchants with a code each), warmed together, then STEPS times the warm
# scan JSON of A, of B (the order swapped every step), the bare handler and
# the reference design (`moka`: one moka read of a pre-serialized body, as
# in load.sh), each at RATE req/s for 10 s with benches/constant_rate.rs. One CSV row a
# measurement (seconds since the warm-up began, server, p50, p99, p99.9 in
# ms, the service's store reads meanwhile, load average, the share of the
# machine's time the hypervisor took meanwhile): on a machine
# whose own noise moves p99 by milliseconds from one minute to the next, a
# change is judged against its baseline in the same minutes. Views fall due
# to be read again from about 180 s after the warm-up (the store reads).
#
#   bash benches/p99_ab.sh BIN_DIR_A BIN_DIR_B [RATE=25000] [STEPS=10] [N=100000]
#
# Each BIN_DIR holds the yisaozhi, bare_server and constant_rate binaries
# (cargo build --release --bin yisaozhi --example bare_server --example constant_rate).
set -euo pipefail
A=${1:?BIN_DIR_A}; B=${2:?BIN_DIR_B}; RATE=${3:-25000}; STEPS=${4:-10}; N=${5:-100000}
command -v redis-server >/dev/null || { echo "needs redis-server: apt-get install redis-server" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rp=$(free_port)
redis-server --port "$rp" --save '' --appendonly no --dir "$work" >/dev/null &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
store=redis://127.0.0.1:$rp
Y=$A/yisaozhi
$Y gen --merchants "$N" --records $((N * 3)) --seed 1 --out "$work/in" >/dev/null 2>&1
$Y keys generate --store "$store" --key-dir "$work/keys" >/dev/null
$Y refresh --store "$store" --merchants "$work/in/merchants.jsonl" --records "$work/in/records.jsonl" \
  --full --rejects "$work/rejects.jsonl" >/dev/null 2>&1
$Y codes issue --all --out "$work/printed" --store "$store" --key-dir "$work/keys" >/dev/null 2>&1
$Y codes list --store "$store" --key-dir "$work/keys" | awk '{n=split($2,a,"/"); print "/api/v1/scan/" a[n]}' >"$work/json.txt"
declare -A port
for l in A B; do
  bin=$A; [[ $l == B ]] && bin=$B
  port[$l]=$(free_port)
  YSZ_CACHE_CAPACITY=$((N * 2)) "$bin/yisaozhi" serve --store "$store" --key-dir "$work/keys" \
    --listen "127.0.0.1:${port[$l]}" 2>"$work/serve-$l.log" &
  pids+=($!)
done
port[bare]=$(free_port)
"$A/bare_server" "127.0.0.1:${port[bare]}" &
pids+=($!)
up() { # label path: waits up to 10 s for the server to answer, else stops
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:${port[$1]}$2" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server $1 did not answer on port ${port[$1]} within 10 s" >&2
  [[ -f $work/serve-$1.log ]] && tail -5 "$work/serve-$1.log" >&2
  exit 1
}
up A /healthz; up B /healthz; up bare /
# The reference: as many pre-serialized bodies as codes, each the size of a
# scan JSON answer.
size=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:${port[A]}$(head -1 "$work/json.txt")")
port[moka]=$(free_port)
"$A/bare_server" "127.0.0.1:${port[moka]}" "$work/json.txt" "$size" &
pids+=($!)
up moka "$(head -1 "$work/json.txt")"
reads() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^ysz_store_read_duration_seconds_count/ {print $2}'; }
t0=$(date +%s)
for l in A B; do
  awk -v p="${port[$l]}" '{print "url = \"http://127.0.0.1:" p $0 "\"\noutput = \"/dev/null\""}' "$work/json.txt" >"$work/walk.cfg"
  echo "# warm-up of $l: $(curl -s --no-progress-meter -Z --parallel-max 32 -K "$work/walk.cfg" -w '%{http_code}\n' | sort | uniq -c | xargs)" >&2
done
echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); A=$A B=$B; $RATE req/s" >&2
steal() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
echo "t_s,server,p50_ms,p99_ms,p999_ms,store_reads,load,steal_pct"
for i in $(seq "$STEPS"); do
  order="A B bare moka"; (( i % 2 == 0 )) && order="B A moka bare"
  for l in $order; do
    r0=0; [[ $l == [AB] ]] && r0=$(reads "${port[$l]}")
    read -r st0 all0 < <(steal)
    out=$("$A/constant_rate" "127.0.0.1:${port[$l]}" "$work/json.txt" "$RATE" 10 64)
    r1=0; [[ $l == [AB] ]] && r1=$(reads "${port[$l]}")
    read -r st1 all1 < <(steal)
    pct() { echo "$out" | grep -o "$1 [0-9.]*" | head -1 | cut -d' ' -f2; }
    echo "$(( $(date +%s) - t0 )),$l,$(pct p50),$(pct p99),$(pct p99.9),$((r1 - r0)),$(cut -d' ' -f1 /proc/loadavg),$(python3 -c "print(f'{100 * ($st1 - $st0) / max($all1 - $all0, 1):.1f}')")"
  done
done
