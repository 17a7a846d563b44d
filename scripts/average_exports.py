"""Average the GPT weights of recognition exports that share a lineage (a model and its continuations):
a "model soup". The first export's folder (VQ-VAE, tokenizer, configs) is copied and its model.safetensors
replaced by the weighted mean of every export's.

    python -m scripts.average_exports resources/models/ocr-ko-en outputs/frames/pair/A-export --output OUT
    python -m scripts.average_exports A B C --weights 2 1 1 --output OUT

The exports must hold the same tensors (names and shapes) and the same tokenizer; ValueError names the first
difference. Why: a short continuation on a CPU first loses accuracy (BENCHMARKS.md, a warm restart's dip), and
the mean of weights along one fine-tuning often reads better than either end.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gpt.pretrained import LAYOUT_NAME, read_layout
from vqvae.plumbing.io import write_json_atomic

WEIGHTS = "model.safetensors"


def average_state_dicts(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean (in float32, returned in the first state's dtypes) of state dicts with the same tensors."""
    if len(states) != len(weights) or not states:
        raise ValueError(f"{len(states)} exports and {len(weights)} weights: give one weight per export")
    total = float(sum(weights))
    if total <= 0 or min(weights) < 0:
        raise ValueError(f"weights {weights} must be >= 0 with a positive sum")
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys():
            raise ValueError(f"export {index} has other tensors: {sorted(state.keys() ^ first.keys())[:3]}")
        for name, tensor in state.items():
            if tensor.shape != first[name].shape:
                raise ValueError(f"export {index}'s {name} is {tuple(tensor.shape)}, not {tuple(first[name].shape)}")
    return {name: (sum(w * s[name].float() for w, s in zip(weights, states)) / total).to(tensor.dtype)
            for name, tensor in first.items()}


def averaged_layout(layouts: list[dict]) -> dict:
    """The first export's layout, its `undrawn_chars` (drawers: characters never seen drawn) those no export saw
    drawn, since the mean holds what each learnt; without the key when any export lacks it (unknown)."""
    layout = dict(layouts[0])
    layout.pop("undrawn_chars", None)
    if all("undrawn_chars" in other for other in layouts):
        layout["undrawn_chars"] = "".join(sorted(set.intersection(*(set(other["undrawn_chars"]) for other in layouts))))
    return layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exports", nargs="+", type=Path, help="export folders of one lineage (the first is copied)")
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per export (default: equal)")
    parser.add_argument("--output", type=Path, required=True, help="the averaged export folder (must not exist)")
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f"{args.output} exists: give a new --output folder")
    tokenizers = {(e / "tokenizer.json").read_text(encoding="utf-8") for e in args.exports}
    if len(tokenizers) > 1:
        raise SystemExit("the exports' tokenizer.json differ: their token ids mean different things")
    states = [load_file(e / WEIGHTS) for e in args.exports]
    averaged = average_state_dicts(states, args.weights or [1.0] * len(states))
    staging = args.output.with_name(args.output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(args.exports[0], staging)
    save_file(averaged, staging / WEIGHTS, metadata={"format": "pt"})
    write_json_atomic(averaged_layout([read_layout(e) for e in args.exports]), staging / LAYOUT_NAME)
    staging.rename(args.output)
    print(f"{args.output}: the mean of {len(states)} exports' weights ({', '.join(map(str, args.exports))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
