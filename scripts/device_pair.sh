#!/bin/bash
# A paired continuation of the shipped recognizer on a lent GPU machine (the device tool), from token shards
# packed here: rendering and encoding stay on the CPU machine (the fonts are too big to carry), only gpt.train
# runs there. Both arms train at once on the one GPU (a 4 x 128 GPT leaves it mostly idle), same rate schedule
# and same minutes, as scripts/paired_continuation.sh does on two cores.
#
#   scripts/device_pair.sh pack PACK A=DATA_A B=DATA_B            # here: xz the shards' tokens, add the wheels
#   scripts/device_pair.sh train PACK MINUTES "COMMON_OVERRIDES"   # there: unpack, train A and B, slim results
#   scripts/device_pair.sh judge RESULTS DATA                      # here: export each checkpoint, evaluate it
#
# DATA_X is a folder of shard_*/tokens.csv and val/tokens.csv (with their sidecars) and charset.txt. On the
# device machine the results go to $OUT (or OUT_DIR): X-last.ckpt and X-best.ckpt without optimizer states
# (gpt.export takes them), X.tar with the run's config.yaml, log and metrics. Back here, `judge` exports each
# checkpoint of RESULTS (the files fetched from $OUT) to RESULTS/X-{last,best}-export and evaluates it on DATA's
# held-out sets (a make pretrain data folder) and the real crops into RESULTS/eval-X-{last,best}.json; the token
# shards named in the configs must be here too (unpack PACK's .xz). What BENCHMARKS.md's GPU pair ran.
set -euo pipefail
MODE=$1; PACK=$2; shift 2
if [ "$MODE" = judge ]; then
  R=$PACK; D=$1; PY=${PYTHON:-.venv/bin/python}
  for TAR in "$R"/*.tar; do
    ARM=$(basename "$TAR" .tar); tar -xf "$TAR" -C "$R"
    for C in last best; do
      [ -f "$R/$ARM-$C.ckpt" ] || continue
      $PY -m gpt.export "$R/$ARM/config.yaml" "$R/$ARM-$C.ckpt" --output "$R/$ARM-$C-export" > /dev/null
      PYTHON=$PY scripts/evaluate_sets.sh "$R/$ARM-$C-export" "$D" "$R/eval-$ARM-$C.json"
    done
  done
  exit 0
fi
if [ "$MODE" = pack ]; then
  rm -rf "$PACK"; mkdir -p "$PACK/wheels"
  for ARM in "$@"; do
    NAME=${ARM%%=*}; DATA=${ARM#*=}
    for CSV in "$DATA"/shard_*/tokens.csv "$DATA"/val/tokens.csv; do
      DEST="$PACK/$NAME/$(basename "$(dirname "$CSV")")"; mkdir -p "$DEST"
      xz -6 -T0 -c "$CSV" > "$DEST/tokens.csv.xz"; cp "$CSV.json" "$DEST/"
    done
    cp "$DATA/charset.txt" "$PACK/$NAME/"
  done
  # The device image has torch, Lightning and transformers but not omegaconf (pure Python, needs only PyYAML)
  # nor rapidfuzz (validation's edit distances).
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$PACK/wheels" omegaconf==2.4.0
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d "$PACK/wheels" rapidfuzz==3.14.3
  du -sh "$PACK"; exit 0
fi
[ "$MODE" = train ] || { echo "usage: $0 pack|train|judge PACK ..." >&2; exit 2; }
MINUTES=$1; COMMON=${2:-}
PY=${PYTHON:-python3}; RESULTS=${OUT_DIR:-${OUT:?set OUT_DIR}}; RUNS=${RUNS:-/tmp/device_pair}
$PY -c "import omegaconf, rapidfuzz" 2>/dev/null || {
  $PY -m pip install -q --no-index --no-deps --target /tmp/site "$PACK"/wheels/*.whl; export PYTHONPATH=/tmp/site; }
find "$PACK" -name '*.xz' -exec xz -d -k -f -T0 {} +
mkdir -p "$RUNS" "$RESULTS"
ARMS=$(cd "$PACK" && ls -d */ | tr -d / | grep -v wheels)
for ARM in $ARMS; do
  D=$PACK/$ARM
  SHARDS=$(ls -d "$D"/shard_* | sed 's#$#/tokens.csv#' | paste -sd,)
  # shellcheck disable=SC2086  # the overrides are words
  $PY -m gpt.train config/gpt2-pretrain.yaml data.train="$SHARDS" data.val="$D/val/tokens.csv" \
    data.base_charset="$D/charset.txt" run_dir="$RUNS/$ARM" init_from=resources/models/ocr-ko-en \
    optim.decay_steps=null trainer.max_steps=-1 trainer.max_time="$(printf "00:00:%02d:00" "$MINUTES")" seed=0 $COMMON \
    > "$RUNS/$ARM.log" 2>&1 &
done
FAILED=0
for JOB in $(jobs -p); do wait "$JOB" || FAILED=1; done
for ARM in $ARMS; do
  tail -c 2000 "$RUNS/$ARM.log"
  $PY - "$RUNS/$ARM/checkpoints" "$RESULTS/$ARM" <<'EOF' || FAILED=1
import sys
from pathlib import Path
import torch
source, dest = Path(sys.argv[1]), sys.argv[2]
for name in ("last", "best"):
    if (source / f"{name}.ckpt").is_file():
        state = torch.load(source / f"{name}.ckpt", map_location="cpu", weights_only=False)
        state.pop("optimizer_states", None)  # 2x the weights, and no use to export or evaluate
        torch.save(state, f"{dest}-{name}.ckpt")
        print(f"{dest}-{name}.ckpt: step {state['global_step']}")
EOF
  tar -cf "$RESULTS/$ARM.tar" -C "$RUNS" "$ARM.log" "$ARM/config.yaml" "$ARM/logs" || FAILED=1
done
exit $FAILED
