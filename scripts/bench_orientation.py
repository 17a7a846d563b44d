"""Would reading tall crops also as horizontal lines help? The normalization's orientation rule, measured.

    python -m scripts.bench_orientation ../shared/eval/real/*/labels.csv outputs/pretrain/data/heldout_*/labels.csv

`vqvae.templates.is_horizontal` takes a crop taller than wide for a vertical line, and the model trains and reads
only what it gives; a short horizontal word in a near-square crop (`GAP`, `the`) is then read top to bottom. This
reads every crop of each labelled CSV whose width / height lies in BAND twice, greedy, spaces ignored: as it is, and
padded on the right with its own edge to a square, so that it becomes a horizontal line at the same glyph scale;
and prints per set the exact accuracy of each reading, of either (an oracle) and of keeping the more confident of
the two (what `gpt.read` could do for those crops at twice their cost).
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import pandas as pd

from scripts.bench_polarity import compare, parse_args
from vqvae.plumbing.cli import run_cli

# Tall crops that may be horizontal lines: the renderer's horizontal crops reach down to width / height 0.5 (2.5% of
# shard 067's horizontal crops are taller than wide, none under 0.5; session 37).
BAND = (0.5, 1.0)


def as_horizontal(image: np.ndarray) -> np.ndarray:
    """A crop taller than wide padded on the right with its own edge until it is one pixel wider than tall."""
    return cv2.copyMakeBorder(image, 0, 0, 0, image.shape[0] - image.shape[1] + 1, cv2.BORDER_REPLICATE)


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda arguments: parse_args(arguments, __doc__), run, argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from gpt.metrics import normalize_for_metrics
    from gpt.pretrained import SHIPPED_MODEL, load_pretrained
    from gpt.reading import read_arrays
    from vqvae.data import read_image_size
    from vqvae.plumbing.io import load_image, read_labelled_csv

    pretrained = load_pretrained(args.model or SHIPPED_MODEL, load_tokenizer=False)
    print(f"exact accuracy % of the crops with width / height in [{BAND[0]}, {BAND[1]}): as a vertical line (as "
          f"now), padded into a horizontal one, either (oracle), the more confident of the two")
    for dataset in args.datasets:
        frame = read_labelled_csv(dataset)
        sizes = [read_image_size(path) for path in frame["abs_path"]]  # headers only: the band is a few crops
        band = [i for i, (width, height) in enumerate(sizes) if BAND[0] <= width / height < BAND[1]]
        if not band:
            print(f"{dataset}: none of its {len(frame)} crops", flush=True)
            continue
        images = {i: load_image(frame["abs_path"][i]) for i in band}
        labels = [normalize_for_metrics(frame["text"][i], ignore_space=True) for i in band]
        readings = {}
        for name, turn in (("as_is", lambda image: image), ("horizontal", as_horizontal)):
            read = read_arrays(pretrained, [turn(images[i]) for i in band], args.batch_size)
            correct = [normalize_for_metrics(r.text, ignore_space=True) == label for r, label in zip(read, labels)]
            readings[name] = {dataset: pd.DataFrame({"img_path": frame["img_path"][band].tolist(),
                                                     "confidence": [r.confidence for r in read], "correct": correct})}
        row = compare(readings["as_is"], readings["horizontal"]).loc[dataset]
        print(f"{dataset}: {int(row.crops)} of its {len(frame)} crops  as vertical {row.as_is:5.1f}  as horizontal "
              f"{row.other:5.1f}  either {row.either:5.1f}  more confident {row.more_confident:5.1f} (horizontal kept "
              f"on {int(row.other_kept)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
