"""GPTTask: the Lightning system around the HF GPT-2 — image/text losses, optimizer, validation decoding.

Checkpoints carry everything export and inference need besides the weights (`checkpoint["gpt"]`): the
vocab, the layout (order, max_visual_length, max_text_length), the GPT-2 config, the resolved training
config and the VQ-VAE sidecar meta (fingerprint, codebook size, ...). `GPTTask.from_checkpoint(path)`
rebuilds the task from a checkpoint alone.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel

from gpt.config import GPTConfig, path_list
from gpt.data import GPTDataModule, check_same_sidecar, sidecar_num_codes
from gpt.decoding import recognize
from gpt.modeling import (attention_for, build_model, grow_depth, load_gpt2, with_fused_activation,
                          with_image_positions, with_new_codebook)
from gpt.pretrained import read_layout
from gpt.recode import recode_for_tokens
from gpt.vocab import ORDERS, PART_IGNORE, PART_IMAGE, PART_TEXT, Vocab
from vqvae.plumbing.io import write_csv_atomic
from vqvae.plumbing.config import save_config
from vqvae.plumbing.optim import optimizer_with_schedule
from vqvae.plumbing.trainer import resume_checkpoint
from vqvae.tokens import read_sidecar

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "gpt"


def as_config(cfg: Any) -> GPTConfig:
    """A GPTConfig (OmegaConf, typed) from a GPTConfig, DictConfig or plain dict."""
    return OmegaConf.merge(OmegaConf.structured(GPTConfig), cfg)  # type: ignore[return-value]


def monitor_for(cfg: Any) -> tuple[str, str]:
    """(metric, mode) that picks best.ckpt: val/accuracy (max) when recognition decoding runs during
    validation, val/loss (min) otherwise."""
    if cfg.order == "image_first" and cfg.validation.num_decode_samples > 0:
        return "val/accuracy", "max"
    return "val/loss", "min"


def no_decay(name: str, param: Tensor) -> bool:
    """Biases and LayerNorm gains (all 1-D parameters in GPT-2) get no weight decay."""
    return param.ndim < 2 or name.endswith(".bias")


def is_block_matrix(name: str) -> bool:
    """The attention and MLP weight matrices of GPT-2's blocks: what `optim.matrices=muon` hands to Muon. The
    embeddings (and the LM head tied to them) stay with AdamW, as Muon's authors prescribe."""
    return ".h." in name and name.endswith(".weight") and (".attn." in name or ".mlp." in name)


class GPTTask(pl.LightningModule):
    """Trains a GPT2LMHeadModel on sequences from gpt.data (batches {"input_ids", "loss_part", "index"}).

    loss = loss.image_weight * image_loss + loss.text_weight * text_loss, each the mean next-token
    cross-entropy over the targets gpt.vocab marks PART_IMAGE / PART_TEXT (text <pad> never counts).
    """

    def __init__(self, cfg: Any, vocab: Vocab, max_visual_length: int, max_text_length: int,
                 vqvae_meta: Optional[dict] = None, model: Optional[GPT2LMHeadModel] = None):
        super().__init__()
        self.cfg = as_config(cfg)
        self.vocab = vocab
        self.max_visual_length, self.max_text_length = int(max_visual_length), int(max_text_length)
        self.vqvae_meta = dict(vqvae_meta or {})
        self.model = model if model is not None else build_model(
            self.cfg.model, vocab, self.max_visual_length, self.max_text_length)
        expected = self.max_visual_length + self.max_text_length
        if self.model.config.n_positions < expected:
            raise ValueError(f"the model has n_positions={self.model.config.n_positions} but the layout needs "
                             f"{expected} (max_visual_length {self.max_visual_length} + max_text_length "
                             f"{self.max_text_length}); lower data.max_* or train a new model")
        if self.model.config.vocab_size != vocab.size:
            raise ValueError(f"the model has vocab_size={self.model.config.vocab_size} but the charset gives "
                             f"{vocab.size}; use the charset.json the model was trained with")
        self._decoded: list[dict] = []

    # ------------------------------------------------------------------ losses
    def losses(self, batch: dict[str, Tensor], weighted_only: bool = False) -> dict[str, Tensor]:
        """{"loss", "image_loss", "text_loss"} (scalars) for a batch of input_ids (B, L) and loss_part (B, L).
        With `weighted_only` a part whose weight is 0 is neither computed nor returned: the LM head then runs
        only at the positions the loss uses (text loss only: faster training, BENCHMARKS.md)."""
        input_ids, part, positions, attention = batch["input_ids"], batch["loss_part"], None, None
        if self.cfg.order == "image_first":  # short crops cost only their own tokens (Vocab.trim_image_padding)
            input_ids, positions, attention = self.vocab.trim_image_padding(input_ids, self.max_visual_length)
            part = part[:, positions]
            positions = positions.expand(input_ids.shape[0], -1)
        else:  # text first: the padding trails, so the columns after the batch's last target can go
            counted = part.ne(PART_IGNORE).any(dim=0)
            last = int(counted.nonzero().max()) + 1 if bool(counted.any()) else part.shape[1]
            input_ids, part = input_ids[:, :last], part[:, :last]
        weights = {PART_IMAGE: self.cfg.loss.image_weight, PART_TEXT: self.cfg.loss.text_weight}
        names = {PART_IMAGE: "image_loss", PART_TEXT: "text_loss"}
        kinds = [kind for kind, weight in weights.items() if weight or not weighted_only]
        # Position t predicts token t+1, so targets are the ids shifted left (never passed as `labels`,
        # which HF would shift a second time).
        targets, target_part = input_ids[:, 1:], part[:, 1:]
        used = torch.zeros_like(target_part, dtype=torch.bool)
        for kind in kinds:
            used |= target_part == kind
        hidden = self.model.transformer(input_ids=input_ids, position_ids=positions, attention_mask=attention,
                                        use_cache=False).last_hidden_state[:, :-1]
        logits = self.model.lm_head(hidden[used])  # (N, size): the vocabulary only where a loss looks
        token_loss = F.cross_entropy(logits.float(), targets[used], reduction="none")
        used_part = target_part[used]
        out = {}
        for kind in kinds:
            mask = (used_part == kind).float()
            out[names[kind]] = (token_loss * mask).sum() / mask.sum().clamp(min=1.0)
        out["loss"] = sum(weights[kind] * out[names[kind]] for kind in kinds)
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.losses(batch, weighted_only=True)
        self.log("train/loss", out["loss"], prog_bar=True)
        self.log_dict({f"train/{name}": out[name] for name in ("image_loss", "text_loss") if name in out})
        return out["loss"]

    def on_fit_start(self) -> None:
        # The model is built before Lightning places it; pick the attention kernel for where it now runs.
        self.model.set_attn_implementation(attention_for(self.device))

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._decoded = []

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self.losses(batch)
        batch_size = batch["input_ids"].shape[0]
        self.log_dict({f"val/{k}": v for k, v in out.items()}, batch_size=batch_size, sync_dist=True,
                      prog_bar=False)
        if self.cfg.order != "image_first":
            return
        # Greedy decoding of the first rows the val loader gives (not shuffled, so the same rows every time).
        # Under DDP each rank sees its own shard and decodes its share of num_decode_samples; the rows are
        # gathered in on_validation_epoch_end.
        budget = math.ceil(self.cfg.validation.num_decode_samples / max(1, self.trainer.world_size))
        remaining = budget - len(self._decoded)
        if remaining <= 0:
            return
        texts = self.trainer.val_dataloaders.dataset.texts
        image_ids = batch["input_ids"][:remaining, :self.max_visual_length]
        indices = batch["index"][:remaining].tolist()
        step = max(1, self.cfg.validation.decode_batch_size)
        for start in range(0, image_ids.shape[0], step):
            results = recognize(self.model, self.vocab, image_ids[start:start + step], self.max_text_length)
            for index, (prediction, confidence) in zip(indices[start:start + step], results):
                self._decoded.append({"index": index, "label": texts[index], "prediction": prediction,
                                      "confidence": confidence})

    def _gather_decoded(self) -> list[dict]:
        """Decoded rows of all ranks, each val row once (a rank without rows decodes row 0 again), by index."""
        rows = self._decoded
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, rows)  # every rank calls this, even with no rows
            rows = list({row["index"]: row for part in parts for row in part}.values())
        rows = sorted(rows, key=lambda row: row["index"])[:self.cfg.validation.num_decode_samples]
        return [{k: v for k, v in row.items() if k != "index"} for row in rows]

    def on_validation_epoch_end(self) -> None:
        if self.cfg.order != "image_first" or self.cfg.validation.num_decode_samples <= 0:
            return
        self._decoded = self._gather_decoded()
        if not self._decoded or self.trainer.sanity_checking:
            return
        from gpt.metrics import text_metrics  # owned by gpt-infer; imported late to keep imports light

        labels = [row["label"] for row in self._decoded]
        predictions = [row["prediction"] for row in self._decoded]
        metrics = text_metrics(predictions, labels)
        # Identical on every rank (computed from the gathered rows); sync_dist only averages equal values.
        self.log_dict({"val/accuracy": float(metrics["accuracy"]), "val/one_minus_ned": float(metrics["one_minus_ned"]),
                       "val/cer": float(metrics["cer"])}, sync_dist=True)
        if self.trainer.is_global_zero:
            self._write_samples(self._decoded)

    def _write_samples(self, rows: list[dict]) -> None:
        frame = pd.DataFrame(rows, columns=["label", "prediction", "confidence"])
        frame["correct"] = frame["label"] == frame["prediction"]
        step = self.global_step
        write_csv_atomic(frame, Path(self.cfg.run_dir) / "samples" / f"val_step_{step}.csv")
        # Loggers with tables get at most 64 rows: enough to eyeball errors without bloating the run.
        shown = frame.head(64)
        for logger in self.loggers:
            if hasattr(logger, "log_text"):  # wandb
                logger.log_text(key="val/samples", columns=list(shown.columns),
                                data=shown.values.tolist(), step=step)
            elif hasattr(getattr(logger, "experiment", None), "add_text"):  # tensorboard
                # Indented by 4 spaces: TensorBoard renders text as Markdown, where that is a code block.
                table = "\n".join("    " + line for line in shown.to_string(index=False).splitlines())
                logger.experiment.add_text("val/samples", table, step)

    # ------------------------------------------------------------------ optimizer
    def configure_optimizers(self) -> Any:
        muon = self.cfg.optim.matrices == "muon"
        decay, plain, matrices = [], [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                group = plain if no_decay(name, param) else matrices if muon and is_block_matrix(name) else decay
                group.append(param)
        planned = None if self.cfg.trainer.max_time else self.trainer.estimated_stepping_batches
        optimizers, self.lr_schedule = optimizer_with_schedule(decay, plain, self.cfg.optim, planned,
                                                               self.cfg.trainer.max_time, matrices)
        return optimizers

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_meta(self) -> dict[str, Any]:
        """What `checkpoint["gpt"]` holds (plain Python types only)."""
        return {"vocab": self.vocab.to_dict(), "order": self.cfg.order,
                "max_visual_length": self.max_visual_length, "max_text_length": self.max_text_length,
                "model_config": self.model.config.to_dict(), "config": OmegaConf.to_container(self.cfg, resolve=True),
                "vqvae": self.vqvae_meta}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.checkpoint_meta()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, map_location: Any = "cpu") -> "GPTTask":
        """Rebuild a task (model weights, vocab, layout, config, VQ-VAE meta) from a gpt.train checkpoint."""
        checkpoint = load_checkpoint(path, map_location)
        meta = checkpoint[CHECKPOINT_KEY]
        model = GPT2LMHeadModel(with_fused_activation(GPT2Config.from_dict(meta["model_config"])))
        task = cls(meta["config"], Vocab.from_dict(meta["vocab"], str(path)), meta["max_visual_length"],
                   meta["max_text_length"], meta["vqvae"], model=model)
        task.load_state_dict(checkpoint["state_dict"])  # copies into the new model's CPU tensors
        if isinstance(map_location, (str, torch.device)):  # so the task goes where the weights were asked to go
            task.to(map_location)
        return task


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a gpt.train checkpoint; ValueError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; gpt.train writes "
                                f"RUN_DIR/checkpoints/last.ckpt and best.ckpt")
    # A Lightning checkpoint also holds callback and loop states (not only tensors), hence
    # weights_only=False: load only checkpoints you trust.
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    if CHECKPOINT_KEY not in checkpoint:
        raise ValueError(f"{path} is not a gpt.train checkpoint (no '{CHECKPOINT_KEY}' entry); "
                         f"is it a VQ-VAE checkpoint?")
    return checkpoint


def at_configured_size(model: GPT2LMHeadModel, model_cfg: Any, init_dir: Path) -> GPT2LMHeadModel:
    """The init_from model at the config's size: the same width, and as deep or deeper (grown by grow_depth,
    which keeps what it computes)."""
    have = model.config
    if (model_cfg.n_embd, model_cfg.n_head) != (have.n_embd, have.n_head):
        raise ValueError(f"model.n_embd={model_cfg.n_embd}, model.n_head={model_cfg.n_head}, but init_from="
                         f"{str(init_dir)!r} has n_embd={have.n_embd}, n_head={have.n_head}: a model continued "
                         f"from an export keeps its width (set those two; only model.n_layer may grow)")
    return grow_depth(model, model_cfg.n_layer) if model_cfg.n_layer != have.n_layer else model


def prepare_training(cfg: GPTConfig) -> tuple[GPTTask, GPTDataModule, Optional[str]]:
    """Data, vocab and task for a config, plus the checkpoint to resume from (or None)."""
    if cfg.order not in ORDERS:
        raise ValueError(f"order={cfg.order!r} is not one of {ORDERS}")
    weights = (cfg.loss.image_weight, cfg.loss.text_weight)
    if min(weights) < 0 or max(weights) == 0:
        raise ValueError(f"loss.image_weight={weights[0]} and loss.text_weight={weights[1]}: both must be >= 0 "
                         f"and one > 0 (text only for reading: loss.image_weight=0)")
    if cfg.optim.matrices not in ("adamw", "muon"):
        raise ValueError(f"optim.matrices={cfg.optim.matrices!r}: use adamw or muon")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = resume_checkpoint(run_dir, cfg.resume_from)
    vocab, model, resumed_meta, init_layout = None, None, None, None
    if ckpt_path is not None:
        # Resuming: the ids must stay those the weights were trained with, whatever the data holds now.
        resumed_meta = load_checkpoint(ckpt_path)[CHECKPOINT_KEY]
        vocab = Vocab.from_dict(resumed_meta["vocab"], ckpt_path)
    elif cfg.init_from:
        init_dir = Path(cfg.init_from)
        vocab = Vocab.load(init_dir / "charset.json")
        # from_pretrained returns eval mode, and Lightning keeps module modes: without .train() dropout is off.
        model = at_configured_size(load_gpt2(init_dir).train(), cfg.model, init_dir)
        first_csv = path_list(cfg.data.train)[0]
        init_layout = read_layout(init_dir)
        tokens, init_fingerprint = read_sidecar(first_csv), init_layout["vqvae_fingerprint"]
        if tokens.get("fingerprint") != init_fingerprint:
            # Tokens of another VQ-VAE (a new recipe): the export's code embeddings are translated onto the new
            # codes from the crops of the first training CSV (gpt.recode), or drawn anew if no crop pairs up.
            num_codes = sidecar_num_codes(tokens, first_csv)
            log.info("%s was encoded by VQ-VAE %s, not by init_from's %s: moving the model onto its %d codes (it "
                     "knew %d)", first_csv, tokens.get("fingerprint"), init_fingerprint, num_codes, vocab.num_codes)
            try:
                model, vocab = recode_for_tokens(model, vocab, init_dir, first_csv, num_codes, seed=cfg.seed)
            except (FileNotFoundError, ValueError) as error:
                log.warning("the code embeddings start anew: %s", error)
                codes = Vocab(vocab.chars, num_codes)
                vocab, model = codes, with_new_codebook(model, vocab, codes)
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
    data = GPTDataModule(cfg.data, cfg.order, run_dir, vocab, seed=cfg.seed).prepare()
    if resumed_meta is not None:
        check_same_sidecar(resumed_meta["vqvae"], ckpt_path, data.vqvae_meta, path_list(cfg.data.train)[0])
    cfg.data.max_visual_length = data.max_visual_length  # resolved from the sidecar when unset
    if init_layout is not None:
        if data.max_text_length != int(init_layout["max_text_length"]):
            raise ValueError(f"data.max_text_length={data.max_text_length} but init_from={cfg.init_from!r} was "
                             f"trained with {init_layout['max_text_length']}: set data.max_text_length to it")
        # Tokens of another max_length (e.g. thicker strips, vqvae.restrip): the text positions move with the text.
        model = with_image_positions(model, int(init_layout["max_visual_length"]), data.max_visual_length,
                                     image_first=init_layout["order"] == "image_first")
    save_config(cfg, run_dir / "config.yaml")
    task = GPTTask(cfg, data.vocab, data.max_visual_length, data.max_text_length, data.vqvae_meta, model)
    return task, data, ckpt_path
