#!/bin/bash
# The drawer's sampling settings on prompts apart from the judged ones: scripts.bench_draw once per setting
# (temperature, guidance scale, top-k) on --num-prompts drawn with another seed, then one table of both judges.
#
#   scripts/bench_draw_sampling.sh OUT SEED PROMPTS MODEL -- "T G K" ...
#   scripts/bench_draw_sampling.sh outputs/sampling 1 100 resources/models/ocr-ko-en-draw -- "0.7 2.0 0" "0.5 2.0 0"
#
# Results: OUT/T<t>-G<g>-K<k>/legibility.json per setting, OUT/table.md.
set -euo pipefail
OUT=$1; SEED=$2; PROMPTS=$3; MODEL=$4; shift 4
[ "${1:-}" = -- ] && shift
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
for SETTING in "$@"; do
  read -r T G K <<< "$SETTING"
  DIR=$OUT/T$T-G$G-K$K
  [ -f "$DIR/legibility.json" ] || $PY -m scripts.bench_draw "$MODEL" --output "$DIR" --num-prompts "$PROMPTS" \
    --seed "$SEED" --temperature "$T" --guidance-scale "$G" --top-k "$K" > "$DIR.log" 2>&1
done
$PY - "$OUT" <<'PYTHON' | tee "$OUT/table.md"
import json, sys
from pathlib import Path
print("| temperature | guidance | top-k | recognizer | Tesseract | en | ko horizontal | ko vertical | phrases "
      "| images/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for path in sorted(Path(sys.argv[1]).glob("T*-G*-K*/legibility.json")):
    r = json.loads(path.read_text()); s, o, g = r["sampling"], r["overall"], r["by_group"]
    cells = [f"{100 * g[k]['recognizer_exact']:.1f}%" if k in g else ""
             for k in ("en", "ko_horizontal", "ko_vertical", "phrase")]
    print(f"| {s['temperature']} | {s['guidance_scale']} | {s['top_k']} | {100 * o['recognizer_exact']:.1f}% | "
          f"{100 * (o.get('tesseract_exact') or 0):.1f}% | {' | '.join(cells)} | {r['images_per_s']} |")
PYTHON
