"""Draw prompts with a drawer's `undrawn_chars` refusal lifted: does the list refuse only what it cannot draw?

    python -m scripts.bench_undrawn "1=2" "₩500" "a|b" "A+B" "5%" [--model DIR] [--num-candidates 8]

Each prompt gets --num-candidates images (sampling as gpt.generate's defaults, seed 0), reranked by the shipped
recognizer; prints its best read-back and whether any candidate reads back exactly. Put prompts with characters
the drawer did see drawn beside the refused ones, as controls.
"""
from __future__ import annotations

import argparse
import sys

from gpt.drawing import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, generate_for_prompts, rerank
from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained
from gpt.sampling import SamplingConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--model", default=str(SHIPPED_DRAW_MODEL), help="text-to-image export")
    parser.add_argument("--num-candidates", type=int, default=8)
    args = parser.parse_args(argv)
    generator = load_pretrained(args.model, load_tokenizer=False)
    undrawn = generator.undrawn_chars
    generator.layout.pop("undrawn_chars", None)  # lifted here only; the export is untouched
    recognizer = load_pretrained(SHIPPED_MODEL, load_tokenizer=False)
    sampling = SamplingConfig(DEFAULT_TEMPERATURE, 0, 1.0, DEFAULT_GUIDANCE, 0)
    items = generate_for_prompts(generator, args.prompts, args.num_candidates, sampling, 64, progress=False)
    rerank(items, recognizer, generator.fingerprint, 64)
    for best in (item for item in items if item.is_best):
        refused = "".join(sorted(undrawn.intersection(best.prompt))) or "-"
        exact = any(item.exact for item in items if item.prompt_index == best.prompt_index)
        print(f"{best.prompt!r:>12} never drawn: {refused:<4} best read back: {best.read_back!r:<12} "
              f"any exact: {exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
