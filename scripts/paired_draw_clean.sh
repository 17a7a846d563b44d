#!/bin/bash
# Two clean continuations of the shipped drawer side by side, one core each, that differ only in the share of
# Korean texts drawn as 1-4 syllables uniform over the pool's (render_text --syllable-share): the same seed, so
# the same fonts, English texts and word draws where the share does not intervene; the same validation crops,
# rate, schedule and wall minutes. Then both judged by scripts.bench_draw on the same 200 prompts, one after the
# other on the whole machine. The steps of scripts/pretrain_draw_clean.sh, paired; resumable (each step skips
# what it finds done). Publish an arm that beats the shipped drawer with scripts.publish_draw_continuation. The
# mean of the two arms' weights read back better than either in session 33 and was published (BENCHMARKS.md):
#   python -m scripts.average_exports OUT/A/run/export OUT/B/run/export --output OUT/soup/run/export
#
#   scripts/paired_draw_clean.sh OUT SHARE_A SHARE_B [MINUTES] [CROPS] [SEED]
#   scripts/paired_draw_clean.sh outputs/syllables 0.2 0.6 75 60000 9005
#
# Results: OUT/A.log, OUT/B.log, OUT/{A,B}/run/export, OUT/{A,B}/bench-run/{legibility.json,prompts.csv}.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,14p "$0"; exit 2; fi
OUT=$1; SHARE_A=$2; SHARE_B=$3; MINUTES=${4:-75}; CROPS=${5:-60000}; SEED=${6:-9005}
P=outputs/pretrain; PY=${PYTHON:-.venv/bin/python}; DRAWER=resources/models/ocr-ko-en-draw
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
mkdir -p "$OUT"
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config
published_vq_config(Path('$OUT'), Path('$DRAWER/vqvae'), 'draw-vqvae.yaml')"
# Render and encode on the whole machine first, so the two trainings start together.
scripts/render_clean.sh "$OUT/A/train" "$CROPS" "$SEED" "$SHARE_A" "$OUT/draw-vqvae.yaml" "$P"
scripts/render_clean.sh "$OUT/B/train" "$CROPS" "$SEED" "$SHARE_B" "$OUT/draw-vqvae.yaml" "$P"
scripts/render_clean.sh "$OUT/val" 1000 $((SEED + 1)) 0.2 "$OUT/draw-vqvae.yaml" "$P"
for ARM in A B; do
  [ -d "$OUT/$ARM/run/export" ] || OMP_NUM_THREADS=1 $PY -m gpt.finetune config/gpt2-pretrain-finetune.yaml \
    init_from=$DRAWER optim.lr=7.5e-4 data.train="$OUT/$ARM/train/tokens.csv" data.val="$OUT/val/tokens.csv" \
    run_dir="$OUT/$ARM/run" trainer.max_time="00:00:$MINUTES:00" seed=0 > "$OUT/$ARM.log" 2>&1 &
done
wait
for ARM in A B; do
  [ -f "$OUT/$ARM/bench-run/legibility.json" ] || \
    $PY -m scripts.bench_draw "$OUT/$ARM/run/export" --output "$OUT/$ARM/bench-run" --seed 0 >> "$OUT/$ARM.log" 2>&1
done
