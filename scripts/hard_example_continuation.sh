#!/bin/bash
# The shipped recognizer continued on the crops of a make pretrain shard it misreads (hard examples), plus as many
# that it reads, drawn at random (seed 0), each with both of the shard's encodings; the overrides and evaluation of
# scripts/cpu_continuation.sh (scripts/continue_published.sh), for STEPS steps (90 minutes at most). Session 43's arm (BENCHMARKS.md: a tie, not
# adopted). Every step is skipped when its output exists, and gpt.train resumes its last.ckpt.
#
#   scripts/hard_example_continuation.sh OUT SHARD_DIR STEPS "OVERRIDES" [DATA]
#   scripts/hard_example_continuation.sh outputs/s43/hard outputs/pretrain/data/shard_072 3003 \
#     "optim.lr=5.0e-5 loss.image_weight=0.25"
#
# SHARD_DIR: a shard make pretrain rendered and encoded twice (tokens.csv, tokens-augmented.csv) that the shipped
# model has not trained on; DATA: the make pretrain data folder whose val, charset and held-out sets are used
# (default outputs/pretrain/data). Results: OUT/pred.csv (its readings of the shard), OUT/data (the chosen rows),
# OUT/run, OUT/run-export, OUT/eval.json, OUT/train.log.
set -euo pipefail
OUT=$1; SHARD=$2; STEPS=$3; OVERRIDES=$4; D=${5:-outputs/pretrain/data}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT/data"
[ -f "$OUT/pred.csv" ] || $PY -m gpt.predict resources/models/ocr-ko-en "$SHARD/tokens.csv" --output "$OUT/pred.csv" \
  --no-progress
[ -f "$OUT/data/train-augmented.csv" ] || $PY - "$SHARD" "$OUT" <<'PYEOF'
import shutil, sys
import pandas as pd
shard, out = sys.argv[1:]
read = pd.read_csv(f"{out}/pred.csv", keep_default_na=False).set_index("img_path")["text"]
tokens = pd.read_csv(f"{shard}/tokens.csv", keep_default_na=False)
wrong = tokens.img_path.map(read).fillna("").str.replace(" ", "") != tokens.text.str.replace(" ", "")
hard = set(tokens.img_path[wrong])
easy = set(tokens.img_path[~wrong].sample(n=min(len(hard), int((~wrong).sum())), random_state=0))
print(f"{len(tokens)} crops: {len(hard)} misread ({100 * len(hard) / len(tokens):.1f}%), {len(easy)} read kept")
for name in ("tokens", "tokens-augmented"):
    frame = pd.read_csv(f"{shard}/{name}.csv", keep_default_na=False)
    kept = f"{out}/data/{name.replace('tokens', 'train')}.csv"
    frame[frame.img_path.isin(hard | easy)].to_csv(kept, index=False)
    shutil.copy(f"{shard}/{name}.csv.json", f"{kept}.json")  # the same VQ-VAE's tokens
PYEOF
PYTHON=$PY scripts/continue_published.sh "$OUT" "$OUT/data/train.csv,$OUT/data/train-augmented.csv" "$D" \
  "trainer.max_steps=$STEPS trainer.max_time=00:00:90:00 $OVERRIDES"
