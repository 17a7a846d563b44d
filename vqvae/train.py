"""Train the VQ-VAE: `python -m vqvae.train CONFIG [key=value ...]`.

Writes to `run_dir`: checkpoints/last.ckpt (to resume) and checkpoints/best.ckpt (lowest val/loss),
config.yaml (the resolved config), samples/step_XXXXXX.png (originals above reconstructions), vqvae/ (the
last weights as a VQ-VAE folder, what init_from, vqvae.restrip and gpt.recode take) and the logger's files.
Re-running the same command resumes from last.ckpt (`resume_from=auto`). With `distill_from` it distils that
VQ-VAE's encoder into a narrower one (vqvae.distill).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl

from vqvae.checkpoint import init_weights, save_vqvae_dir
from vqvae.config import load_vqvae_config
from vqvae.distill import DistillDataModule, DistillTask, distilled_config
from vqvae.plumbing.config import save_config
from vqvae.task import VQVAEDataModule, VQVAETask
from vqvae.plumbing.trainer import build_trainer, checkpoint_dir, resume_checkpoint
from vqvae.plumbing.cli import run_cli

log = logging.getLogger("vqvae.train")

EXAMPLES = """examples:
  python -m vqvae.train config/vqvae-demo.yaml data.train=data/train.csv data.val=data/val.csv
  python -m vqvae.train config/vqvae-f16-16384.yaml trainer.devices=4 trainer.strategy=ddp
  python -m vqvae.train config/vqvae-demo.yaml trainer.max_time=00:00:10:00 resume_from=never
  python -m vqvae.train config/vqvae-distill.yaml distill_from=resources/models/ocr-ko-en/vqvae \
      data.train=shard/tokens.csv data.val=val/tokens.csv run_dir=outputs/distill
"""


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vqvae.train", description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1],
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config, e.g. config/vqvae-demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides in dot notation, e.g. model.num_codes=512 trainer.max_steps=100")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    """CLI entry: 0 ok, 2 a bad config or dataset (a one-line message naming it)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[list[str]] = None) -> int:
    bad_overrides = [o for o in args.overrides if "=" not in o]
    if bad_overrides:
        raise ValueError(f"overrides must look like key=value, got {bad_overrides}")
    cfg = load_vqvae_config(args.config, args.overrides)
    if cfg.distill_from:
        cfg = distilled_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    task = DistillTask(cfg) if cfg.distill_from else VQVAETask(cfg)
    datamodule = DistillDataModule(cfg) if cfg.distill_from else VQVAEDataModule(cfg)
    datamodule.setup("fit")  # fail on a bad CSV before the Trainer starts workers
    ckpt_path = resume_checkpoint(run_dir, cfg.resume_from)
    if ckpt_path is None and cfg.distill_from:
        if cfg.init_from:  # an encoder distilled before, to go on from; the codebook and decoder stay the teacher's
            init_weights(task.model, cfg.init_from)
        task.load_teacher(cfg.distill_from)
        log.info("new run: codebook and decoder of %s, an encoder %d channels wide to distil (%s)", cfg.distill_from,
                 cfg.model.encoder_channels, f"from {cfg.init_from}" if cfg.init_from else "new")
    elif ckpt_path is None and cfg.init_from:
        init_weights(task.model, cfg.init_from)
        log.info("new run: weights from %s", cfg.init_from)
    trainer = build_trainer(cfg.trainer, cfg.logger, run_dir, monitor="val/loss", seed=cfg.seed)
    if trainer.is_global_zero:
        save_config(cfg, run_dir / "config.yaml")
        num_params = sum(p.numel() for p in task.model.parameters())
        log.info("VQ-VAE %.2fM parameters, f=%d, %d codes; %d train / %d val images; run_dir %s",
                 num_params / 1e6, cfg.model.downsample, cfg.model.num_codes, len(datamodule.datasets["train"]),
                 len(datamodule.datasets["val"]), run_dir)
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        save_vqvae_dir(task.model, cfg.model, run_dir / "vqvae", meta={"max_length": int(cfg.data.max_length)})
        log.info("done: %d steps in %.0f s; %s; checkpoints in %s", trainer.global_step,
                 time.perf_counter() - start, metrics, checkpoint_dir(run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
