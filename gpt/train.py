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

from gpt.config import GPTConfig, path_list
from gpt.data import GPTDataModule, check_same_sidecar
from gpt.task import CHECKPOINT_KEY, GPTTask, load_checkpoint, monitor_for
from gpt.vocab import ORDERS, Vocab
from vqvae.plumbing.config import load_config, save_config
from vqvae.plumbing.trainer import build_trainer, resume_checkpoint
from vqvae.plumbing.cli import run_cli

log = logging.getLogger("gpt.train")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gpt.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (see config/gpt2-*.yaml and config/tiny/gpt2.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. trainer.max_steps=100 data.batch_size=16")
    return parser.parse_args(argv)


def prepare(cfg: GPTConfig) -> tuple[GPTTask, GPTDataModule, Optional[str]]:
    """Data, vocab and task for a config, plus the checkpoint to resume from (or None)."""
    if cfg.order not in ORDERS:
        raise ValueError(f"order={cfg.order!r} is not one of {ORDERS}")
    weights = (cfg.loss.image_weight, cfg.loss.text_weight)
    if min(weights) < 0 or max(weights) == 0:
        raise ValueError(f"loss.image_weight={weights[0]} and loss.text_weight={weights[1]}: both must be >= 0 "
                         f"and one > 0 (text only for reading: loss.image_weight=0)")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = resume_checkpoint(run_dir, cfg.resume_from)
    vocab, model, resumed_meta = None, None, None
    if ckpt_path is not None:
        # Resuming: the ids must stay those the weights were trained with, whatever the data holds now.
        resumed_meta = load_checkpoint(ckpt_path)[CHECKPOINT_KEY]
        vocab = Vocab.from_dict(resumed_meta["vocab"], ckpt_path)
    elif cfg.init_from:
        from transformers import GPT2LMHeadModel

        init_dir = Path(cfg.init_from)
        vocab = Vocab.load(init_dir / "charset.json")
        # from_pretrained returns eval mode, and Lightning keeps module modes: without .train() dropout is off.
        model = GPT2LMHeadModel.from_pretrained(init_dir).train()
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
    data = GPTDataModule(cfg.data, cfg.order, run_dir, vocab, seed=cfg.seed).prepare()
    if resumed_meta is not None:
        check_same_sidecar(resumed_meta["vqvae"], ckpt_path, data.vqvae_meta, path_list(cfg.data.train)[0])
    cfg.data.max_visual_length = data.max_visual_length  # resolved from the sidecar when unset
    save_config(cfg, run_dir / "config.yaml")
    task = GPTTask(cfg, data.vocab, data.max_visual_length, data.max_text_length, data.vqvae_meta, model)
    return task, data, ckpt_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 2 a bad config or dataset (a one-line message naming it, not a traceback)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    cfg: GPTConfig = load_config(GPTConfig, args.config, args.overrides)
    pl.seed_everything(cfg.seed, workers=True)
    task, data, ckpt_path = prepare(cfg)
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
