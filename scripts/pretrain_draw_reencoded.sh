#!/bin/bash
# make pretrain-draw on the last three shards (and val) of another make pretrain data folder, encoded anew by the
# shipped recognizer's VQ-VAE (after its thickness or encoder changed): scripts/reencode_data.sh into OUT/data, then
# scripts.pretrain_draw trains, judges and publishes there. Resumable: run it again to go on (MINUTES: its budget).
#   scripts/pretrain_draw_reencoded.sh OUT SOURCE_DATA
#   MINUTES=92 scripts/pretrain_draw_reencoded.sh outputs/draw6 outputs/pretrain/data
set -euo pipefail
if [ $# -ne 2 ]; then sed -n 2,6p "$0"; exit 2; fi
PY=${PYTHON:-.venv/bin/python}; OUT=$1
mkdir -p "$OUT"
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config; published_vq_config(Path('$OUT'))"
PYTHON=$PY scripts/reencode_data.sh "$2" "$OUT/published-vqvae.yaml" resources/models/ocr-ko-en/vqvae "$OUT/data"
$PY -m scripts.pretrain_draw --output "$OUT" --minutes "${MINUTES:-90}" --publish
