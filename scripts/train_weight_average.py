"""`gpt.train` with an exponential moving average (EMA) of the weights kept beside the run: a measurement tool.

    python -m scripts.train_weight_average 0.999 config/gpt2-pretrain.yaml data.train=... run_dir=RUN ...

Every 250 optimizer steps and at the end it writes RUN/checkpoints/ema.ckpt: last.ckpt with the averaged weights
in place of the run's, which `gpt.export` exports like any checkpoint. The run's own end (last.ckpt) and its
average then come from one trajectory, a pair with nothing else different.

Measured (BENCHMARKS.md, session 32): on session 30's control recipe (chunk 66 continued at lr 5e-5), the average
read 737 of 900 held-out crops and the run 739 at step 4 000: no gain, so `gpt.train` keeps no average.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import pytorch_lightning as pl
import torch

import gpt.train
from vqvae.plumbing import trainer as plumbing

WRITE_EVERY = 250


class WeightAverage(pl.Callback):
    """The EMA of a module's floating-point tensors, updated after each optimizer step with decay
    min(decay, (1 + n) / (10 + n)) at the n-th update (short runs are not dominated by their start)."""

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay={decay} must be in (0, 1), e.g. 0.999 (an average over about 1 000 steps)")
        self.decay = float(decay)
        self.shadow: Optional[dict[str, torch.Tensor]] = None
        self.updates = 0
        self.last_step = -1

    def update(self, state: dict[str, torch.Tensor]) -> None:
        if self.shadow is None:
            self.shadow = {k: v.detach().float().clone() if v.is_floating_point() else v.clone()
                           for k, v in state.items()}
            return
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for key, value in state.items():
                if value.is_floating_point():
                    self.shadow[key].mul_(decay).add_(value.detach().float(), alpha=1 - decay)
                else:
                    self.shadow[key].copy_(value)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step == self.last_step:  # accumulating gradients: no optimizer step yet
            return
        self.last_step = trainer.global_step
        self.update(pl_module.state_dict())
        if trainer.global_step % WRITE_EVERY == 0:
            self.write(Path(trainer.default_root_dir))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write(Path(trainer.default_root_dir))

    def write(self, run_dir: Path) -> None:
        """RUN/checkpoints/ema.ckpt (atomically), once last.ckpt exists to lend it the run's metadata."""
        last = plumbing.checkpoint_dir(run_dir) / "last.ckpt"
        if self.shadow is None or not last.is_file():
            return
        checkpoint = torch.load(last, map_location="cpu", weights_only=False)
        checkpoint["state_dict"] = {k: v.clone() for k, v in self.shadow.items()}
        checkpoint["weight_average"] = {"decay": self.decay, "updates": self.updates}
        tmp = last.with_name("ema.ckpt.tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(last.with_name("ema.ckpt"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        decay = float(argv[0])
    except ValueError:
        print(f"the first argument must be the decay (e.g. 0.999), got {argv[0]!r}\n{__doc__}", file=sys.stderr)
        return 2
    average = WeightAverage(decay)
    build_trainer = plumbing.build_trainer

    def with_average(*args: Any, callbacks: Optional[list] = None, **kwargs: Any) -> pl.Trainer:
        return build_trainer(*args, callbacks=[*(callbacks or []), average], **kwargs)

    gpt.train.build_trainer = with_average  # gpt.train imported the name; this run adds one callback to it
    return gpt.train.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
