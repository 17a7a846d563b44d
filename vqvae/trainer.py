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


def build_trainer(trainer_cfg: TrainerConfig, logger_cfg: LoggerConfig, run_dir: str | os.PathLike,
                  monitor: Optional[str] = None, mode: str = "min",
                  callbacks: Optional[list[Callback]] = None, **overrides: Any) -> pl.Trainer:
    """A Trainer writing `run_dir/checkpoints/last.ckpt` (and `best.ckpt` when `monitor` is given)."""
    # One callback writes both: last.ckpt (always, to resume) and best.ckpt (by `monitor`, if given).
    checkpoints = [ModelCheckpoint(dirpath=str(checkpoint_dir(run_dir)), filename="best", monitor=monitor,
                                   mode=mode, save_top_k=1 if monitor else 0, save_last=True,
                                   enable_version_counter=False)]
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
