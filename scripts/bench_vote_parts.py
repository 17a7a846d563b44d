"""Which part of the voting copies' augmentation carries the gain of `--votes`: moved borders or jittered looks.

    python -m scripts.bench_vote_parts outputs/pretrain/data/heldout_*/labels.csv --votes 4 [--model DIR]

Reads the labelled CSVs with `gpt.evaluate`'s reading (`--ignore-space`, greedy) and N votes three times: the copies
augmented as `gpt.read --votes` does (vqvae.data.augment_pair: borders moved, then colours jittered with some blur
and noise), with the borders moved only (vqvae.data.reframe_pair), and with the looks jittered only
(vqvae.data.jitter_appearance); then once without voting. Prints exact accuracy per set and their mean per variant.
"""
from __future__ import annotations

import argparse
import sys
from unittest import mock

import numpy as np

from vqvae.plumbing.cli import run_cli


def looks_only(image: np.ndarray, target: np.ndarray | None, rng: np.random.Generator):
    """augment_pair without moving the borders."""
    from vqvae.data import jitter_appearance

    return jitter_appearance(image, rng), target


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs img_path,text")
    parser.add_argument("--model", default=None, help="recognition export (default: the shipped model)")
    parser.add_argument("--votes", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    import vqvae.data
    from gpt.evaluate import evaluate
    from gpt.pretrained import SHIPPED_MODEL, load_pretrained

    pretrained = load_pretrained(args.model or SHIPPED_MODEL)
    variants = {"both (gpt.read --votes)": vqvae.data.augment_pair, "borders only": vqvae.data.reframe_pair,
                "looks only": looks_only}
    rows = {}
    for name, augment in variants.items():
        # CropDataset looks augment_pair up at each item, in this process (evaluate's default: no loader workers).
        with mock.patch.object(vqvae.data, "augment_pair", augment):
            table, _, _ = evaluate(pretrained, args.datasets, args.batch_size, ignore_space=True, progress=False,
                                   votes=args.votes)
        rows[f"{args.votes} votes, {name}"] = table
        print(f"{name}: done", file=sys.stderr, flush=True)
    rows["1 reading"] = evaluate(pretrained, args.datasets, args.batch_size, ignore_space=True, progress=False)[0]
    print(f"exact accuracy % ({', '.join(args.datasets)})")
    for name, table in rows.items():
        sets = table[table["dataset"] != "combined"]
        cells = "  ".join(f"{d} {100 * a:.1f}" for d, a in zip(sets["dataset"], sets["accuracy"]))
        print(f"{name:32s} {cells}  mean {100 * sets['accuracy'].mean():.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
