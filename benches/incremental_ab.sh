#!/usr/bin/env bash
# The incremental refresh of two builds, alternating, each on a fresh copy
# of one embedded store that a full refresh made: a change to the
# incremental path is judged against its baseline in the same minutes,
# without a full refresh (a minute at 10^6) before each run. The copy is
# flushed to disk (sync) before each run, as a full refresh's checkpoint
# leaves it. Prints one CSV row per run (build, wall, user and system CPU
# seconds, peak RSS KiB) and the medians.
#
#   bash benches/incremental_ab.sh BIN_A BIN_B STORE_DIR DELTA_RECORDS [RUNS=3] [AS_OF=2026-11-30]
#
# STORE_DIR: the data directory of an embedded store after the full
# refresh, e.g. (see BENCHMARKS.md for the data):
#   yisaozhi refresh --store embedded:STORE_DIR --merchants DATA/merchants.jsonl \
#     --records DATA/records.jsonl --full --as-of 2026-11-29
# DELTA_RECORDS: DATA/delta/records.jsonl. The copies go to TMPDIR (the
# store's size free there).
set -euo pipefail
A=${1:?BIN_A}; B=${2:?BIN_B}; STORE=${3:?STORE_DIR}; DELTA=${4:?DELTA_RECORDS}
RUNS=${5:-3}; AS_OF=${6:-2026-11-30}
[[ -d $STORE ]] || { echo "no store directory $STORE" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build,wall_s,user_s,sys_s,peak_rss_kib"
for run in $(seq "$RUNS"); do
  for label in A B; do
    bin=$A; [[ $label == B ]] && bin=$B
    rm -rf "$work/store"
    cp -r "$STORE" "$work/store"
    sync
    /usr/bin/time -f "%e,%U,%S,%M" -o "$work/time" "$bin" refresh --store "embedded:$work/store" \
      --records "$DELTA" --as-of "$AS_OF" --rejects "$work/rejects-$label" >/dev/null 2>"$work/log-$label"
    echo "$label,$(cat "$work/time")"
  done
done | tee "$work/rows"
rm -rf "$work/store"
for label in A B; do
  med=$(awk -F, -v l="$label" '$1==l {print $2}' "$work/rows" | sort -n |
    awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "# median $label: ${med} s"
done
