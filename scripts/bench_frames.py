"""How crops with a frame read: a recognizer's readings split by whether `vqvae.templates.find_frame` finds a frame.

    python -m gpt.evaluate resources/models/ocr-ko-en outputs/s38/framed/*/labels.csv --ignore-space \\
        --predictions outputs/s38/framed-pred
    python -m scripts.bench_frames outputs/s38/framed-pred outputs/s38/framed

PREDICTIONS is a `gpt.evaluate --predictions` folder (one SET.csv each, `correct` column) and DATA the folder that
holds each set's folder (its labels.csv and images). Prints per set the crops whose frame was found and cut, and
the exact accuracy of those and of the rest: where reading framed crops still fails, the frame found or not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from scripts.pipeline import print_table


def frame_rows(predictions: Path, data: Path) -> list[dict]:
    """One row per set of `predictions`: crops, how many of them `find_frame` cuts to a frame, and the accuracy %
    of those and of the rest."""
    from vqvae.plumbing.io import load_image
    from vqvae.templates import find_frame

    rows = []
    for csv in sorted(predictions.glob("*.csv")):
        if csv.name.endswith(".bad.csv"):
            continue
        frame = pd.read_csv(csv, keep_default_na=False)
        if not (data / csv.stem).is_dir():
            raise FileNotFoundError(f"no folder {csv.stem}/ in {data}: give the folder that holds each set's folder")
        cut = pd.Series([find_frame(load_image(data / csv.stem / path)).inside is not None
                         for path in frame["img_path"]], index=frame.index)
        correct = frame["correct"].astype(bool)
        rows.append({"set": csv.stem, "crops": len(frame), "cut": int(cut.sum()),
                     "cut read %": round(100 * correct[cut].mean(), 1) if cut.any() else "",
                     "rest read %": round(100 * correct[~cut].mean(), 1) if (~cut).any() else ""})
    if not rows:
        raise FileNotFoundError(f"no prediction CSVs in {predictions}: give a gpt.evaluate --predictions folder")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("predictions", type=Path, help="gpt.evaluate --predictions folder")
    parser.add_argument("data", type=Path, help="the folder holding each set's folder")
    args = parser.parse_args(argv)
    rows = frame_rows(args.predictions, args.data)
    print_table(rows, list(rows[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
