"""Tokens the recognition GPT computes per crop with and without trimming the image padding (DESIGN §3).

    python -m scripts.bench_trimming outputs/pretrain/data/shard_000/tokens.csv [--batch-size 32]

Untrimmed, every sequence is max_visual_length + max_text_length long. Trimmed (Vocab.trim_image_padding),
a batch is as long as its longest image + 1 + max_text_length; length-grouped batches (LengthGroupedBatchSampler,
as gpt.train draws them) and shuffled ones are both measured. Counts only: the time per token is the same.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gpt.data import LengthGroupedBatchSampler, read_token_csvs
from vqvae.tokens import string_to_grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tokens", help="a token CSV (vqvae.encode)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-text-length", type=int, default=24)
    args = parser.parse_args(argv)
    frame, meta = read_token_csvs([args.tokens], "data")
    visual = int(meta["max_length"])
    lengths = np.array([grid.shape[0] * (grid.shape[1] + 1) for grid in map(string_to_grid, frame["visual_tokens"])])
    full = visual + args.max_text_length

    def per_crop(order: np.ndarray) -> float:
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        total = sum(len(b) * (min(int(lengths[b].max()) + 1, visual) + args.max_text_length) for b in batches)
        return total / len(order)

    sampler = LengthGroupedBatchSampler(lengths, args.batch_size, num_replicas=1, rank=0)
    grouped = per_crop(np.fromiter((i for batch in sampler for i in batch), dtype=np.int64))
    shuffled = per_crop(np.random.default_rng(0).permutation(len(lengths)))
    figures = {"crops": len(lengths), "mean_image_tokens": round(float(lengths.mean()), 1),
               "untrimmed_tokens_per_crop": full, "trimmed_shuffled_tokens_per_crop": round(shuffled, 1),
               "trimmed_grouped_tokens_per_crop": round(grouped, 1),
               "speedup_grouped": round(full / grouped, 2)}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
