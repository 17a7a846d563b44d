"""What voting only on unsure readings would give, from two `gpt.evaluate --predictions` folders.

    python -m scripts.bench_vote_threshold outputs/adaptive/votes1 outputs/adaptive/votes8 --votes 8

ONE holds one reading per crop (`--votes 1`), VOTED the same crops read with `--votes N`. For each confidence
threshold T, a crop keeps its one reading when its confidence is at least T and takes the voted reading
otherwise: the tables give exact accuracy per set (the folders' DATASET.csv files, `correct` column) and the
share of crops re-read; the cost relative to one reading counts each re-read crop N-1 more times (an augmented
copy costs about as much to encode and decode as the first). It asks whether the one reading's confidence picks
the crops worth voting on, i.e. whether voting on unsure crops only beats fewer votes on all at equal cost.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scripts.compare_predictions import read_pair

THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)


def combined(one: pd.DataFrame, voted: pd.DataFrame, threshold: float) -> pd.Series:
    """Per crop: correct under the rule 'take the voted reading when the one reading is below threshold'."""
    unsure = one["confidence"] < threshold
    return voted["correct"].where(unsure, one["correct"])


def table(one_dir: Path, voted_dir: Path, thresholds=THRESHOLDS) -> pd.DataFrame:
    rows = []
    for name, (one, voted) in read_pair(one_dir, voted_dir).items():
        for threshold in thresholds:
            unsure = (one["confidence"] < threshold).mean()
            rows.append({"dataset": name, "below": threshold,
                         "accuracy %": 100 * combined(one, voted, threshold).mean(), "re-read %": 100 * unsure})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("one", type=Path, help="predictions folder of gpt.evaluate --votes 1")
    parser.add_argument("voted", type=Path, help="predictions folder of gpt.evaluate --votes N, same CSVs")
    parser.add_argument("--votes", type=int, required=True, help="the N of the voted folder")
    args = parser.parse_args(argv)
    frame = table(args.one, args.voted)
    accuracy = frame.pivot(index="below", columns="dataset", values="accuracy %")
    share = frame.pivot(index="below", columns="dataset", values="re-read %")
    # What publishing compares (scripts.publish): the mean over the held-out sets, each counted once.
    heldout = [name for name in accuracy.columns if name.startswith("heldout_")]
    if heldout:
        accuracy["held-out mean"] = accuracy[heldout].mean(axis=1)
        share["held-out mean"] = share[heldout].mean(axis=1)
        share["held-out cost x"] = 1 + share["held-out mean"] / 100 * (args.votes - 1)
    print("exact accuracy % (one reading kept at confidence >= below, else the voted one)")
    print(accuracy.round(1).to_string())
    print("\ncrops re-read %")
    print(share.round(1).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
