#!/bin/bash
# One set of clean crops for the drawer's continuations: rendered by make pretrain's rule (its training fonts, its
# held-out words left out) with no augmentation (black on white: no colours, blur, noise, JPEG or rotation), then
# encoded by the shipped drawer's VQ-VAE. Skips what it finds done (DIR/labels.csv, DIR/tokens.csv). Used by
# scripts/pretrain_draw_clean.sh.
#
#   scripts/render_clean.sh DIR CROPS SEED SYLLABLE_SHARE VQ_CONFIG [PRETRAIN]
#   scripts/render_clean.sh outputs/drawclean/train 30000 9001 0.2 outputs/drawclean/draw-vqvae.yaml outputs/pretrain
#
# SYLLABLE_SHARE: render_text --syllable-share, the share of Korean texts drawn as 1-4 syllables uniform over the
# word pool's; VQ_CONFIG: vqvae.encode's config for the drawer's VQ-VAE (scripts.pretrain.published_vq_config).
set -euo pipefail
if [ $# -lt 5 ]; then sed -n 2,11p "$0"; exit 2; fi
DIR=$1; CROPS=$2; SEED=$3; SHARE=$4; VQ_CONFIG=$5; P=${6:-outputs/pretrain}
PY=${PYTHON:-.venv/bin/python}
# exit 1: some samples failed, listed in labels.csv.bad.csv; the rest were written
[ -f "$DIR/labels.csv" ] || $PY -m scripts.render_text --output "$DIR" --num-samples "$CROPS" --seed "$SEED" \
  --fonts "$P/fonts/train" --exclude-words "$P/data/heldout_words_all.txt" --augment none --syllable-share "$SHARE" \
  || [ $? -eq 1 ]
[ -f "$DIR/tokens.csv" ] || $PY -m vqvae.encode "$VQ_CONFIG" resources/models/ocr-ko-en-draw/vqvae \
  --dataset "$DIR/labels.csv" --output "$DIR/tokens.csv" --skip-bad
