"""Seconds the reranking takes (gpt.drawing.rerank, four readings per candidate) on the shipped drawer's
candidates for held-out prompts: draws once, then reranks --repeats times and prints each time.

    python scripts/time_rerank.py [--num-prompts 30] [--repeats 3]

Run with PYTHONPATH at two checkouts (e.g. a `git worktree` of an earlier commit) to compare their reranking
on the same machine, alternating; the candidates are the same (seeded) in both.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time

from gpt.drawing import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, generate_for_prompts, rerank
from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained
from gpt.sampling import SamplingConfig
from scripts.bench_draw import held_out_prompts


def digest(items: list) -> str:
    """A short hash of every candidate's reading, votes and rank: equal digests, equal rerankings."""
    return hashlib.sha1(repr([(i.read_back, i.votes, i.rank) for i in items]).encode()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-prompts", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    generator = load_pretrained(SHIPPED_DRAW_MODEL, load_tokenizer=False)
    recognizer = load_pretrained(SHIPPED_MODEL, load_tokenizer=False)
    prompts = [p.text for p in held_out_prompts(args.num_prompts) if not p.vertical]
    sampling = SamplingConfig(DEFAULT_TEMPERATURE, 0, 1.0, DEFAULT_GUIDANCE, 0)
    items = generate_for_prompts(generator, prompts, 8, sampling, 64)
    for _ in range(args.repeats):
        start = time.perf_counter()
        rerank(items, recognizer, generator.fingerprint)
        seconds = time.perf_counter() - start
        print(f"rerank {len(items)} candidates: {seconds:.2f} s ({len(items) / seconds:.1f} candidates/s); "
              f"readings and ranks digest {digest(items)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
