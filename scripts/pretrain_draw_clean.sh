#!/bin/bash
# The shipped drawer continued on crops rendered clean: make pretrain's fonts, texts and held-out words, but no
# augmentation (black on white: no colours, blur, noise, JPEG or rotation), encoded by the drawer's own 4-code
# VQ-VAE; then gpt.finetune from the published drawer at make pretrain-draw's continuation rate for MINUTES, and
# scripts.bench_draw on the same 200 prompts and seed. What made the drawers published in session 32 (session 33:
# two such runs side by side, scripts/paired_draw_clean.sh, averaged; BENCHMARKS.md). Resumable: every step
# skips what it finds done. Then, to publish when it reads back better:
#   python -m scripts.publish_draw_continuation OUT/run --cores 2 --history "..."   (OUT/bench-published: the
#   published drawer's bench_draw folder on the same prompts, judged by today's recognizer)
#
#   scripts/pretrain_draw_clean.sh OUT [MINUTES] [CROPS] [PRETRAIN] [SEED] [SYLLABLE_SHARE]
#   scripts/pretrain_draw_clean.sh outputs/drawclean 55 30000 outputs/pretrain 9001 0.2  (SEED: the crops' render
#   seed, validation's SEED + 1; another seed draws other crops for a further continuation. SYLLABLE_SHARE: the
#   share of Korean texts drawn as 1-4 syllables uniform over the pool's, scripts/render_clean.sh)
set -euo pipefail
if [ $# -lt 1 ]; then sed -n 2,14p "$0"; exit 2; fi
OUT=$1; MINUTES=${2:-55}; CROPS=${3:-30000}; P=${4:-outputs/pretrain}; SEED=${5:-9001}; SHARE=${6:-0.2}
PY=${PYTHON:-.venv/bin/python}; DRAWER=resources/models/ocr-ko-en-draw
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
mkdir -p "$OUT"
# vqvae.encode's config for the drawer's VQ-VAE: make pretrain's, with that folder's model block and max_length
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config
published_vq_config(Path('$OUT'), Path('$DRAWER/vqvae'), 'draw-vqvae.yaml')"
scripts/render_clean.sh "$OUT/train" "$CROPS" "$SEED" "$SHARE" "$OUT/draw-vqvae.yaml" "$P"
scripts/render_clean.sh "$OUT/val" 1000 $((SEED + 1)) 0.2 "$OUT/draw-vqvae.yaml" "$P"
[ -d "$OUT/run/export" ] || $PY -m gpt.finetune config/gpt2-pretrain-finetune.yaml init_from=$DRAWER optim.lr=7.5e-4 \
  data.train="$OUT/train/tokens.csv" data.val="$OUT/val/tokens.csv" run_dir="$OUT/run" \
  trainer.max_time="00:00:$MINUTES:00" seed=0
[ -f "$OUT/bench-run/legibility.json" ] || \
  $PY -m scripts.bench_draw "$OUT/run/export" --output "$OUT/bench-run" --seed 0
