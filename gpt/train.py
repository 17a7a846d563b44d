"""Train the recognition GPT on token datasets.

    python -m gpt.train config/gpt2-demo.yaml [key=value ...]
    python -m gpt.train config/tiny/gpt2.yaml data.train=a.csv,b.csv data.val=v.csv run_dir=/tmp/run

Writes to run_dir: config.yaml (resolved), charset.json, checkpoints/last.ckpt and best.ckpt,
samples/val_step_N.csv (validation predictions vs labels), skipped.csv (rows that did not fit, with
data.skip_too_long=true) and logs/. Re-running with the same run_dir resumes from last.ckpt
(resume_from=auto; set resume_from=never to start over).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import pytorch_lightning as pl

from gpt.config import GPTConfig
from gpt.task import monitor_for, prepare_training
from vqvae.plumbing.config import load_config
from vqvae.plumbing.trainer import build_trainer
from vqvae.plumbing.cli import run_cli

log = logging.getLogger("gpt.train")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gpt.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (see config/gpt2-*.yaml and config/tiny/gpt2.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. trainer.max_steps=100 data.batch_size=16")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 2 a bad config or dataset (a one-line message naming it, not a traceback)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    cfg: GPTConfig = load_config(GPTConfig, args.config, args.overrides)
    pl.seed_everything(cfg.seed, workers=True)
    task, data, ckpt_path = prepare_training(cfg)
    if cfg.model.gradient_checkpointing:
        log.info("gradient checkpointing on: less activation memory, about 30%% more compute per step")
    monitor, mode = monitor_for(cfg)
    trainer = build_trainer(cfg.trainer, cfg.logger, cfg.run_dir, monitor=monitor, mode=mode, seed=cfg.seed)
    trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    if trainer.is_global_zero:  # once, not once per DDP rank
        log.info("done: checkpoints in %s", Path(cfg.run_dir) / "checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
