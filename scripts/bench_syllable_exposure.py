"""Reading accuracy by how often a word's rarest syllable comes in training: is Korean limited by rare syllables?

    python -m scripts.bench_syllable_exposure --train outputs/pretrain/data/shard_04*/labels.csv \\
        --predictions outputs/beams/pred-greedy/heldout_ko_*.csv

--train: labels.csv files of rendered training crops (their `text` column); --predictions: per-crop CSVs of
`gpt.evaluate --predictions DIR` (`label`, `correct`), or the prompts.csv of `scripts.bench_draw` (`prompt`,
`read_back`: a drawing counts as read when the recognizer read its prompt back, spaces ignored). Each Korean
crop or prompt is binned by the training count of its rarest Hangul syllable; the table gives how many fall in
each bin and the share read exactly; --by-length repeats it per label length (1, 2, 3, 4+ characters), since
rarer syllables come in rarer words. --charset MODEL_DIR also lists the syllables of that model's charset.json
that the training CSVs never hold: a drawer trained on them cannot draw those (it does not compose jamo).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from scripts.texts import is_syllable

BINS = ((0, 0), (1, 9), (10, 49), (50, 199), (200, None))


def syllable_counts(label_csvs: list[str]) -> Counter:
    counts: Counter = Counter()
    for path in label_csvs:
        for text in pd.read_csv(path, keep_default_na=False, dtype=str)["text"]:
            counts.update(ch for ch in text if is_syllable(ch))
    return counts


def exposure_table(counts: Counter, predictions: pd.DataFrame) -> list[dict]:
    """Rows {"rarest syllable seen", "crops", "read"} over the crops whose label holds a Hangul syllable."""
    rarest = predictions["label"].map(lambda label: min((counts[ch] for ch in label if is_syllable(ch)), default=None))
    rows = []
    for low, high in BINS:
        inside = rarest.notna() & (rarest >= low) & (rarest <= (high if high is not None else float("inf")))
        chosen = predictions[inside]
        seen = f"{low}" if low == high else f"{low}+" if high is None else f"{low}-{high}"
        rows.append({"rarest syllable seen": seen,
                     "crops": len(chosen), "read": f"{100 * chosen['correct'].mean():.1f}%" if len(chosen) else "n/a"})
    return rows


def unseen_syllables(counts: Counter, labels: pd.Series) -> list[str]:
    """The labels' Hangul syllables that the training CSVs never hold, sorted: the model was never shown them, so more
    steps on such data cannot teach them (make pretrain's syllable sampler draws only the training words' syllables)."""
    return sorted({ch for label in labels for ch in label if is_syllable(ch) and not counts[ch]})


def read_predictions(path: str) -> pd.DataFrame:
    """(label, correct) rows of a gpt.evaluate predictions CSV or a bench_draw prompts.csv."""
    from gpt.drawing import spells

    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    if {"prompt", "read_back"} <= set(frame.columns):
        correct = list(map(spells, frame["read_back"], frame["prompt"]))
        return pd.DataFrame({"label": frame["prompt"], "correct": correct})
    return pd.DataFrame({"label": frame["label"], "correct": frame["correct"] == "True"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True, help="labels.csv files of training crops")
    parser.add_argument("--predictions", nargs="+", required=True, help="gpt.evaluate --predictions CSVs")
    parser.add_argument("--by-length", action="store_true", help="also one table per label length")
    parser.add_argument("--charset", default=None, help="a model folder: list its charset's unseen syllables too")
    args = parser.parse_args(argv)
    from scripts.pipeline import print_table

    counts = syllable_counts(args.train)
    frames = [read_predictions(path) for path in args.predictions]
    predictions = pd.concat(frames, ignore_index=True)
    seen = sorted(counts.values())
    print(f"{sum(counts.values())} syllables, {len(counts)} distinct, in {len(args.train)} training CSVs; each distinct "
          f"one seen at least {seen[0] if seen else 0} times, median {seen[len(seen) // 2] if seen else 0}")
    print_table(exposure_table(counts, predictions), ["rarest syllable seen", "crops", "read"])
    unseen = unseen_syllables(counts, predictions["label"])
    print(f"syllables of the labels never in training: {len(unseen)} {''.join(unseen)}")
    if args.charset:
        from gpt.vocab import Vocab

        chars = Vocab.load(Path(args.charset) / "charset.json").chars
        unseen = unseen_syllables(counts, pd.Series(chars))
        print(f"syllables of {args.charset}'s charset ({sum(map(is_syllable, chars))}) never in training: "
              f"{len(unseen)} {''.join(unseen)}")
    if args.by_length:
        lengths = predictions["label"].str.len().clip(upper=4)
        for length, group in predictions.groupby(lengths):
            print(f"\nlabels of {length}{'+' if length == 4 else ''} characters")
            print_table(exposure_table(counts, group), ["rarest syllable seen", "crops", "read"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
