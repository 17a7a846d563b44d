"""bf16 autocast against float32 on this CPU: a vocab projection and a training step of the shipped GPT's size.

    python -m scripts.bench_precision [--steps 3] [--threads 1]

Times (a) the LM head's matmul of a drawing batch (4 800 positions x 128 -> 5 700 vocab) and (b) a forward and
backward pass of a 4 x 128 GPT-2 (batch 32 x 152 tokens, random weights), each in float32 and under bf16
autocast, alternated, and prints the seconds of each with whether the CPU has native bf16
(vqvae.plumbing.hardware), which decides the training precision (vqvae.plumbing.trainer.trainable_precision).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from vqvae.plumbing.hardware import cpu_has_native_bf16


def seconds(work, bf16: bool, repeats: int) -> float:
    context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    start = time.perf_counter()
    for _ in range(repeats):
        with context:
            work()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed repeats of each (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    hidden, head = torch.randn(4800, 128), torch.randn(5700, 128)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=5700, n_positions=160, n_embd=128, n_layer=4, n_head=4,
                                       attn_implementation="eager"))
    ids = torch.randint(0, 5700, (32, 152))

    def step() -> None:
        model(input_ids=ids, labels=ids).loss.backward()

    figures: dict = {"native_bf16": cpu_has_native_bf16(), "threads": args.threads}
    for name, work in (("matmul", lambda: hidden @ head.T), ("train_step", step)):
        work()  # warm-up
        for precision in ("float32", "bf16", "float32", "bf16"):  # alternated: timings drift on shared machines
            figures.setdefault(f"{name}_{precision}_s", []).append(round(seconds(work, precision == "bf16",
                                                                                  args.steps), 4))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
