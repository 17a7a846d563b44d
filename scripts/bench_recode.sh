#!/bin/bash
# What translating the codes buys before any training: an export moved onto another export's VQ-VAE by
# gpt.recode (each new code's embedding the mean of the old codes it covers) against the same move with the code
# embeddings drawn anew (what gpt.train did before), judged as they are. A drawing export is judged by
# scripts.bench_draw (the shipped recognizer reads back the best of 8 of 64 held-out prompts); a recognition
# export by gpt.evaluate on the held-out sets of DATA.
#
#   scripts/bench_recode.sh OUT EXPORT TARGET_EXPORT [DATA]
#   scripts/bench_recode.sh outputs/recode-draw resources/models/ocr-ko-en-draw resources/models/ocr-ko-en
#   scripts/bench_recode.sh outputs/recode-read resources/models/ocr-ko-en resources/models/ocr-ko-en-draw
#
# DATA: a make pretrain data folder (default outputs/pretrain/data): its val crops pair the codes.
set -euo pipefail
OUT=$1; EXPORT=$2; TARGET=$3; D=${4:-outputs/pretrain/data}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
$PY - "$EXPORT" "$TARGET" "$D/val/labels.csv" "$OUT" <<'PYTHON'
import sys
from gpt.recode import recode_export
export, target, crops, out = sys.argv[1:]
for name, translate in (("translated", True), ("anew", False)):
    folder, seen = recode_export(export, target, crops, f"{out}/{name}", num_crops=1000, translate=translate)
    print(f"{folder}: {seen} codes translated")
PYTHON
ORDER=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['order'])" "$EXPORT/layout.json")
for NAME in translated anew; do
  if [ "$ORDER" = text_first ]; then
    $PY -m scripts.bench_draw "$OUT/$NAME" --output "$OUT/bench-$NAME" --num-prompts 64 --seed 1 --no-tesseract \
      2>/dev/null | grep '^|'
  else
    $PY -m gpt.evaluate "$OUT/$NAME" "$D"/heldout_{ko_horizontal,ko_vertical,en}/labels.csv --ignore-space \
      --no-progress --json "$OUT/eval-$NAME.json" 2>/dev/null
  fi
done
