"""Reverse (text-to-image) fine-tuning of a recognition export.

    python -m gpt.finetune config/gpt2-demo-finetune.yaml [key=value ...]
    python -m gpt.finetune config/tiny/gpt2-finetune.yaml init_from=outputs/gpt/export \\
        data.train=train_tokens.csv data.val=val_tokens.csv run_dir=/tmp/ft

Starts from `init_from` (a folder written by `python -m gpt.export`: weights, charset, layout and VQ-VAE)
and trains the same GPT-2 on text-then-image sequences of the same token CSVs (augmented encodings from
`vqvae.encode --repeats N --augment` welcome). Token CSVs from a VQ-VAE other than the export's are refused.
The image loss is weighted up by default (loss.image_weight); with probability `cond_dropout` a training
row's prompt is replaced by the empty text, which teaches the model the unconditional distribution that
classifier-free guidance (`gpt.generate --guidance-scale`) needs.

Writes to run_dir: config.yaml, charset.json, checkpoints/last.ckpt and best.ckpt (by val/loss),
samples/step_NNNNNN.png (images of `samples.prompts` every `samples.every_n_steps` steps and at the end),
logs/, and the export (same self-contained format, order text_first) in run_dir/export.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from gpt.config import FinetuneConfig, SamplesConfig, gpt_config_view, path_list
from gpt.pretrained import VQVAE_DIR, Pretrained, load_pretrained
from gpt.sampling import SamplingConfig, candidate_uniforms, sample_image_parts
from gpt.task import GPTTask, monitor_for, prepare_training
from gpt.vocab import Vocab
from vqvae.plumbing.io import save_image
from vqvae.templates import upright
from vqvae.plumbing.config import load_config, save_config
from vqvae.tokens import read_sidecar
from vqvae.plumbing.trainer import build_trainer, checkpoint_dir
from vqvae.plumbing.cli import run_cli

log = logging.getLogger("gpt.finetune")


def check_token_csvs(cfg: Any, export: Pretrained) -> None:
    """ValueError unless every train/val token CSV was encoded by the export's VQ-VAE (names both)."""
    for split in ("train", "val"):
        for path in path_list(getattr(cfg.data, split)):
            found = read_sidecar(path).get("fingerprint")
            if found != export.fingerprint:
                raise ValueError(
                    f"data.{split} {path} was encoded by VQ-VAE {found!r}, but init_from={str(export.directory)!r} "
                    f"was trained with VQ-VAE {export.fingerprint!r}; re-encode the data with the export's VQ-VAE "
                    f"({export.directory / VQVAE_DIR}) or start from an export of the VQ-VAE that made it")


def adopt_export_layout(cfg: Any, export: Pretrained) -> None:
    """Take the export's sequence lengths and model size into `cfg` (they fix the weights' shapes);
    ValueError if the config asks for other lengths."""
    for key, value in (("max_visual_length", export.max_visual_length), ("max_text_length", export.max_text_length)):
        given = cfg.data[key]
        if key == "max_visual_length" and given is None:
            cfg.data[key] = value
        elif int(given) != value:
            raise ValueError(f"data.{key}={given} but init_from={str(export.directory)!r} was trained with {value}; "
                             f"the fine-tuned model keeps the export's layout: set data.{key}={value} "
                             "or leave it unset")
    hf = export.model.config
    cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd = hf.n_layer, hf.n_head, hf.n_embd


class FinetuneTask(GPTTask):
    """GPTTask plus prompt dropout: each training row's text becomes the empty text (its orientation mark
    kept) with probability `cond_dropout` (the rest of GPTTask — losses, logging, optimizer, checkpoints — is used
    as it is)."""

    def __init__(self, cfg: Any, vocab: Vocab, max_visual_length: int, max_text_length: int,
                 vqvae_meta: Optional[dict] = None, model: Any = None, cond_dropout: float = 0.0):
        super().__init__(cfg, vocab, max_visual_length, max_text_length, vqvae_meta, model)
        if not 0.0 <= cond_dropout < 1.0:
            raise ValueError(f"cond_dropout={cond_dropout} must be in [0, 1)")
        self.cond_dropout = float(cond_dropout)
        # The empty prompt's text part and loss marks, laid out by the Vocab (the one place that makes ids).
        dummy_grid = np.zeros((1, 1), dtype=np.int64)
        ids, part = vocab.sequence(dummy_grid, "", "text_first", self.max_visual_length, self.max_text_length)
        self.register_buffer("empty_ids", torch.from_numpy(ids[:self.max_text_length]).long(), persistent=False)
        self.register_buffer("empty_part", torch.from_numpy(part[:self.max_text_length]), persistent=False)

    def drop_prompts(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """A copy of the batch with the text part of a random `cond_dropout` share of rows made empty
        (drawn from torch's global RNG, which the CLI seeds)."""
        if self.cond_dropout <= 0:
            return batch
        input_ids, part = batch["input_ids"], batch["loss_part"]
        drop = torch.rand(input_ids.shape[0], device=input_ids.device) < self.cond_dropout  # (B,)
        if not bool(drop.any()):
            return batch
        text = self.max_text_length
        input_ids, part = input_ids.clone(), part.clone()
        # Position 0 stays: the orientation mark (<s> or <vertical>) is kept, only the text goes.
        input_ids[drop, 1:text] = self.empty_ids[1:]
        part[drop, 1:text] = self.empty_part[1:].to(part.dtype)
        return {**batch, "input_ids": input_ids, "loss_part": part}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return super().training_step(self.drop_prompts(batch), batch_idx)


class SampleImages(pl.Callback):
    """Every `every_n_steps` optimizer steps (and at the end) draws `num_candidates` images for each fixed
    prompt and saves one captioned sheet to run_dir/samples/step_NNNNNN.png."""

    def __init__(self, cfg: SamplesConfig, vqvae: torch.nn.Module, run_dir: str | Path):
        self.cfg, self.vqvae, self.folder = cfg, vqvae, Path(run_dir) / "samples"
        self.last_step = -1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: FinetuneTask, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        every = int(self.cfg.every_n_steps)
        if every > 0 and trainer.global_step % every == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: FinetuneTask) -> None:
        self.save(trainer, pl_module)

    @torch.no_grad()
    def save(self, trainer: pl.Trainer, pl_module: FinetuneTask) -> Optional[Path]:
        step = trainer.global_step
        if not self.cfg.prompts or step == self.last_step or not trainer.is_global_zero:
            return None
        from gpt.drawing import Generated, check_prompts, decode_candidates, make_sheet

        self.last_step = step
        vocab, num = pl_module.vocab, int(self.cfg.num_candidates)
        prompts = check_prompts(list(self.cfg.prompts), vocab, pl_module.max_text_length, "the fine-tuned model")
        text_parts = torch.tensor([vocab.text_part(p, pl_module.max_text_length) for p in prompts])
        prompt_ids = text_parts.repeat_interleave(num, dim=0)
        sampling = SamplingConfig(self.cfg.temperature, self.cfg.top_k, self.cfg.top_p, 1.0, self.cfg.seed)
        uniforms = candidate_uniforms(len(prompt_ids), pl_module.max_visual_length, sampling.seed)
        out = sample_image_parts(pl_module.model, vocab, prompt_ids, pl_module.max_visual_length, sampling, uniforms)
        items = [Generated(row // num, prompts[row // num], row % num, ids, 0.0)
                 for row, ids in enumerate(out.image_ids.cpu().numpy())]
        self.vqvae.to(pl_module.device)
        decode_candidates(items, vocab, self.vqvae, progress=False)
        shown = [item for item in items if item.image is not None]
        for item in shown:  # the prompts are horizontal text (<s>): shown as lines, not as the strips drawn
            item.image = upright(item.image, horizontal=True)
        if not shown:
            log.warning("step %d: no sample had a visual code; no sheet written", step)
            return None
        captions = [f"{item.prompt} #{item.candidate}" + (" (repaired)" if item.repairs else "") for item in shown]
        path = self.folder / f"step_{step:06d}.png"
        save_image(path, make_sheet([item.image for item in shown], captions, columns=num))
        return path


def export_run(cfg: Any, init: Pretrained) -> Path:
    """Write run_dir/export from best.ckpt (by val/loss), or last.ckpt when there is no best, with the
    VQ-VAE of `init`."""
    from gpt.export import write_export
    from vqvae.checkpoint import read_vqvae_dir_config

    folder = checkpoint_dir(cfg.run_dir)
    checkpoint = folder / "best.ckpt" if (folder / "best.ckpt").is_file() else folder / "last.ckpt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint in {folder} to export; did training run any step?")
    task = GPTTask.from_checkpoint(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    info = {"train": path_list(cfg.data.train), "val": path_list(cfg.data.val), "checkpoint": str(checkpoint),
            "global_step": state.get("global_step"), "init_from": str(init.directory)}
    vqvae_model_cfg = read_vqvae_dir_config(init.directory / VQVAE_DIR)["model"]
    return write_export(Path(cfg.run_dir) / "export", task.model, task.vocab, "text_first", task.max_visual_length,
                        task.max_text_length, init.vqvae.cpu(), vqvae_model_cfg, init.max_length, info)


def prepare(cfg: Any) -> tuple[FinetuneTask, Any, Optional[str], Pretrained]:
    """Check the export and the data, then build data, task and resume checkpoint as gpt.train does."""
    if cfg.order != "text_first":
        raise ValueError(f"order={cfg.order!r}: fine-tuning trains the reverse (text_first) layout; "
                         f"train recognition models with `python -m gpt.train`")
    init = load_pretrained(cfg.init_from, load_tokenizer=False)
    if init.order != "image_first":
        log.warning("init_from=%s is already a %s model; fine-tuning it further", init.directory, init.order)
    check_token_csvs(cfg, init)
    adopt_export_layout(cfg, init)
    base_cfg = gpt_config_view(cfg)
    base_task, data, ckpt_path = prepare_training(base_cfg)
    save_config(cfg, Path(cfg.run_dir) / "config.yaml")  # the full config, samples included
    task = FinetuneTask(base_cfg, data.vocab, data.max_visual_length, data.max_text_length, data.vqvae_meta,
                        base_task.model, cond_dropout=cfg.cond_dropout)
    return task, data, ckpt_path, init


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (config/gpt2-*-finetune.yaml, config/tiny/gpt2-finetune.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. init_from=outputs/gpt/export trainer.max_steps=100")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 2 a bad config, dataset or prompt (a one-line message naming it)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    cfg: FinetuneConfig = load_config(FinetuneConfig, args.config, args.overrides)
    pl.seed_everything(cfg.seed, workers=True)
    task, data, ckpt_path, init = prepare(cfg)
    if cfg.samples.prompts:
        from gpt.drawing import check_prompts

        check_prompts(list(cfg.samples.prompts), task.vocab, task.max_text_length, "the model (samples.prompts)")
    monitor, mode = monitor_for(gpt_config_view(cfg))
    callbacks = [SampleImages(cfg.samples, init.vqvae, cfg.run_dir)]
    trainer = build_trainer(cfg.trainer, cfg.logger, cfg.run_dir, monitor=monitor, mode=mode, callbacks=callbacks,
                            seed=cfg.seed)
    trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        export = export_run(cfg, init)
        log.info("done: text-to-image export in %s (try `python -m gpt.generate %s \"text\" --output OUT`)",
                 export, export)
    return 0


if __name__ == "__main__":
    sys.exit(main())
