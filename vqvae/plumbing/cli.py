"""What every command shares: the exit-status wrapper (`run_cli`) and the meaning of `--device`."""
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


# Problems a user can reach and whose message already names the fix: one line on stderr, exit status 2.
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError)


def run_cli(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
            run: Callable[[argparse.Namespace, Sequence[str] | None], int],
            argv: Sequence[str] | None = None, log_level: int = logging.INFO) -> int:
    """The one exit-status wrapper of every command: parse, run, and return `run`'s own status (0 ok, 1 some
    rows failed and were reported), or 2 when it raises one of USER_ERRORS (the message, not a traceback)."""
    args = parse_args(argv)
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args, argv)
    except USER_ERRORS as error:
        # KeyError's str() is the repr of its key; its argument is the message.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
