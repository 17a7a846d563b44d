"""What the project's commands share: the exit-status convention and the meaning of `--device`."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

import torch

DEVICE_HELP = "'auto' (CUDA when torch sees a GPU, else CPU), 'cpu', 'cuda', 'cuda:1', ..."


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device a `--device` value (or a torch.device) names; ValueError, naming the fix, for an
    unknown name or for CUDA without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device {name!r} is not a device ({error}); use {DEVICE_HELP}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} asked for CUDA but torch sees no GPU; use --device cpu or auto")
    return device


def run_cli(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
            run: Callable[[argparse.Namespace, Sequence[str] | None], int],
            argv: Sequence[str] | None = None) -> int:
    """Parse, run, and return the exit status: `run`'s own (0 ok, 1 some rows failed), or 2 when it raises
    FileNotFoundError/ValueError — user-reachable problems whose message already says the fix."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args, argv)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
