#!/usr/bin/env bash
# One reading experiment, as run for BENCHMARKS.md "What limits reading": encode a rendered dataset with a
# trained VQ-VAE, train the recognition GPT for a fixed number of minutes, export it, evaluate on the test crops.
#
#   scripts/reading_experiment.sh DATA VQ_RUN RUN_DIR MINUTES [GPT overrides ...]
#
# DATA holds train/, val/ and test/ from scripts.render_text (tokens.csv is written beside each labels.csv
# once and reused); VQ_RUN is a vqvae.train run folder (its config.yaml and last.ckpt encode). The result
# is RUN_DIR/eval.json, and validation curves are in RUN_DIR/logs/metrics.csv.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
data=$1 vq_run=$2 run_dir=$3 minutes=$4
shift 4
python=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647  # see the Makefile
for split in train val test; do
    if [ ! -f "$data/$split/tokens.csv" ]; then
        "$python" -m vqvae.encode "$vq_run/config.yaml" "$vq_run/checkpoints/last.ckpt" \
            --dataset "$data/$split/labels.csv" --output "$data/$split/tokens.csv"
    fi
done
max_time=$(printf '00:%02d:%02d:00' $((minutes / 60)) $((minutes % 60)))  # Lightning's DD:HH:MM:SS
"$python" -m gpt.train config/gpt2-demo.yaml "data.train=$data/train/tokens.csv" "data.val=$data/val/tokens.csv" \
    "run_dir=$run_dir" data.max_text_length=12 "trainer.max_time=$max_time" trainer.max_steps=100000 "$@"
"$python" -m gpt.export "$run_dir/config.yaml" "$run_dir/checkpoints/last.ckpt" --output "$run_dir/export"
"$python" -m gpt.evaluate "$run_dir/export" "$data/test/labels.csv" --json "$run_dir/eval.json"
