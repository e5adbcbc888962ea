#!/usr/bin/env bash
# `yisaozhi export` of one embedded store by two builds in alternation
# (A: the baseline, B: the build measured), RUNS times: wall seconds, CPU
# seconds (user + sys), peak RSS and the 1-minute load beside each, and
# whether the two builds' files are the same (SHA-256 of each file from its
# index.json; a build before d059180 writes OUT/index.json, a later one
# OUT/current/index.json). Each run holds /tmp/bench.lock. Prints CSV.
#
#   bash benches/open_data_ab.sh BIN_A BIN_B STORE_DIR OUT_DIR [RUNS=1]
set -euo pipefail
A=${1:?BIN_A}; B=${2:?BIN_B}; STORE=${3:?STORE_DIR}; OUT=${4:?OUT_DIR}; RUNS=${5:-1}
mkdir -p "$OUT"
shas() { # the files' SHA-256 as the export's index lists them
  local dir=$1/current
  [[ -f $dir/index.json ]] || dir=$1
  python3 -c 'import json,sys; print(" ".join(f["name"]+"="+f["sha256"] for f in json.load(open(sys.argv[1]))["files"]))' "$dir/index.json"
}
echo "build,run,wall_s,cpu_s,peak_rss_kib,load,files"
for run in $(seq "$RUNS"); do
  for label in A B; do
    bin=$A; [[ $label == B ]] && bin=$B
    out=$OUT/$label
    rm -rf "$out"
    load=$(cut -d' ' -f1 /proc/loadavg)
    flock /tmp/bench.lock /usr/bin/time -f '%e %U %S %M' -o "$OUT/time" "$bin" export \
      --store "embedded:$STORE" --out "$out" --as-of 2026-11-29 >/dev/null 2>"$OUT/err" ||
      { cat "$OUT/err" >&2; exit 1; }
    read -r wall user sys rss <"$OUT/time"
    shas "$out" >"$OUT/$label.sha"
    echo "$label,$run,$wall,$(python3 -c "print(round($user + $sys, 2))"),$rss,$load,$(md5sum <"$OUT/$label.sha" | cut -c1-12)"
  done
  if cmp -s "$OUT/A.sha" "$OUT/B.sha"; then echo "# run $run: the same files (SHA-256)"; else
    echo "# run $run: the files differ"; diff "$OUT/A.sha" "$OUT/B.sha" || true; fi
done
