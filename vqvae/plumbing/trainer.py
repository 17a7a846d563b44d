"""Builds the Lightning Trainer every training command uses: checkpoints, logger, resume.

Lightning is imported here and in the task/CLI files only, never in model files.
"""
from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, Timer
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_only

from vqvae.plumbing.optim import MEASURE_STEPS, max_time_seconds, steps_within
from vqvae.plumbing.config import LoggerConfig, TrainerConfig, to_dict
from vqvae.plumbing.hardware import cpu_has_native_bf16

log = logging.getLogger(__name__)


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def build_logger(cfg: LoggerConfig, run_dir: str | os.PathLike) -> Logger:
    run_dir = Path(run_dir)
    if cfg.kind == "csv":
        keep_earlier_metrics(run_dir / "logs")
        return CSVLogger(save_dir=str(run_dir), name="logs", version="")
    if cfg.kind == "tensorboard":
        return TensorBoardLogger(save_dir=str(run_dir), name="logs", version="")
    if cfg.kind == "wandb":
        # Offline unless the user opts in: runs must never need the network.
        mode = "online" if cfg.online else "offline"
        return WandbLogger(project=cfg.project, name=cfg.name, save_dir=str(run_dir), offline=mode == "offline")
    raise ValueError(f"logger.kind={cfg.kind!r} is not one of 'csv', 'tensorboard', 'wandb'")


@rank_zero_only
def keep_earlier_metrics(log_dir: Path) -> None:
    """Lightning's CSVLogger deletes the metrics.csv it finds when it starts, so a resumed run would lose the
    curve of its earlier calls: that file becomes metrics.1.csv, metrics.2.csv, ... (oldest first; see
    `metrics_files`) and metrics.csv holds this call's rows."""
    current = log_dir / "metrics.csv"
    if current.is_file():
        current.rename(log_dir / f"metrics.{len(metrics_files(log_dir.parent))}.csv")


def metrics_files(run_dir: str | os.PathLike) -> list[Path]:
    """The CSV logs of every call of a run, oldest first: metrics.1.csv, ..., then metrics.csv (the latest)."""
    log_dir = Path(run_dir) / "logs"
    earlier = sorted((path for path in log_dir.glob("metrics.*.csv") if path.name.split(".")[1].isdigit()),
                     key=lambda path: int(path.name.split(".")[1]))
    return earlier + [log_dir / "metrics.csv"] if (log_dir / "metrics.csv").is_file() else earlier


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


class StepBudget(Callback):
    """Turns a time budget (`trainer.max_time`) into a step count once, so that the learning rate and the
    stop are functions of the step.

    At step `measure_at` (the task's `lr_schedule.measure_at()`: the end of warmup, at least MEASURE_STEPS
    steps), rank 0 divides the time Lightning's Timer has left by the seconds per step over the second half
    of the steps so far and broadcasts the count to every rank; it becomes the decay end of the task's
    `lr_schedule` (a `vqvae.plumbing.optim.StepSchedule`) and the step the run stops at (the smaller of it and
    `max_steps`). The count is saved in the checkpoint, so a resume with the same `max_time` and `max_steps`
    continues the same curve. A resume that changes either measures anew, over as many steps as a fresh run does
    (10 steps just after a restart timed start-up as much as the rate: 0.219 s a step where the run went on at
    0.330-0.368, session 35),
    keeping the old curve meanwhile; the new count then ends the cosine that began at the first measurement, as if the
    budget had been the new one from the start (before session 35 the cosine began again at the peak rate, a warm
    restart nobody asked for). Lightning's Timer still stops a run that its validations (not in the measured rate)
    make late.
    """

    def __init__(self, max_time: str, max_steps: int = -1) -> None:
        max_time_seconds(max_time)  # a malformed value fails here, naming the key
        self.max_time, self.max_steps = str(max_time), int(max_steps)
        self.budget: Optional[int] = None
        self.measured_at: Optional[int] = None
        self.decay_from: Optional[int] = None  # the first measurement's step, where the cosine begins
        self._old_budget: Optional[int] = None  # a checkpoint's count under another budget, kept while measuring
        self._measure_from = self._measure_at = 0
        self._window: Optional[tuple[int, float]] = None  # (step, time.monotonic()) the rate is measured from

    def state_dict(self) -> dict[str, Any]:
        return {"max_time": self.max_time, "max_steps": self.max_steps, "budget": self.budget,
                "measured_at": self.measured_at, "decay_from": self.decay_from}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        same = (state_dict.get("max_time"), state_dict.get("max_steps")) == (self.max_time, self.max_steps)
        if state_dict.get("budget") is None:
            return
        # A checkpoint from before the key began its cosine where it measured.
        self.decay_from = int(state_dict.get("decay_from") or state_dict["measured_at"])
        if same:
            self.budget, self.measured_at = int(state_dict["budget"]), int(state_dict["measured_at"])
        else:
            self._old_budget = int(state_dict["budget"])
            log.info("trainer.max_time/max_steps changed since the checkpoint (%s, %s): measuring the step "
                     "budget anew", state_dict.get("max_time"), state_dict.get("max_steps"))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.budget is not None:  # resumed with the same budget
            self._apply(trainer, pl_module)
            return
        schedule = getattr(pl_module, "lr_schedule", None)
        if schedule is not None and self._old_budget is not None:
            schedule.set_decay(self.decay_from, self._old_budget)  # the old curve until the new count is known
        start = trainer.global_step
        self._measure_at = start + (schedule.measure_at() if schedule is not None else MEASURE_STEPS)
        # The second half of the window: the first steps also time start-up (workers, allocations).
        self._measure_from = start + (self._measure_at - start) // 2
        self._window = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if self.budget is not None:
            if step >= self.budget:
                trainer.should_stop = True
            return
        if self._window is None:
            if step >= self._measure_from:
                self._window = (step, time.monotonic())
            return
        if step < self._measure_at:
            return
        budget = None
        if trainer.is_global_zero:
            from_step, from_time = self._window
            seconds_per_step = max(time.monotonic() - from_time, 1e-9) / max(1, step - from_step)
            budget = steps_within(self._seconds_left(trainer), seconds_per_step, step)
            if self.max_steps > 0:
                budget = min(budget, self.max_steps)
            schedule = getattr(pl_module, "lr_schedule", None)
            decay = ("the learning rate decays to it" if schedule is None or not schedule.fixed
                     else f"the learning rate keeps optim.decay_steps={schedule.decay_end}")
            log.info("time budget %s: %.3f s per step over steps %d-%d, so the run stops at step %d (%s)",
                     self.max_time, seconds_per_step, from_step, step, budget, decay)
        self.budget = int(trainer.strategy.broadcast(budget, src=0))  # every rank takes rank 0's count
        self.measured_at = step
        self.decay_from = step if self.decay_from is None else self.decay_from
        self._apply(trainer, pl_module)

    def _seconds_left(self, trainer: pl.Trainer) -> float:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        left = timer.time_remaining() if timer is not None else None
        if left is None:
            raise RuntimeError("StepBudget needs the Trainer built with max_time (Lightning's Timer)")
        return left

    def _apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.budget is not None and self.measured_at is not None, "no budget to apply yet"
        schedule = getattr(pl_module, "lr_schedule", None)
        if schedule is not None:
            # The rate for the first measurement's step is already set (1 after warmup); the cosine starts there.
            schedule.set_decay(self.decay_from, self.budget)
        if trainer.global_step >= self.budget:
            trainer.should_stop = True


class StepSeed(Callback):
    """Seeds torch's global generator from (seed, optimizer step, micro-batch) before every training batch,
    so dropout and the dead-code restarts draw the same numbers whether a run went straight through or was
    resumed (the stream would otherwise depend on how many loaders were started before, which a resume
    changes). Not Lightning's epoch: it counts differently after a resume."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        micro_batch = batch_idx % max(1, trainer.accumulate_grad_batches)
        state = np.random.SeedSequence([self.seed, trainer.global_step, micro_batch]).generate_state(1)
        torch.manual_seed(int(state[0]))


def trainable_precision(precision: Any, accelerator: Any) -> Any:
    """`precision` for a Trainer on `accelerator`, except bf16 on a CPU that emulates it: 32-true there, with a
    warning. The configs ask for bf16-mixed, measured 1.7-2.6x faster than float32 on the development CPU
    (native bf16); an AVX2-only CPU ran a GPT training step 7.7x slower than float32 (vqvae.plumbing.hardware)."""
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    if on_cpu and str(precision).startswith("bf16") and not cpu_has_native_bf16():
        log.warning("trainer.precision=%s on a CPU without native bfloat16 (no avx512_bf16 or amx_bf16 in "
                    "/proc/cpuinfo): training in 32-true instead, since emulated bf16 is many times slower", precision)
        return "32-true"
    return precision


def build_trainer(trainer_cfg: TrainerConfig, logger_cfg: LoggerConfig, run_dir: str | os.PathLike,
                  monitor: Optional[str] = None, mode: str = "min",
                  callbacks: Optional[list[Callback]] = None, seed: Optional[int] = None,
                  **overrides: Any) -> pl.Trainer:
    """A Trainer writing `run_dir/checkpoints/last.ckpt` (and `best.ckpt` when `monitor` is given); with
    `max_time` it gets a StepBudget, which turns the time into a step count once; with `seed` a StepSeed,
    so that a resumed run trains exactly as an uninterrupted one."""
    # last.ckpt (always, to resume and export) and best.ckpt (by `monitor`, if given) come from two
    # callbacks: see SaveLastCheckpoint for why ModelCheckpoint(save_last=True) is not used.
    checkpoints: list[Callback] = [SaveLastCheckpoint(checkpoint_dir(run_dir) / "last.ckpt")]
    max_time = overrides.get("max_time", trainer_cfg.max_time)
    if max_time is not None:
        checkpoints.append(StepBudget(max_time, overrides.get("max_steps", trainer_cfg.max_steps)))
    if seed is not None:
        checkpoints.append(StepSeed(seed))
    if monitor:
        checkpoints.append(ModelCheckpoint(dirpath=str(checkpoint_dir(run_dir)), filename="best", monitor=monitor,
                                           mode=mode, save_top_k=1, save_last=False, enable_version_counter=False))
    # Every loader of the project uses a vqvae.plumbing.batches sampler, which shards across ranks and resumes
    # mid-epoch itself: Lightning must not wrap it in a DistributedSampler.
    kwargs = {**to_dict(trainer_cfg), "use_distributed_sampler": False}
    kwargs.update(overrides)
    kwargs["precision"] = trainable_precision(kwargs.get("precision"), kwargs.get("accelerator", "auto"))
    if kwargs.get("max_time") is not None:  # "00:00:130:00" is 130 minutes here; Lightning refuses fields over 59
        kwargs["max_time"] = timedelta(seconds=max_time_seconds(kwargs["max_time"]))
    logger = build_logger(logger_cfg, run_dir)
    extra = [LearningRateMonitor("step")] if logger is not None else []
    return pl.Trainer(logger=logger, callbacks=[*checkpoints, *extra, *(callbacks or [])],
                      default_root_dir=str(run_dir), **kwargs)


def resume_position(trainer: pl.Trainer) -> tuple[int, int]:
    """(epoch, batches of it already trained) where a fit continues: (0, 0) for a fresh run; after a
    resume, what the restored loops say. Read when the train loader is built, after the restore.

    For batch samplers, which Lightning neither restores nor calls `set_epoch` on (it only does so for
    samplers, and after creating the epoch's iterator, too late for DataLoader workers' prefetching).
    """
    loop = trainer.fit_loop
    return loop.epoch_progress.current.processed, loop.epoch_loop.batch_progress.current.completed


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
