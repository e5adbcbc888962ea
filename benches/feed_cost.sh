#!/usr/bin/env bash
# What the change log (the feed and the caches' notices) costs a full
# refresh and Redis memory. One build, the log on and off in alternation
# (off: YSZ_BENCH_NO_CHANGE_LOG=1, a bench-only setting under which no
# backend writes any change; the reads of the stored grades that the
# comparison for a `grade` change takes stay, so "off" removes the log's
# writes), RUNS times each:
#   embedded: a full refresh of DATA_DIR into a fresh store under STORES;
#   redis:    the same into one redis-server, FLUSHALL before each run, then
#             INFO memory (used_memory) and MEMORY USAGE of every change-log
#             key, XLEN of its streams.
# Prints CSV: store,run,log,wall_s,cpu_s (the refresh's user + sys; on
# Redis plus redis-server's, from INFO cpu: on a shared machine CPU seconds
# move less than wall seconds),used_memory_bytes,changes (embedded: rows
# of the changes table; redis: entries in the feed stream), log_bytes
# (redis: MEMORY USAGE of the change-log keys), load.
#
#   bash benches/feed_cost.sh BIN DATA_DIR [RUNS=3] [STORES=/tmp] [WHICH="embedded redis"]
set -euo pipefail
B=${1:?BIN}; DATA=${2:?DATA_DIR}; RUNS=${3:-3}; STORES=${4:-/tmp}; WHICH=${5:-embedded redis}
work=$(mktemp -d)
rpid=""
trap '[[ -n $rpid ]] && kill "$rpid" 2>/dev/null; rm -rf "$work" "$STORES"/feed-cost-store' EXIT
refresh() { # store spec, log on|off
  local env=()
  [[ $2 == off ]] && env=(env YSZ_BENCH_NO_CHANGE_LOG=1)
  flock /tmp/bench.lock /usr/bin/time -f "%e %U %S" -o "$work/time" "${env[@]}" "$B" refresh \
    --store "$1" --merchants "$DATA/merchants.jsonl" --records "$DATA/records.jsonl" \
    --as-of 2026-11-29 --full --rejects "$work/rejects" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
}
load() { cut -d' ' -f1 /proc/loadavg; }
wall() { cut -d' ' -f1 "$work/time"; }
cpu() { # the refresh's CPU seconds, plus $1
  read -r _ user sys <"$work/time"
  python3 -c "print(round($user + $sys + ${1:-0}, 2))"
}
echo "store,run,log,wall_s,cpu_s,used_memory_bytes,changes,log_bytes,load"
if [[ " $WHICH " == *" embedded "* ]]; then
  for run in $(seq "$RUNS"); do
    for log in on off; do
      s=$STORES/feed-cost-store
      rm -rf "$s"
      refresh "embedded:$s" "$log"
      n=$(sqlite3 "file:$s/yisaozhi.sqlite?mode=ro" 'SELECT COUNT(*) FROM changes')
      echo "embedded,$run,$log,$(wall),$(cpu),,$n,,$(load)"
    done
  done
fi
if [[ " $WHICH " == *" redis "* ]]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # Above the builds sharing the machine: a reply later than the client's
  # 2 s response timeout fails the refresh.
  nice -n -5 redis-server --port "$port" --save '' --appendonly no --dir "$work" >/dev/null &
  rpid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  r() { redis-cli -p "$port" "$@"; }
  memory() { r info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
  server_cpu() { r info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {print s}'; }
  for run in $(seq "$RUNS"); do
    for log in on off; do
      r flushall >/dev/null
      r memory purge >/dev/null || true
      before=$(server_cpu)
      refresh "redis://127.0.0.1:$port" "$log"
      server=$(python3 -c "print($(server_cpu) - $before)")
      used=$(memory)
      bytes=0 entries=0
      while read -r key; do
        [[ -z $key ]] && continue
        b=$(r memory usage "$key" samples 0)
        bytes=$((bytes + ${b:-0}))
        if [[ $(r type "$key") == stream && $key == *feed ]]; then
          entries=$(r xlen "$key")
        fi
      done < <(r --scan --pattern '*{changes}*')
      echo "redis,$run,$log,$(wall),$(cpu "$server"),$used,$entries,$bytes,$(load)"
    done
  done
fi
