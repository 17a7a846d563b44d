"""How much the shifted copies of `--votes` should weigh against the image's own reading.

    python -m scripts.bench_vote_weight outputs/pretrain/data/val/labels.csv --votes 5 --weights 0 0.25 0.5 1 2

Reads the labelled CSVs with `gpt.evaluate`'s reading (`--ignore-space`) and N votes once per weight
(gpt.reading.COPY_WEIGHT: a reading's score is log p(text | image) + weight * the sum of log p(text | copy) over
the N-1 copies; weight 0 keeps the best of the N beams), and prints exact accuracy per set and their mean per weight.
Choose the weight on a set apart from the held-out ones (the validation set: training words and fonts).
"""
from __future__ import annotations

import argparse
import sys
from unittest import mock

from vqvae.plumbing.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs img_path,text")
    parser.add_argument("--model", default=None, help="recognition export (default: the shipped model)")
    parser.add_argument("--votes", type=int, default=5)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    import gpt.reading
    from gpt.evaluate import evaluate
    from gpt.pretrained import SHIPPED_MODEL, load_pretrained

    pretrained = load_pretrained(args.model or SHIPPED_MODEL)
    print(f"exact accuracy % with {args.votes} votes ({', '.join(args.datasets)})")
    for weight in args.weights:
        # The weighing runs in this process (loader workers only encode the copies), so the patch reaches it.
        with mock.patch.object(gpt.reading, "COPY_WEIGHT", weight):
            table, _, _ = evaluate(pretrained, args.datasets, args.batch_size, ignore_space=True, progress=False,
                                   votes=args.votes)
        sets = table[table["dataset"] != "combined"]
        cells = "  ".join(f"{name} {100 * value:.1f}" for name, value in zip(sets["dataset"], sets["accuracy"]))
        print(f"weight {weight:g}: {cells}  mean {100 * sets['accuracy'].mean():.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
