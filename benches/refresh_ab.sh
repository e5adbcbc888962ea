#!/usr/bin/env bash
# Full and incremental refresh of two builds, alternating, on the embedded
# store: A full, A incremental, B full, B incremental, RUNS times, each on a
# fresh store. Prints one CSV row per refresh (build, kind, wall seconds,
# peak RSS KiB) and the medians, so a change can be judged against the
# build before it in the same sitting.
#
#   bash benches/refresh_ab.sh BIN_A BIN_B DATA_DIR [RUNS=3]
#
# DATA_DIR holds merchants.jsonl, records.jsonl and delta/records.jsonl:
#   yisaozhi gen --merchants 1000000 --records 10000000 --seed 1 --as-of 2026-11-29 --out DATA_DIR
#   yisaozhi gen --merchants 1000000 --records 100000 --seed 2 --as-of 2026-11-30 --days 1 \
#     --first-record 10000000 --touch 10000 --records-only --out DATA_DIR/delta
set -euo pipefail
A=${1:?BIN_A}; B=${2:?BIN_B}; DATA=${3:?DATA_DIR}; RUNS=${4:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build,kind,wall_s,peak_rss_kib"
one() { # label bin kind store args...
  local label=$1 bin=$2 kind=$3 store=$4; shift 4
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" refresh --store "embedded:$store" "$@" \
    --rejects "$work/rejects-$label-$kind" >/dev/null 2>&1
  read -r wall rss <"$work/time"
  echo "$label,$kind,$wall,$rss"
}
for run in $(seq "$RUNS"); do
  for label in A B; do
    bin=$A; [[ $label == B ]] && bin=$B
    store="$work/store-$label-$run"
    one "$label" "$bin" full "$store" --merchants "$DATA/merchants.jsonl" \
      --records "$DATA/records.jsonl" --full --as-of 2026-11-29
    one "$label" "$bin" incremental "$store" --records "$DATA/delta/records.jsonl" --as-of 2026-11-30
    rm -rf "$store"
  done
done | tee "$work/rows"
for label in A B; do
  for kind in full incremental; do
    med=$(awk -F, -v l="$label" -v k="$kind" '$1==l && $2==k {print $3}' "$work/rows" | sort -n |
      awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "# median $label $kind: ${med} s"
  done
done
