#!/bin/bash
# The shipped recognizer continued on this machine's cores on the next make pretrain shard (new crops): render and
# encode the shard as make pretrain does (scripts.pretrain.shard_render_args), then gpt.train
# from the shipped export for MINUTES with the given overrides (a cosine over the time budget), export, evaluate on
# the held-out and real sets. Every step is skipped when its output exists, and gpt.train resumes its last.ckpt:
# run it again to go on after an interruption.
#
#   scripts/cpu_continuation.sh OUT SHARD MINUTES "OVERRIDES" [DATA]
#   scripts/cpu_continuation.sh outputs/floor 44 80 "optim.lr=1.0e-4 trainer.accumulate_grad_batches=8"
#
# DATA: the make pretrain data folder (default outputs/pretrain/data: its fonts, held-out words and sets). Results:
# DATA/shard_NNN (labels, images, tokens; OUT/data-seconds: its rendering and encoding), OUT/run, OUT/run-export,
# OUT/val (DATA's val encoded by the shipped VQ-VAE), OUT/eval.json, OUT/train.log. Publish with
# scripts.publish_continuation OUT/run --cores N --data-cpu-hours H.
set -euo pipefail
OUT=$1; N=$2; MINUTES=$3; OVERRIDES=$4; D=${5:-outputs/pretrain/data}
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
SHARD=$D/shard_$(printf %03d "$N")
if [ "$(basename "$D")" != data ]; then
  echo "DATA must be a make pretrain run's data folder (RUN/data), not $D" >&2; exit 2
fi
render_shard() {  # RUN N: make pretrain's shard N of run folder RUN, by its own rule
  $PY -c "import sys; from pathlib import Path; from scripts.pretrain import shard_render_args
from scripts.render_text import main
sys.exit(main([str(arg) for arg in shard_render_args(Path(sys.argv[1]), int(sys.argv[2]))]))" "$1" "$2"
}
mkdir -p "$OUT"
$PY -c "from pathlib import Path; from scripts.pretrain import published_vq_config; published_vq_config(Path('$OUT'))"
if [ ! -f "$SHARD/tokens-augmented.csv" ]; then  # the shard's second encoding, as make pretrain makes it
  START=$(date +%s)
  [ -f "$SHARD/labels.csv" ] || render_shard "$(dirname "$D")" "$N" || [ $? -eq 1 ]  # 1: bad rows, listed
  [ -f "$SHARD/tokens.csv" ] || $PY -m vqvae.encode "$OUT/published-vqvae.yaml" resources/models/ocr-ko-en/vqvae \
    --dataset "$SHARD/labels.csv" --output "$SHARD/tokens.csv" --skip-bad --no-progress || [ $? -eq 1 ]
  $PY -m vqvae.encode "$OUT/published-vqvae.yaml" resources/models/ocr-ko-en/vqvae --dataset "$SHARD/labels.csv" \
    --output "$SHARD/tokens-augmented.csv" --augment --seed "$N" --skip-bad --no-progress || [ $? -eq 1 ]
  echo $(($(date +%s) - START)) > "$OUT/data-seconds"
fi
PYTHON=$PY scripts/continue_published.sh "$OUT" "$SHARD/tokens.csv,$SHARD/tokens-augmented.csv" "$D" \
  "trainer.max_steps=-1 trainer.max_time=00:00:$MINUTES:00 $OVERRIDES"
