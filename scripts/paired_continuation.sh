#!/bin/bash
# Two continuations of a recognition export side by side, one core each, so both see the same machine: same
# shards, same rate schedule (warm-up, cosine over the time budget), same wall minutes; then export and
# evaluate both on the same held-out and real crops. What BENCHMARKS.md's paired continuations ran.
#
#   scripts/paired_continuation.sh OUT "A_OVERRIDES" "B_OVERRIDES" [MINUTES] [DATA] [INIT]
#   scripts/paired_continuation.sh outputs/grow "model.n_layer=4" "model.n_layer=8" 24
#
# DATA: a make pretrain data folder (default outputs/pretrain3/data; its last $WINDOW shards train, default 3, each
# with its tokens-augmented.csv where it has one);
# INIT: the export both start from (default the shipped model). Results: OUT/A.log, OUT/B.log, OUT/eval-{A,B}.json,
# each crop's readings in OUT/eval-{A,B}-predictions and their crop-by-crop comparison in OUT/compare.{txt,json}.
# An arm's overrides come last, so they may name its own data (data.train=DIR/tokens.csv: a shard rendered another
# way) or a step count for both (trainer.max_steps=N with MINUTES to spare: the time budget measures each arm's steps
# over steps 50-100, noisy enough to give one arm a fifth more steps).
set -euo pipefail
OUT=$1; A=$2; B=$3; MINUTES=${4:-24}; D=${5:-outputs/pretrain3/data}; INIT=${6:-resources/models/ocr-ko-en}
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
# each shard's encodings, as make pretrain trains on them
SHARDS=$($PY -c "import sys; from pathlib import Path; from scripts.pretrain import shard_encodings
print(','.join(str(path) for shard in sys.argv[1:] for path in shard_encodings(Path(shard))))" \
  $(ls -d "$D"/shard_* | tail -"${WINDOW:-3}"))
mkdir -p "$OUT"
for RUN in A B; do
  OVERRIDES=${!RUN}
  # shellcheck disable=SC2086  # the overrides are words
  OMP_NUM_THREADS=1 $PY -m gpt.train config/gpt2-pretrain.yaml data.train="$SHARDS" data.val="$D/val/tokens.csv" \
    data.base_charset="$D/charset.txt" run_dir="$OUT/$RUN" init_from="$INIT" optim.lr=1.0e-3 \
    optim.decay_steps=null trainer.max_steps=-1 trainer.max_time="00:00:$MINUTES:00" seed=0 $OVERRIDES \
    > "$OUT/$RUN.log" 2>&1 &
done
wait
for RUN in A B; do
  $PY -m gpt.export "$OUT/$RUN/config.yaml" "$OUT/$RUN/checkpoints/last.ckpt" --output "$OUT/$RUN-export" \
    >> "$OUT/$RUN.log" 2>&1
  PYTHON=$PY scripts/evaluate_sets.sh "$OUT/$RUN-export" "$D" "$OUT/eval-$RUN.json" | tee -a "$OUT/$RUN.log"
done
$PY -m scripts.compare_predictions "$OUT/eval-A-predictions" "$OUT/eval-B-predictions" --json "$OUT/compare.json" \
  | tee "$OUT/compare.txt"
