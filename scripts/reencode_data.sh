#!/bin/bash
# A make pretrain data folder's last three shards and val encoded by another VQ-VAE, with the held-out sets and
# charset linked: what scripts/paired_continuation.sh needs to compare GPT recipes on a new VQ-VAE's tokens.
#
#   scripts/reencode_data.sh SRC_DATA VQ_CONFIG VQ_CHECKPOINT OUT_DATA
#   scripts/reencode_data.sh outputs/pretrain3/data outputs/vqlong/config.yaml outputs/vqlong/checkpoints/last.ckpt outputs/newvq/data
set -euo pipefail
SRC=$(realpath "$1"); CONFIG=$2; CKPT=$3; OUT=$4
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
mkdir -p "$OUT"
cp "$SRC/charset.txt" "$OUT/"
for SET in heldout_ko_horizontal heldout_ko_vertical heldout_en; do ln -sfn "$SRC/$SET" "$OUT/$SET"; done
for PART in $(ls -d "$SRC"/shard_* | tail -3 | xargs -n1 basename) val; do
  mkdir -p "$OUT/$PART"
  [ -f "$OUT/$PART/tokens.csv" ] && continue  # encoded by an earlier call (its sidecar names the VQ-VAE)
  # exit 1: some crops could not be normalized; they are listed in the .bad.csv beside the tokens
  $PY -m vqvae.encode "$CONFIG" "$CKPT" --dataset "$SRC/$PART/labels.csv" --output "$OUT/$PART/tokens.csv" \
    --skip-bad --no-progress || [ $? -eq 1 ]
done
