#!/bin/bash
# Two VQ-VAE recipes side by side, one core each, so both see the same machine: same crops, same wall minutes
# (config/vqvae-pretrain.yaml plus each side's overrides); then Tesseract on both reconstructions of the same
# held-out crops (scripts.bench_vq_legibility). What BENCHMARKS.md's larger-VQ-VAE comparison ran.
#
#   scripts/paired_vqvae.sh OUT "A_OVERRIDES" "B_OVERRIDES" [MINUTES] [DATA]
#   scripts/paired_vqvae.sh outputs/vqpair "" "model.num_codes=4096 model.hidden_channels=32" 30 outputs/pretrain4/data
#
# DATA: a make pretrain data folder: its first shard trains, its val validates, its heldout_en and
# heldout_ko_horizontal are read. Results: OUT/{A,B}.log, OUT/legibility-{A,B}/results.json and sheet.png.
set -euo pipefail
OUT=$1; A=$2; B=$3; MINUTES=${4:-30}; D=${5:-outputs/pretrain/data}
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
TRAIN=$(ls -d "$D"/shard_* | head -1)/labels.csv
mkdir -p "$OUT"
for RUN in A B; do
  OVERRIDES=${!RUN}
  # shellcheck disable=SC2086  # the overrides are words
  OMP_NUM_THREADS=1 $PY -m vqvae.train config/vqvae-pretrain.yaml data.train="$TRAIN" data.val="$D/val/labels.csv" \
    run_dir="$OUT/$RUN" data.num_workers=1 trainer.max_steps=-1 trainer.max_time="00:00:$MINUTES:00" $OVERRIDES \
    > "$OUT/$RUN.log" 2>&1 &
done
wait
for RUN in A B; do
  $PY -m scripts.bench_vq_legibility "$D/heldout_en/labels.csv:en" "$D/heldout_ko_horizontal/labels.csv:ko" \
    --model "$OUT/$RUN" --output "$OUT/legibility-$RUN" | tee -a "$OUT/$RUN.log" &
done
wait
