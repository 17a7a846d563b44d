"""The GPT's activation as Hugging Face's "gelu_new" (five elementwise passes) against the same function fused in one
kernel (gpt.modeling.ACTIVATION), on the recognition part of reading: same code grids, alternated rounds.

    python -m scripts.bench_activation outputs/pretrain/data/heldout_*/labels.csv [--model DIR] [--rounds 3]

Encodes the crops once with the model's VQ-VAE, then times `recognize_grids` (the GPT's prefill and greedy decoding)
under each activation, in turn, `--rounds` times, and counts the crops whose text differs from the first variant's.
Prints crops/s per round and the median of each variant.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from vqvae.plumbing.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs img_path,text")
    parser.add_argument("--model", default=None, help="recognition export (default: the shipped model)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from transformers.activations import ACT2FN

    from gpt.modeling import ACTIVATION
    from gpt.pretrained import SHIPPED_MODEL, load_pretrained
    from gpt.recognition import recognize_grids
    from vqvae.encoding import encode_paths
    from vqvae.plumbing.io import read_labelled_csv

    pretrained = load_pretrained(args.model or SHIPPED_MODEL)
    paths = [path for dataset in args.datasets for path in read_labelled_csv(dataset)["abs_path"]]
    grids, report = encode_paths(pretrained.vqvae, paths, pretrained.max_length, args.batch_size, progress=False)
    grids = [grid for grid in grids if grid is not None]
    print(f"{len(grids)} crops encoded ({len(report.rows)} unreadable)", flush=True)
    variants = ("gelu_new", ACTIVATION)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    first: list[str] = []
    for round_ in range(args.rounds):
        for name in variants:
            for block in pretrained.model.transformer.h:
                block.mlp.act = ACT2FN[name]
            start = time.perf_counter()
            texts = [text for text, _ in recognize_grids(pretrained, grids, args.batch_size, progress=False)]
            rates[name].append(len(grids) / (time.perf_counter() - start))
            first = first or texts
            print(f"round {round_ + 1}, {name}: {rates[name][-1]:.1f} crops/s, "
                  f"{sum(a != b for a, b in zip(first, texts))} texts differ from {variants[0]}'s", flush=True)
    for name in variants:
        print(f"{name}: median {statistics.median(rates[name]):.1f} crops/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
