"""Builds the Lightning Trainer every training command uses: checkpoints, logger, resume.

Lightning is imported here and in the task/CLI files only, never in model files.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.trainer.states import TrainerFn

from vqvae.schema import LoggerConfig, TrainerConfig, to_dict

log = logging.getLogger(__name__)


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def build_logger(cfg: LoggerConfig, run_dir: str | os.PathLike) -> Logger:
    run_dir = Path(run_dir)
    if cfg.kind == "csv":
        return CSVLogger(save_dir=str(run_dir), name="logs", version="")
    if cfg.kind == "tensorboard":
        return TensorBoardLogger(save_dir=str(run_dir), name="logs", version="")
    if cfg.kind == "wandb":
        # Offline unless the user opts in: runs must never need the network.
        mode = "online" if cfg.online else "offline"
        return WandbLogger(project=cfg.project, name=cfg.name, save_dir=str(run_dir), offline=mode == "offline")
    raise ValueError(f"logger.kind={cfg.kind!r} is not one of 'csv', 'tensorboard', 'wandb'")


class SaveLastCheckpoint(Callback):
    """Writes `path` (last.ckpt) after every validation while fitting and when training ends.

    Lightning 2.6's ModelCheckpoint(save_last=True) rewrites last.ckpt only at steps where it also saved a
    top-k checkpoint, so once the monitored metric stops improving last.ckpt goes stale (seen: a gpt.train
    run stopped by max_time at step 479 left last.ckpt at step 200, and its export held step-200 weights).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._saved_step = -1

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or trainer.global_step == self._saved_step:
            return
        trainer.save_checkpoint(str(self.path))  # every rank calls it; the strategy writes on rank 0
        self._saved_step = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)


def build_trainer(trainer_cfg: TrainerConfig, logger_cfg: LoggerConfig, run_dir: str | os.PathLike,
                  monitor: Optional[str] = None, mode: str = "min",
                  callbacks: Optional[list[Callback]] = None, **overrides: Any) -> pl.Trainer:
    """A Trainer writing `run_dir/checkpoints/last.ckpt` (and `best.ckpt` when `monitor` is given)."""
    # last.ckpt (always, to resume and export) and best.ckpt (by `monitor`, if given) come from two
    # callbacks: see SaveLastCheckpoint for why ModelCheckpoint(save_last=True) is not used.
    checkpoints: list[Callback] = [SaveLastCheckpoint(checkpoint_dir(run_dir) / "last.ckpt")]
    if monitor:
        checkpoints.append(ModelCheckpoint(dirpath=str(checkpoint_dir(run_dir)), filename="best", monitor=monitor,
                                           mode=mode, save_top_k=1, save_last=False, enable_version_counter=False))
    kwargs = to_dict(trainer_cfg)
    kwargs.update(overrides)
    logger = build_logger(logger_cfg, run_dir)
    extra = [LearningRateMonitor("step")] if logger is not None else []
    return pl.Trainer(logger=logger, callbacks=[*checkpoints, *extra, *(callbacks or [])],
                      default_root_dir=str(run_dir), **kwargs)


def resume_checkpoint(run_dir: str | os.PathLike, resume_from: Optional[str]) -> Optional[str]:
    """The checkpoint to resume from: `resume_from` itself, or with "auto" the run's last.ckpt if any."""
    if resume_from in (None, "", "never"):
        return None
    if resume_from == "auto":
        last = checkpoint_dir(run_dir) / "last.ckpt"
        if last.is_file():
            log.info("resuming from %s (set resume_from=never to start over)", last)
            return str(last)
        return None
    if not Path(resume_from).is_file():
        raise FileNotFoundError(f"resume_from={resume_from!r} does not exist; use 'auto', 'never' or a .ckpt path")
    return resume_from
