#!/bin/bash
# Two GPT recognizers trained from random weights side by side, one core each, so both see the same machine and the
# same wall minutes; validation (text and image loss on the whole val set, accuracy on 64 crops) every 250 steps, in
# OUT/{A,B}/logs/metrics*.csv. BENCHMARKS.md's from-scratch pairs (session 36's optimizer pair is OUT "" \
# "optim.matrices=muon" 25; session 37's curricula below): levers for a run from scratch (`make pretrain --fresh`, a
# lent GPU), where these 4 x 128 models read few words in CPU minutes, so the figure is the validation loss.
#
#   scripts/paired_scratch.sh OUT "A_OVERRIDES" "B_OVERRIDES" [MINUTES] [TRAIN] [DATA]
#   FIRST_B=short.csv FIRST_MINUTES=8 scripts/paired_scratch.sh outputs/cur "optim.decay_steps=1200" \
#     "optim.decay_steps=1200" 25
#
# TRAIN: token CSVs (comma-separated; default DATA's last shard's encodings); DATA: a make pretrain data folder
# (default outputs/pretrain/data) whose val set and charset are used. A curriculum: FIRST_A / FIRST_B name token CSVs
# that arm trains on for its first FIRST_MINUTES minutes (default 8); it then resumes its last.ckpt on TRAIN, and
# Lightning's Timer keeps the elapsed minutes, so it stops at MINUTES in all. Give both arms a fixed cosine
# (optim.decay_steps=N) there: a time budget would plan the first phase's schedule for its minutes alone. Minutes may
# be fractions; CONFIG (default config/gpt2-pretrain.yaml) is the model and recipe, rate 2e-3 and a cosine over the
# budget unless an arm's overrides (which come last) say otherwise.
set -euo pipefail
OUT=$1; A=$2; B=$3; MINUTES=${4:-25}; D=${6:-outputs/pretrain/data}
PY=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647
TRAIN=${5:-$($PY -c "import sys; from pathlib import Path; from scripts.pretrain import shard_encodings
print(','.join(map(str, shard_encodings(Path(sys.argv[1])))))" "$(ls -d "$D"/shard_* | tail -1)")}
seconds() { awk -v m="$1" 'BEGIN { printf "%d", m * 60 + 0.5 }'; }
train() {  # RUN DATA MINUTES OVERRIDES
  # shellcheck disable=SC2086  # the overrides are words
  OMP_NUM_THREADS=1 $PY -m gpt.train "${CONFIG:-config/gpt2-pretrain.yaml}" data.train="$2" \
    data.val="$D/val/tokens.csv" data.base_charset="$D/charset.txt" run_dir="$OUT/$1" optim.lr=2.0e-3 \
    optim.decay_steps=null trainer.max_steps=-1 trainer.max_time="00:00:00:$(seconds "$3")" \
    trainer.val_check_interval=250 validation.num_decode_samples=64 seed=0 $4
}
arm() {  # RUN: its first phase where FIRST_RUN names one, then TRAIN
  local FIRST=FIRST_$1
  if [ -n "${!FIRST:-}" ]; then train "$1" "${!FIRST}" "${FIRST_MINUTES:-8}" "${!1}" > "$OUT/$1.first.log" 2>&1; fi
  train "$1" "$TRAIN" "$MINUTES" "${!1}" > "$OUT/$1.log" 2>&1
}
mkdir -p "$OUT"
arm A & PID_A=$!
arm B & PID_B=$!
STATUS=0; wait $PID_A || STATUS=$?; wait $PID_B || STATUS=$?
[ $STATUS -eq 0 ] || { echo "an arm failed (exit $STATUS): see $OUT/A*.log and $OUT/B*.log" >&2; exit $STATUS; }
$PY - "$OUT" <<'PYEOF'
import sys
import pandas as pd
from vqvae.plumbing.trainer import metrics_files
for run in ("A", "B"):  # every call's log: a curriculum's first phase, then the rest
    metrics = pd.concat([pd.read_csv(path) for path in metrics_files(f"{sys.argv[1]}/{run}")])
    rows = metrics.dropna(subset=["val/text_loss"])[["step", "val/text_loss", "val/image_loss", "val/accuracy"]]
    print(run); print(rows.to_string(index=False))
PYEOF
