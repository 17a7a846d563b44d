#!/bin/bash
# gpt.train's speed and peak memory with and without the Makefile's malloc settings (MALLOC_MMAP_MAX_=0
# MALLOC_TRIM_THRESHOLD_=2147483647: up to 2.4x on VQ-VAE conv batches, but a pair arm's heap grew to 10 GiB while
# 2 GiB were live). Continues the shipped model on one make pretrain shard for STEPS steps, validating every 100,
# alternating the two settings ROUNDS times on the whole machine; prints per run the seconds per step over
# steps 50-100 (gpt.train's time-budget line) and the peak resident memory (GNU time).
#
#   scripts/bench_malloc.sh OUT DATA_SHARD [STEPS] [ROUNDS]
#   scripts/bench_malloc.sh outputs/malloc outputs/s26/data/shard_058 400 2
set -euo pipefail
OUT=$1; SHARD=$2; STEPS=${3:-400}; ROUNDS=${4:-2}
PY=${PYTHON:-.venv/bin/python}
D=$(dirname "$SHARD")
mkdir -p "$OUT"
for ROUND in $(seq "$ROUNDS"); do
  for SETTING in settings none; do
    RUN=$OUT/$SETTING-$ROUND
    rm -rf "$RUN"
    if [ $SETTING = settings ]; then ENV=(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647); else ENV=(); fi
    env -u MALLOC_MMAP_MAX_ -u MALLOC_TRIM_THRESHOLD_ "${ENV[@]}" /usr/bin/time -f "peak_kb %M" \
      $PY -m gpt.train config/gpt2-pretrain.yaml data.train="$SHARD/tokens.csv" data.val="$D/val/tokens.csv" \
      data.base_charset="$D/charset.txt" run_dir="$RUN" init_from=resources/models/ocr-ko-en optim.lr=5.0e-4 \
      optim.decay_steps=null trainer.max_steps="$STEPS" trainer.max_time="00:00:600:00" \
      trainer.val_check_interval=100 seed=0 > "$RUN.log" 2>&1
    echo "$SETTING round $ROUND: $(grep -o '[0-9.]* s per step over steps 50-100' "$RUN.log")," \
      "$(grep -o 'peak_kb [0-9]*' "$RUN.log")"
  done
done
