#!/bin/bash
# Two continuations of the shipped drawer on clean crops side by side (scripts.pretrain_draw, one core each) that
# differ only in the share of Korean texts drawn as 1-4 syllables uniform over the pool's (render_text
# --syllable-share): the same seed, so the same fonts, English texts and word draws where the share does not
# intervene; the same validation crops, rate, schedule and wall minutes. Then the mean of the two arms' weights
# (scripts.average_exports: better than either arm in session 33, in one of session 34's two pairs) and the published
# drawer, judged by scripts.bench_draw on the same 200 prompts as the arms. Resumable: each step skips what it
# finds done (link OUT/soup/bench-published to an earlier bench of the published drawer to skip that one). Then:
#   python -m scripts.publish_draw_continuation OUT/soup/run --arms OUT/A/run OUT/B/run --cores 1 --history "..."
#
#   scripts/paired_draw_clean.sh OUT SHARE_A SHARE_B [MINUTES] [CROPS] [SEED]
#   scripts/paired_draw_clean.sh outputs/syllables 0.2 0.6 75 60000 9005
#
# Results: OUT/A.log, OUT/B.log, OUT/{A,B}/run/export, OUT/soup/run/export,
# OUT/{A,B,soup}/bench-run and OUT/soup/bench-published, each with legibility.json and prompts.csv.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,15p "$0"; exit 2; fi
OUT=$1; SHARE_A=$2; SHARE_B=$3; MINUTES=${4:-75}; CROPS=${5:-60000}; SEED=${6:-9005}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
arm() {  # arm NAME SHARE: one continuation on one core, in the background
  OMP_NUM_THREADS=1 $PY -m scripts.pretrain_draw --output "$OUT/$1" --minutes "$MINUTES" --crops "$CROPS" \
    --seed "$SEED" --syllable-share "$2" >> "$OUT/$1.log" 2>&1 &
}
arm A "$SHARE_A"; PID_A=$!
arm B "$SHARE_B"; PID_B=$!
STATUS=0; wait $PID_A || STATUS=$?; wait $PID_B || STATUS=$?
[ $STATUS -eq 0 ] || { echo "an arm failed (exit $STATUS): see $OUT/A.log and $OUT/B.log" >&2; exit $STATUS; }
[ -d "$OUT/soup/run/export" ] || \
  $PY -m scripts.average_exports "$OUT/A/run/export" "$OUT/B/run/export" --output "$OUT/soup/run/export"
[ -f "$OUT/soup/bench-run/legibility.json" ] || \
  $PY -m scripts.bench_draw "$OUT/soup/run/export" --output "$OUT/soup/bench-run" --seed 0
[ -f "$OUT/soup/bench-published/legibility.json" ] || \
  $PY -m scripts.bench_draw resources/models/ocr-ko-en-draw --output "$OUT/soup/bench-published" --seed 0
