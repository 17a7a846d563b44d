"""The command-line options the reading commands (gpt.predict, gpt.read, gpt.evaluate) share."""
from __future__ import annotations

import argparse

import torch

from gpt.pretrained import model_and_inputs
from gpt.recognition import PRECISIONS
from vqvae.plumbing.cli import DEVICE_HELP


def add_inference_options(parser: argparse.ArgumentParser, image_files: bool = False) -> None:
    """The options gpt.predict, gpt.read and gpt.evaluate share; `image_files` adds the image-loading
    ones (--num-workers, --threads). Check them with `check_inference_options`."""
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-beams", type=int, default=1, help="1: greedy; more: beam search")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="GPT precision; auto: bf16 autocast on CUDA and on CPUs with native bf16")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if image_files:
        parser.add_argument("--votes", type=int, default=1,
                            help="read each image N times, as it is and N-1 times shifted, scaled and colour-jittered "
                                 "(seeded); the text with the most summed confidence wins (N times the work)")
        parser.add_argument("--num-workers", type=int, default=None,
                            help="loader processes; on CPU each encodes and reads whole batches with one thread "
                                 "(default: one per core, at most 8; on GPU 4 that load images; 0: all in this "
                                 "process)")
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def check_inference_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error naming the bad value of a shared inference option."""
    workers = getattr(args, "num_workers", None) or 0
    if min(args.batch_size, args.num_beams, getattr(args, "votes", 1)) < 1 or workers < 0:
        parser.error(f"--batch-size {args.batch_size}, --num-beams {args.num_beams} and --votes "
                     f"{getattr(args, 'votes', 1)} must be >= 1, --num-workers {workers} >= 0")
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def take_model_argument(parser: argparse.ArgumentParser, args: argparse.Namespace, inputs: str, what: str) -> None:
    """Set args.model_dir from `[MODEL_DIR] INPUT ...` in args.<inputs> (gpt.pretrained.model_and_inputs: the
    shipped model when the first argument is not a model folder); parser.error when nothing is left to read."""
    try:
        args.model_dir, rest = model_and_inputs(getattr(args, inputs))
    except FileNotFoundError as error:
        parser.error(str(error))
    if not rest:
        parser.error(f"give at least one {what} after the model folder")
    setattr(args, inputs, rest)
