"""Encoder distillation: a narrower encoder learns to pick the codes a trained VQ-VAE picks, so the same GPT
reads its tokens at a fraction of the encoding cost (`vqvae.train` with `distill_from`, DESIGN §4).

The teacher's codebook and decoder are copied and frozen, so the distilled VQ-VAE's codes mean what the
teacher's mean (same ids, same pictures). Targets are the teacher's codes from its token CSVs (what
`vqvae.encode` or `make pretrain` wrote): no teacher forward pass during training, which would cost more than
the student's forward and backward together.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vqvae.checkpoint import build_model_config, load_vqvae_dir, read_vqvae_dir_config
from vqvae.config import VQVAEConfig, load_vqvae_config
from vqvae.data import CropBatch, CropDataset, collate_crops
from vqvae.plumbing.io import read_labelled_csv
from vqvae.plumbing.config import to_dict
from vqvae.plumbing.optim import optimizer_with_schedule
from vqvae.task import VQVAEDataModule, VQVAETask
from vqvae.tokens import TOKENS_COLUMN, check_same_vqvae, read_sidecar, string_to_grid

log = logging.getLogger(__name__)

# Codes and encoder outputs are unit vectors, so their similarities lie in [-1, 1]; this scale turns them into
# logits sharp enough for the teacher's code to win a softmax over 4 096 close neighbours.
LOGIT_SCALE = 40.0


def distilled_config(cfg: VQVAEConfig) -> VQVAEConfig:
    """`cfg` with the teacher's (`cfg.distill_from`) model keys, except the encoder's width: the run's
    `model.encoder_channels`, which must be set (ValueError naming the fix otherwise); and with the training
    CSV's `max_length` (its sidecar's), so that crops and code grids have the same shape."""
    teacher = build_model_config(read_vqvae_dir_config(cfg.distill_from)["model"], cfg.distill_from)
    width = cfg.model.encoder_channels
    if width is None:
        raise ValueError(f"distill_from={cfg.distill_from!r} needs model.encoder_channels, the distilled encoder's "
                         f"width (the teacher's is {teacher.encoder_channels or teacher.hidden_channels}; e.g. "
                         f"model.encoder_channels=16)")
    values = to_dict(cfg)
    values["model"] = {**dataclasses.asdict(teacher), "encoder_channels": int(width)}
    values["data"]["max_length"] = int(read_sidecar(cfg.data.train)["max_length"])
    return load_vqvae_config(values)


class DistillTask(VQVAETask):
    """Trains `self.model.encoder` to pick the teacher's codes (cross-entropy over the frozen codebook).

    Logs train/loss and train/agreement (share of code cells where the teacher's code wins), val/loss and
    val/agreement; each validation saves crops above the decoder's pictures of the distilled codes (as
    VQVAETask does). The checkpoint is a VQ-VAE checkpoint like any other (`vqvae.checkpoint.load_vqvae`).
    """

    def __init__(self, cfg: VQVAEConfig | Any) -> None:
        super().__init__(cfg)
        for module in (self.model.quantizer, self.model.decoder):
            module.requires_grad_(False)

    def load_teacher(self, directory: str | Path) -> None:
        """Copy the teacher's codebook and decoder (a new run; a resumed one has them in its checkpoint)."""
        teacher = load_vqvae_dir(directory).state_dict()
        kept = {key: value for key, value in teacher.items() if not key.startswith("encoder.")}
        missing, _ = self.model.load_state_dict(kept, strict=False)
        if any(not key.startswith("encoder.") for key in missing):
            raise ValueError(f"distill_from={str(directory)!r} lacks {sorted(missing)[:4]}: not a VQ-VAE folder of "
                             f"this project's model")

    def _distill_terms(self, batch: CropBatch) -> tuple[Tensor, Tensor, Tensor]:
        """(cross-entropy, agreement, the distilled codes (B, h, w)) of a batch."""
        images, _, grids = batch
        quantizer = self.model.quantizer
        logits = LOGIT_SCALE * quantizer.unit_vectors(self.model.encoder(images)) @ quantizer.codes().t()
        picked = logits.argmax(dim=-1)
        targets = grids.reshape(-1)
        return F.cross_entropy(logits, targets), (picked == targets).float().mean(), picked.view(grids.shape)

    def training_step(self, batch: Any, batch_idx: int) -> Optional[Tensor]:
        if batch[0].shape[0] == 0:
            log.warning("skipping an empty training batch (all its images failed to load)")
            return None
        loss, agreement, _ = self._distill_terms(batch)
        size = batch[0].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/agreement", agreement, prog_bar=True, batch_size=size)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images = batch[0]
        if images.shape[0] == 0:
            return
        loss, agreement, picked = self._distill_terms(batch)
        self.log_dict({"val/loss": loss, "val/agreement": agreement}, sync_dist=True, batch_size=images.shape[0])
        if self.trainer.is_global_zero and len(self._samples) < self.cfg.num_sample_images:
            self._collect_samples(images, self.model.decode(picked))

    def configure_optimizers(self) -> dict[str, Any]:
        decay = [p for p in self.model.encoder.parameters() if p.ndim >= 2]
        plain = [p for p in self.model.encoder.parameters() if p.ndim < 2]
        optimizers, self.lr_schedule = optimizer_with_schedule(decay, plain, self.cfg.optim, self.cfg.trainer.max_steps,
                                                               self.cfg.trainer.max_time)
        return optimizers


class CollateWithGrids:
    """collate_crops, plus the (B, rows, cols) int64 teacher grids of the batch's rows (picklable for workers)."""

    def __init__(self, grids: Sequence[np.ndarray]) -> None:
        self.grids = grids

    def __call__(self, items: Sequence[Any]) -> CropBatch:
        batch = collate_crops(items)
        images, indices = batch
        grids = (torch.from_numpy(np.stack([self.grids[i] for i in indices.tolist()])).long() if len(indices)
                 else torch.empty(0, 0, 0, dtype=torch.int64))
        return CropBatch((images, indices, grids), batch.failures)


class DistillDataModule(VQVAEDataModule):
    """VQVAEDataModule over the teacher's token CSVs: each crop comes with the teacher's code grid, checked
    against the crop's template (a CSV of another max_length or thickness is refused, naming it)."""

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__(cfg)
        self.grids: dict[str, list[np.ndarray]] = {}

    def _dataset(self, split: str) -> CropDataset:
        if split in self.datasets:
            return self.datasets[split]
        csv = self.cfg.data.train if split == "train" else self.cfg.data.val
        # The fingerprint the teacher's folder records (load_vqvae_dir checks it against its weights).
        expected = read_vqvae_dir_config(self.cfg.distill_from).get("fingerprint", "none recorded")
        check_same_vqvae(expected, read_sidecar(csv), f"data.{split}={csv!r}")
        frame = read_labelled_csv(csv, required=("img_path", TOKENS_COLUMN))
        grids = [string_to_grid(text).astype(np.int16) for text in frame[TOKENS_COLUMN]]
        dataset = super()._dataset(split)
        for row, template in zip(dataset.rows, dataset.templates):
            if grids[row].shape != (template.rows, template.cols):
                raise ValueError(f"data.{split}={csv!r} row {row}: a {grids[row].shape[0]}x{grids[row].shape[1]} code "
                                 f"grid, but its crop's strip is {template.rows}x{template.cols} at "
                                 f"data.max_length={self.cfg.data.max_length}; set data.max_length to the CSV's "
                                 f"(its .json sidecar) or re-encode it")
        self.grids[split] = grids
        return dataset

    def _collate(self, split: str) -> CollateWithGrids:
        return CollateWithGrids(self.grids[split])
