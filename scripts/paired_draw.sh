#!/bin/bash
# Two continuations of a drawing export side by side, one core each, so both see the same machine: same shards,
# same rate schedule (warm-up, cosine over the time budget), same wall minutes; then both, and the model they
# started from, judged by scripts.bench_draw on the same held-out prompts (best of 8, the shipped recognizer and
# Tesseract), one after another on the whole machine. The drawing model's counterpart of
# scripts/paired_continuation.sh; scripts.publish_draw_continuation publishes an arm that beats its start.
#
#   scripts/paired_draw.sh OUT "A_OVERRIDES" "B_OVERRIDES" [MINUTES] [DATA] [INIT]
#   scripts/paired_draw.sh outputs/drawrate "optim.lr=7.5e-4" "optim.lr=3.75e-4" 50 outputs/pretrain/data
#
# DATA: a make pretrain data folder (its last $WINDOW shards train, default 2); INIT: the export both start from
# (default the shipped drawing model). Results: OUT/A.log, OUT/B.log, OUT/bench-{A,B,published}/legibility.json.
set -euo pipefail
OUT=$1; A=$2; B=$3; MINUTES=${4:-50}; D=${5:-outputs/pretrain/data}; INIT=${6:-resources/models/ocr-ko-en-draw}
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
SHARDS=$(ls -d "$D"/shard_* | tail -"${WINDOW:-2}" | sed 's#$#/tokens.csv#' | paste -sd,)
mkdir -p "$OUT"
for RUN in A B; do
  OVERRIDES=${!RUN}
  # shellcheck disable=SC2086  # the overrides are words
  OMP_NUM_THREADS=1 $PY -m gpt.finetune config/gpt2-pretrain-finetune.yaml data.train="$SHARDS" \
    data.val="$D/val/tokens.csv" run_dir="$OUT/$RUN" init_from="$INIT" \
    trainer.max_time="00:00:$MINUTES:00" seed=0 $OVERRIDES > "$OUT/$RUN.log" 2>&1 &
done
wait
$PY -m scripts.bench_draw "$INIT" --output "$OUT/bench-published" --seed 0 > "$OUT/bench-published.log" 2>&1
for RUN in A B; do
  $PY -m scripts.bench_draw "$OUT/$RUN/export" --output "$OUT/bench-$RUN" --seed 0 >> "$OUT/$RUN.log" 2>&1
done
