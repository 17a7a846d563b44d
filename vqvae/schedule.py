"""Learning-rate schedule shared by every training command: linear warmup, then cosine decay.

A run capped by `trainer.max_time` usually stops long before `max_steps`, and a step-only cosine would
then end at a high learning rate. So the decay follows whichever is further along: the optimiser steps
(toward `decay_steps`) or the wall-clock time (toward `max_seconds`).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional


def max_time_seconds(max_time: Optional[str]) -> Optional[float]:
    """Seconds of a Lightning `max_time` string "DD:HH:MM:SS" (None stays None)."""
    if max_time is None:
        return None
    parts = str(max_time).split(":")
    if len(parts) != 4 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"trainer.max_time={max_time!r} is not DD:HH:MM:SS (e.g. 00:00:05:00 for five minutes)")
    days, hours, minutes, seconds = (int(part) for part in parts)
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def warmup_cosine(progress: float, step: int, warmup_steps: int, min_ratio: float) -> float:
    """LR multiplier in [min_ratio, 1]: (step + 1) / warmup_steps during warmup, then a cosine from 1 at
    progress 0 to min_ratio at progress 1 (flat after)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_lambda(warmup_steps: int, decay_steps: Optional[int], min_ratio: float,
              max_seconds: Optional[float] = None, clock: Callable[[], float] = time.monotonic
              ) -> Callable[[int], float]:
    """The multiplier as a function of the optimiser step, for `torch.optim.lr_scheduler.LambdaLR`.

    Progress is the larger of (step - warmup) / (decay_steps - warmup) and the time since the first call
    over `max_seconds`; with neither set the rate stays at 1 after warmup. A closure on purpose:
    LambdaLR leaves functions out of its state dict, so a resumed run starts its clock afresh instead of
    restoring another process's clock reading.
    """
    warmup_steps = max(1, int(warmup_steps))
    start: list[float] = []

    def factor(step: int) -> float:
        now = clock()
        if not start:
            start.append(now)
        progress = 0.0
        if decay_steps and decay_steps > warmup_steps:
            progress = (step - warmup_steps) / (decay_steps - warmup_steps)
        if max_seconds:
            progress = max(progress, (now - start[0]) / max_seconds)
        return warmup_cosine(progress, step, warmup_steps, min_ratio)

    return factor
