"""Would reading each crop in both polarities help? The normalization's polarity rule, measured.

    python -m scripts.bench_polarity outputs/pretrain/data/heldout_*/labels.csv ../shared/eval/real/*/labels.csv

`vqvae.templates.normalize_grey` decides one polarity per crop (dark text on light, from the crop's median), and the
model trains and reads only what it gives. A crop whose strokes cover more than half of it comes out light on dark.
This reads every labelled CSV as it is and once more with each normalized crop flipped (255 - grey), greedy, spaces
ignored, and prints per set: exact accuracy of each reading, of either (an oracle that knows which is right), and
of keeping the more confident of the two (what `gpt.read` could do at twice the cost).
"""
from __future__ import annotations

import argparse
from unittest import mock

import pandas as pd

from vqvae.plumbing.cli import run_cli


def compare(as_is: dict[str, pd.DataFrame], other: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per set, two readings of the same crops (prediction frames with img_path, confidence, correct; the second read
    another way, e.g. flipped): crops, exact accuracy % of each, of either, and of keeping the more confident reading
    (ties keep the first); how many crops kept the other reading and its mean confidence %."""
    rows = {}
    for name, frame in as_is.items():
        second = other[name]
        if list(second["img_path"]) != list(frame["img_path"]):
            raise ValueError(f"{name}: the two readings hold different crops; compare the same crops")
        keep_other = second["confidence"] > frame["confidence"]
        rows[name] = {"crops": len(frame), "as_is": 100 * frame["correct"].mean(),
                      "other": 100 * second["correct"].mean(),
                      "either": 100 * (frame["correct"] | second["correct"]).mean(),
                      "more_confident": 100 * second["correct"].where(keep_other, frame["correct"]).mean(),
                      "other_kept": int(keep_other.sum()), "other_confidence": 100 * second["confidence"].mean()}
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None, description: str = __doc__) -> argparse.Namespace:
    """The arguments of a bench that reads labelled CSVs twice (this one, scripts.bench_orientation)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs img_path,text")
    parser.add_argument("--model", default=None, help="recognition export (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    import vqvae.templates
    from gpt.evaluate import evaluate
    from gpt.pretrained import SHIPPED_MODEL, load_pretrained

    pretrained = load_pretrained(args.model or SHIPPED_MODEL)
    as_is = evaluate(pretrained, args.datasets, args.batch_size, ignore_space=True, progress=False)[1]
    normalize = vqvae.templates.normalize_grey
    # fit_to_template looks normalize_grey up at each call, in this process (evaluate's default: no loader workers).
    with mock.patch.object(vqvae.templates, "normalize_grey", lambda image: 255 - normalize(image)):
        flipped = evaluate(pretrained, args.datasets, args.batch_size, ignore_space=True, progress=False)[1]
    print("exact accuracy %: as normalized, flipped, either (oracle), the more confident of the two")
    for row in compare(as_is, flipped).itertuples():
        print(f"{row.Index:22s} {row.crops:5d} crops  as is {row.as_is:5.1f}  flipped {row.other:5.1f}  either "
              f"{row.either:5.1f}  more confident {row.more_confident:5.1f} (flipped kept on {row.other_kept}, "
              f"mean confidence flipped {row.other_confidence:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
