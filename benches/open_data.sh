#!/usr/bin/env bash
# The open data export at scale (issue 22: 10^6 merchants in <= 60 s, bounded
# memory): N merchants and 10 N records (gen, seed 1), a full refresh into a
# fresh embedded store, then `yisaozhi export`, each under /usr/bin/time.
# Prints wall seconds and peak RSS of both, export / refresh (the baseline of
# the same run, same store), and the index. Then the same export at N/10
# merchants (a fresh store of the first N/10 merchants' data) for the RSS
# comparison: bounded memory means the peak does not grow with N.
#
#   bash benches/open_data.sh [N=1000000] [WORK=/tmp/ysz-open-data]
#   YSZ_BIN=path bash benches/open_data.sh ...   (measure that binary)
#   STORES=/dev/shm/x bash benches/open_data.sh ...  (stores and exports there,
#   e.g. on tmpfs when the disk is short: the 10^6 store takes about 6 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
WORK=${2:-/tmp/ysz-open-data}
if [[ -n ${YSZ_BIN:-} ]]; then
  B=$YSZ_BIN
else
  cargo build --release --quiet --bin yisaozhi
  B=$PWD/target/release/yisaozhi
fi
STORES=${STORES:-$WORK}
mkdir -p "$WORK" "$STORES"
timed() { # label, command...: prints "label wall_s peak_kib"
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" \
    || { cat "$WORK/$label.err" >&2; exit 1; }
  echo "$label $(cat "$WORK/time")"
}
run() { # n, data dir: refresh then export
  local n=$1 in=$2 store="embedded:$STORES/store-$1"
  rm -rf "$STORES/store-$n" "$STORES/out-$n"
  timed "refresh-$n" "$B" refresh --store "$store" --merchants "$in/merchants.jsonl" \
    --records "$in/records.jsonl" --as-of 2026-11-29 --full --rejects "$WORK/rejects-$n.jsonl"
  timed "export-$n" "$B" export --store "$store" --out "$STORES/out-$n" --as-of 2026-11-29
}
[[ -f $WORK/in/records.jsonl ]] ||
  "$B" gen --merchants "$N" --records $((N * 10)) --seed 1 --as-of 2026-11-29 --out "$WORK/in" >/dev/null
small=$((N / 10))
[[ -f $WORK/in-small/records.jsonl ]] ||
  "$B" gen --merchants "$small" --records $((small * 10)) --seed 1 --as-of 2026-11-29 --out "$WORK/in-small" >/dev/null
run "$N" "$WORK/in" | tee "$WORK/big.txt"
run "$small" "$WORK/in-small" | tee "$WORK/small.txt"
read -r _ rw _ < <(grep '^refresh' "$WORK/big.txt")
read -r _ ew er < <(grep '^export' "$WORK/big.txt")
read -r _ _ ser < <(grep '^export' "$WORK/small.txt")
python3 - "$rw" "$ew" "$er" "$ser" "$N" "$small" <<'PY'
import sys
rw, ew, er, ser, n, small = map(float, sys.argv[1:])
print(f"export {ew:.1f} s at {int(n)} merchants; refresh {rw:.1f} s; export/refresh {ew / rw:.3f}")
print(f"peak RSS of the export {er / 1024:.0f} MiB at {int(n)}, {ser / 1024:.0f} MiB at {int(small)}: ratio {er / ser:.2f}")
PY
cat "$STORES/out-$N/current/index.json"
