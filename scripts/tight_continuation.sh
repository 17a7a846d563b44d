#!/bin/bash
# Session 42's tight-crop continuation (BENCHMARKS.md; published as ocr-ko-en chunk 71, from chunk 69; run again, it
# continues whatever is published): shard 071 rendered by make pretrain's rule with half of its crops cut at their
# ink (--tight-share 0.5, given after the rule's own share, which it overrides), encoded twice like every shard; the
# shipped recognizer continued on shards 070 and 071 for 70 minutes on both threads at 5e-5, image loss 0.25 (session
# 40's recipe); exported and read on DATA's held-out sets (loose and tight) and the real crops
# (scripts/evaluate_sets.sh). Every step is skipped when its output exists: run it again to go on after an
# interruption. Publish with scripts.publish_continuation OUT/B --cores 2 --data-cpu-hours H.
#
#   scripts/tight_continuation.sh OUT [DATA]
#   scripts/tight_continuation.sh outputs/tight outputs/pretrain/data
set -euo pipefail
OUT=$1; D=${2:-outputs/pretrain/data}; PY=${PYTHON:-.venv/bin/python}; S=$D/shard_071
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
VQ=resources/models/ocr-ko-en/vqvae
mkdir -p "$OUT"
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config; published_vq_config(Path('$OUT'))"
for N in 70 71; do
  SHARD=$D/shard_$(printf %03d $N); TIGHT=(); [ $N = 71 ] && TIGHT=(--tight-share 0.5)
  RENDER="import sys; from pathlib import Path; from scripts.pretrain import shard_render_args
from scripts.render_text import main
sys.exit(main([str(a) for a in shard_render_args(Path(sys.argv[1]), int(sys.argv[2]))] + sys.argv[3:]))"
  [ -f "$SHARD/labels.csv" ] || $PY -c "$RENDER" "$(dirname "$D")" $N "${TIGHT[@]}" || [ $? -eq 1 ]  # 1: bad rows
  [ -f "$SHARD/tokens.csv" ] || $PY -m vqvae.encode "$OUT/published-vqvae.yaml" $VQ --dataset "$SHARD/labels.csv" \
    --output "$SHARD/tokens.csv" --skip-bad --no-progress || [ $? -eq 1 ]
  [ -f "$SHARD/tokens-augmented.csv" ] || $PY -m vqvae.encode "$OUT/published-vqvae.yaml" $VQ \
    --dataset "$SHARD/labels.csv" --output "$SHARD/tokens-augmented.csv" --augment --seed $N --skip-bad --no-progress \
    || [ $? -eq 1 ]
done
[ -f "$OUT/val/tokens.csv" ] || $PY -m vqvae.encode "$OUT/published-vqvae.yaml" $VQ --dataset "$D/val/labels.csv" \
  --output "$OUT/val/tokens.csv" --skip-bad --no-progress || [ $? -eq 1 ]
TRAIN=$S/tokens.csv,$S/tokens-augmented.csv,$D/shard_070/tokens.csv,$D/shard_070/tokens-augmented.csv
if [ ! -d "$OUT/B-export" ]; then
  $PY -m gpt.train config/gpt2-pretrain.yaml data.train="$TRAIN" data.val="$OUT/val/tokens.csv" \
    data.base_charset="$D/charset.txt" run_dir="$OUT/B" init_from=resources/models/ocr-ko-en optim.decay_steps=null \
    trainer.max_steps=-1 trainer.max_time="00:01:10:00" seed=0 optim.lr=5.0e-5 loss.image_weight=0.25 \
    >> "$OUT/B.log" 2>&1
  $PY -m gpt.export "$OUT/B/config.yaml" "$OUT/B/checkpoints/last.ckpt" --output "$OUT/B-export" >> "$OUT/B.log" 2>&1
fi
PYTHON=$PY scripts/evaluate_sets.sh "$OUT/B-export" "$D" "$OUT/eval-B.json"
