#!/bin/bash
# A recognition export on a make pretrain data folder's held-out sets (with their tight twins) and the real crops,
# as the pairs and continuations judge their arms: gpt.evaluate, spaces ignored, the table on stdout, JSON into JSON
# and each crop's reading into the folder JSON less .json + -predictions (what scripts.compare_predictions compares,
# arm with arm).
# Exit 1 from gpt.evaluate (some crops could not be read, listed; the rest scored) counts as done.
#
#   scripts/evaluate_sets.sh EXPORT DATA JSON
#   scripts/evaluate_sets.sh outputs/floor/run-export outputs/pretrain/data outputs/floor/eval.json
set -euo pipefail
EXPORT=$1; D=$2; JSON=$3; PY=${PYTHON:-.venv/bin/python}
SETS=()
for NAME in heldout_ko_horizontal heldout_ko_vertical heldout_en; do
  SETS+=("$D/$NAME/labels.csv")
  # the tight twins (make pretrain renders them since session 42; an older folder has none)
  if [ -f "$D/${NAME}_tight/labels.csv" ]; then SETS+=("$D/${NAME}_tight/labels.csv"); fi
done
# held-out English words in held-out display families (make pretrain renders it since session 44)
if [ -f "$D/heldout_en_display/labels.csv" ]; then SETS+=("$D/heldout_en_display/labels.csv"); fi
$PY -m gpt.evaluate "$EXPORT" "${SETS[@]}" ../shared/eval/real/{real_en,real_ko,real_ko_plates}/labels.csv \
  --ignore-space --no-progress --json "$JSON" --predictions "${JSON%.json}-predictions" || [ $? -eq 1 ]
