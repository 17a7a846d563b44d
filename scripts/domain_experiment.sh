#!/usr/bin/env bash
# One benchmark-domain experiment, as run for BENCHMARKS.md "Choosing the bench domain": render the bench's
# word splits (Korean + English, 40 000 training crops, three 300-crop test sets of held-out words) with the
# given render_text flags, train the bench VQ-VAE and the recognition GPT for fixed minutes, evaluate.
#
#   scripts/domain_experiment.sh OUT VQ_MINUTES GPT_MINUTES "RENDER FLAGS" [GPT overrides ...]
#
# e.g. scripts/domain_experiment.sh /tmp/exp 8 12 "--line-box --augment none --words-only --min-aspect 4.8" \
#          model.n_embd=128 model.dropout=0 optim.lr=2e-3
# Data and the VQ-VAE are kept in OUT and reused by later runs with other GPT overrides; the result is
# OUT/gpt-*/eval.json (the folder name ends in a hash of the overrides, listed in its overrides.txt).
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi
out=$1 vq_minutes=$2 gpt_minutes=$3 render_flags=$4
shift 4
python=${PYTHON:-.venv/bin/python}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647  # see the Makefile
data=$out/data
minutes() { printf '00:%02d:%02d:00' $(($1 / 60)) $(($1 % 60)); }  # Lightning's DD:HH:MM:SS
render() { "$python" -m scripts.render_text --output "$data/$1" --num-samples "$2" --seed "$3" "${@:4}" $render_flags; }
if [ ! -f "$data/test_en/labels.csv" ]; then
    "$python" -c "
from pathlib import Path
from scripts.words import split_words, word_pool, write_word_list
data, held_out = Path('$data'), []
for language in ('ko', 'en'):  # the same split as scripts/bench.py with --seed 0
    _, test = split_words(word_pool(language, 20000), test_share=0.05, seed=0)
    write_word_list(data / f'test_words_{language}.txt', test)
    held_out += test
write_word_list(data / 'test_words_all.txt', held_out)"
    render train 40000 0 --exclude-words "$data/test_words_all.txt"
    render val 1000 1 --exclude-words "$data/test_words_all.txt"
    render test_ko_horizontal 300 10 --languages ko --vertical-share 0 --words-file "$data/test_words_ko.txt" --words-only
    render test_ko_vertical 300 11 --languages ko --vertical-share 1 --words-file "$data/test_words_ko.txt" --words-only
    render test_en 300 12 --languages en --vertical-share 0 --words-file "$data/test_words_en.txt" --words-only
fi
vq=$out/vqvae
if [ ! -f "$vq/checkpoints/last.ckpt" ]; then
    "$python" -m vqvae.train config/vqvae-bench.yaml "data.train=$data/train/labels.csv" \
        "data.val=$data/val/labels.csv" "run_dir=$vq" "trainer.max_time=$(minutes "$vq_minutes")"
fi
for split in train val; do
    if [ ! -f "$data/$split/tokens.csv" ]; then
        "$python" -m vqvae.encode config/vqvae-bench.yaml "$vq/checkpoints/last.ckpt" \
            --dataset "$data/$split/labels.csv" --output "$data/$split/tokens.csv"
    fi
done
run=$out/gpt-$gpt_minutes-$(echo "$@" | md5sum | cut -c1-6)
"$python" -m gpt.train config/gpt2-bench.yaml "data.train=$data/train/tokens.csv" "data.val=$data/val/tokens.csv" \
    "run_dir=$run" "trainer.max_time=$(minutes "$gpt_minutes")" "$@"
"$python" -m gpt.export "$run/config.yaml" "$run/checkpoints/last.ckpt" --output "$run/export"
"$python" -m gpt.evaluate "$run/export" "$data"/test_ko_horizontal/labels.csv "$data"/test_ko_vertical/labels.csv \
    "$data"/test_en/labels.csv --json "$run/eval.json"
echo "$@" > "$run/overrides.txt"
