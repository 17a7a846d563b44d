#!/bin/bash
# The shipped recognizer continued on token CSVs and judged, as the CPU continuations run it: DATA's val encoded by
# the shipped VQ-VAE, gpt.train from the shipped export (config/gpt2-pretrain.yaml, seed 0, the overrides after),
# its export, and scripts/evaluate_sets.sh on DATA's held-out sets and the real crops. Every step is skipped when its
# output exists, and gpt.train resumes its last.ckpt. What scripts/cpu_continuation.sh and
# scripts/hard_example_continuation.sh share.
#
#   scripts/continue_published.sh OUT TRAIN_CSVS DATA "OVERRIDES"
#   scripts/continue_published.sh outputs/c outputs/pretrain/data/shard_072/tokens.csv outputs/pretrain/data \
#     "trainer.max_steps=3000 optim.lr=5.0e-5"
#
# Results: OUT/val, OUT/run, OUT/run-export, OUT/eval.json (and its -predictions folder), OUT/train.log.
set -euo pipefail
OUT=$1; TRAIN=$2; D=$3; OVERRIDES=$4
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
mkdir -p "$OUT"
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config; published_vq_config(Path('$OUT'))"
# val encoded by the same (shipped) VQ-VAE: DATA's own val may be an older VQ-VAE's tokens
[ -f "$OUT/val/tokens.csv" ] || $PY -m vqvae.encode "$OUT/published-vqvae.yaml" resources/models/ocr-ko-en/vqvae \
  --dataset "$D/val/labels.csv" --output "$OUT/val/tokens.csv" --skip-bad --no-progress || [ $? -eq 1 ]
# shellcheck disable=SC2086  # the overrides are words
$PY -m gpt.train config/gpt2-pretrain.yaml data.train="$TRAIN" data.val="$OUT/val/tokens.csv" \
  data.base_charset="$D/charset.txt" run_dir="$OUT/run" init_from=resources/models/ocr-ko-en optim.decay_steps=null \
  seed=0 $OVERRIDES >> "$OUT/train.log" 2>&1
[ -d "$OUT/run-export" ] || $PY -m gpt.export "$OUT/run/config.yaml" "$OUT/run/checkpoints/last.ckpt" \
  --output "$OUT/run-export" >> "$OUT/train.log" 2>&1
PYTHON=$PY scripts/evaluate_sets.sh "$OUT/run-export" "$D" "$OUT/eval.json"
