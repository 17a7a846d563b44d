"""The exit-status convention of the project's file-processing commands, in one place."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence


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
