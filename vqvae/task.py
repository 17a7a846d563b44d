"""Lightning wiring of VQ-VAE training: the task (loss, logging, optimiser, sample grids) and its data.

The model itself (`vqvae.modeling.VQVAE`) knows nothing of Lightning; inference code uses
`task.model.encode(...)` / `task.model.decode(...)`.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from vqvae.config import VQVAEConfig, load_vqvae_config
from vqvae.data import CropBatch, CropDataset, TemplateBatchSampler, collate_crops
from vqvae.plumbing.io import BadRowReport, read_labelled_csv, save_image
from vqvae.losses import psnr, vqvae_loss_terms
from vqvae.modeling import VQVAE, histogram_perplexity
from vqvae.plumbing.config import to_dict
from vqvae.plumbing.optim import optimizer_with_schedule
from vqvae.templates import tensor_array_to_image
from vqvae.plumbing.trainer import resume_position

log = logging.getLogger(__name__)

# Sample grids hold at most this many original/reconstruction pairs: beyond that a grid becomes too big
# to look at (and slow to write at every validation).
MAX_SAMPLE_IMAGES = 64


def batch_images(batch: Any) -> Tensor:
    """The image tensor (B, 3, H, W) of a batch: a tensor, `(images, indices)` or `{"images": ...}`."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, Mapping):
        return batch["images"]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    raise TypeError(f"a VQ-VAE batch is a tensor, a tuple (images, ...) or a dict with 'images'; "
                    f"got {type(batch).__name__}")


def sample_grid(originals: list[np.ndarray], reconstructions: list[np.ndarray], gap: int = 4,
                max_width: int = 1024, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Originals above their reconstructions, packed left to right in shelves: RGB uint8 (H, W, 3).

    Inputs are RGB uint8 (h_i, w_i, 3) of any sizes (one template shape each). A shelf is as tall as its
    tallest pair, holds pairs of similar heights and is at most `max_width` wide (wider if one pair is);
    the rest is `background`.
    """
    if not originals or len(originals) != len(reconstructions):
        raise ValueError(f"need equally many originals and reconstructions, got {len(originals)} and "
                         f"{len(reconstructions)}")
    width = max(max_width, max(image.shape[1] for image in originals) + 2 * gap)
    placements = []  # (top, left) of each pair
    top, left, shelf_h = gap, gap, 0
    for original in originals:
        pair_h, pair_w = 2 * original.shape[0] + gap, original.shape[1]
        full = left + pair_w + gap > width
        # Pairs of very different heights go to separate shelves, so short ones do not float in white space.
        mismatched = shelf_h and not shelf_h / 1.5 <= pair_h <= shelf_h * 1.5
        if left > gap and (full or mismatched):  # start a new shelf
            top, left, shelf_h = top + shelf_h + 2 * gap, gap, 0
        placements.append((top, left))
        left, shelf_h = left + pair_w + gap, max(shelf_h, pair_h)
    grid = np.empty((top + shelf_h + gap, width, 3), dtype=np.uint8)
    grid[:] = background
    for (y, x), original, reconstruction in zip(placements, originals, reconstructions):
        h, w = original.shape[:2]
        grid[y:y + h, x:x + w] = original
        grid[y + h + gap:y + 2 * h + gap, x:x + w] = reconstruction
    return grid


class VQVAETask(pl.LightningModule):
    """Trains `self.model` (a VQVAE) on template-shaped crops.

    Logs train/loss, train/recon, train/quant, train/perplexity, train/images_per_s; val/loss, val/recon,
    val/psnr (dB), and over the whole validation set val/codebook_usage (share of codes used at least
    once) and val/perplexity (of the aggregated code histogram). Each validation writes originals vs
    reconstructions to run_dir/samples/step_XXXXXX.png. The checkpoint carries the resolved config as the
    hyperparameter `cfg` (so `VQVAETask.load_from_checkpoint(path)` and `vqvae.checkpoint.load_vqvae`
    know the model it holds).
    """

    def __init__(self, cfg: VQVAEConfig | Mapping[str, Any]) -> None:
        super().__init__()
        if not hasattr(cfg, "model"):  # a plain dict, e.g. from a checkpoint's hyperparameters
            cfg = load_vqvae_config(cfg)
        self.cfg = cfg
        self.save_hyperparameters({"cfg": to_dict(cfg)})
        self.model = VQVAE(cfg.model)
        self._val_counts: Optional[Tensor] = None
        self._samples: list[tuple[np.ndarray, np.ndarray]] = []
        self._batch_start = 0.0

    def forward(self, images: Tensor):  # noqa: D102 - same contract as VQVAE.forward
        return self.model(images)

    def _step(self, batch: Any):
        """(output, loss terms, target) of a batch: the model reconstructs its clean targets when the batch
        carries them (data.clean_target), else its images."""
        images = batch_images(batch)
        target = batch[2] if isinstance(batch, (tuple, list)) and len(batch) == 3 else images
        out = self.model(images)
        terms = vqvae_loss_terms(out, target, self.cfg.loss.reconstruction, self.cfg.loss.edge_weight)
        return out, terms, target

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def training_step(self, batch: Any, batch_idx: int) -> Optional[Tensor]:
        images = batch_images(batch)
        if images.shape[0] == 0:  # every image of the batch failed to load (reported by the dataset)
            log.warning("skipping an empty training batch (all its images failed to load)")
            return None
        out, terms, _ = self._step(batch)
        size = images.shape[0]
        self.log("train/loss", terms.total, prog_bar=True, batch_size=size)
        self.log_dict({"train/recon": terms.reconstruction, "train/quant": terms.quant,
                       "train/perplexity": out.perplexity}, batch_size=size)
        if self.cfg.loss.edge_weight > 0:
            self.log("train/edge", terms.edge, batch_size=size)
        return terms.total

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        seconds = time.perf_counter() - self._batch_start
        if seconds > 0:
            self.log("train/images_per_s", batch_images(batch).shape[0] / seconds, batch_size=1)

    def on_validation_epoch_start(self) -> None:
        self._val_counts = torch.zeros(self.model.num_codes, dtype=torch.long, device=self.device)
        self._samples = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images = batch_images(batch)
        if images.shape[0] == 0:
            return
        out, terms, target = self._step(batch)
        size = images.shape[0]
        self.log_dict({"val/loss": terms.total, "val/recon": terms.reconstruction,
                       "val/psnr": psnr(out.reconstruction, target).mean()}, sync_dist=True, batch_size=size)
        self._val_counts += torch.bincount(out.code_ids.flatten(), minlength=self.model.num_codes)
        self._collect_samples(images, out.reconstruction)

    def _collect_samples(self, images: Tensor, reconstructions: Tensor) -> None:
        wanted = min(self.cfg.num_sample_images, MAX_SAMPLE_IMAGES) - len(self._samples)
        if wanted <= 0 or not self.trainer.is_global_zero:
            return
        # Spread the samples over the validation batches, so every template shape shows up.
        num_batches = max(1, int(sum(self.trainer.num_val_batches)))
        take = min(wanted, math.ceil(min(self.cfg.num_sample_images, MAX_SAMPLE_IMAGES) / num_batches))
        originals = images[:take].float().cpu().numpy()
        recons = reconstructions[:take].float().cpu().numpy()
        self._samples += [(tensor_array_to_image(o), tensor_array_to_image(r)) for o, r in zip(originals, recons)]

    def on_validation_epoch_end(self) -> None:
        counts = self._val_counts
        if counts is None:
            return
        counts = self.trainer.strategy.reduce(counts, reduce_op="sum")  # whole validation set, all ranks
        if counts.sum() > 0:
            self.log_dict({"val/codebook_usage": (counts > 0).float().mean(),
                           "val/perplexity": histogram_perplexity(counts)}, sync_dist=True)
        if self._samples and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            path = Path(self.cfg.run_dir) / "samples" / f"step_{self.global_step:06d}.png"
            save_image(path, sample_grid([o for o, _ in self._samples], [r for _, r in self._samples]))
        self._samples = []

    def configure_optimizers(self) -> dict[str, Any]:
        # No weight decay on norms, biases and the codebook (decay would shrink codes toward the origin).
        decay, plain = [], []
        for name, parameter in self.model.named_parameters():
            (decay if parameter.ndim >= 2 and "codebook" not in name else plain).append(parameter)
        optimizers, self.lr_schedule = optimizer_with_schedule(decay, plain, self.cfg.optim, self.cfg.trainer.max_steps,
                                                               self.cfg.trainer.max_time)
        return optimizers

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Plain-dict copy of the architecture at the top level, for tools that read checkpoints without us.
        checkpoint["model_config"] = to_dict(self.cfg.model)


class VQVAEDataModule(pl.LightningDataModule):
    """Train/val loaders over labelled CSVs: crops fitted to their aspect-ratio templates (exactly the
    pixels `vqvae.encode` feeds the model), batched by template shape, sharded across DDP ranks.

    Images whose header cannot be read are excluded, counted in the log and listed in
    `run_dir/<split>.bad.csv`. Build the Trainer with `use_distributed_sampler=False`, as build_trainer does (the batch
    sampler shards itself).
    """

    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.datasets: dict[str, CropDataset] = {}

    def _dataset(self, split: str) -> CropDataset:
        if split not in self.datasets:
            data = self.cfg.data
            csv = data.train if split == "train" else data.val
            frame = read_labelled_csv(csv, required=("img_path",))
            targets = None
            if data.clean_target:
                if "target_path" not in frame.columns:
                    raise ValueError(f"data.{split}={csv!r} has no target_path column, which data.clean_target "
                                     f"needs: render it with `python -m scripts.render_text --clean-targets`")
                targets = [str(Path(csv).parent / p) for p in frame["target_path"]]  # absolute p stays itself
            dataset = CropDataset(frame["abs_path"].tolist(), data.max_length, self.cfg.model.downsample,
                                  augment=bool(data.augment) and split == "train", seed=self.cfg.seed,
                                  progress=True, target_paths=targets, line_codes=self.cfg.model.line_codes)
            report_file = Path(self.cfg.run_dir) / f"{split}.bad.csv"
            if dataset.failures:
                report = BadRowReport()
                for failure in dataset.failures:
                    report.add(failure.index, frame["img_path"].iloc[failure.index], failure.reason)
                report.write(report_file)
                log.warning("%s: %d of %d images excluded, listed in %s", csv, len(dataset.failures),
                            len(frame), report_file)
            if len(dataset) == 0:
                raise ValueError(f"data.{split}={csv!r}: none of its {len(frame)} images could be read "
                                 f"(see {report_file})")
            self.datasets[split] = dataset
        return self.datasets[split]

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, "fit"):
            self._dataset("train")
        self._dataset("val")

    def _loader(self, split: str) -> torch.utils.data.DataLoader:
        data = self.cfg.data
        dataset = self._dataset(split)
        train = split == "train"
        batch_size = data.batch_size if train or data.val_batch_size is None else data.val_batch_size
        # Validation shards without padding: no image counted twice in the whole-set metrics (DDP).
        sampler = TemplateBatchSampler(dataset, batch_size, shuffle=train, seed=self.cfg.seed, pad=train)
        if train and self.trainer is not None:
            # A resumed run goes on with the epoch (order and augmentation) and batch where it stopped.
            sampler.set_epoch(*resume_position(self.trainer))
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=self._collate(split),
                                           num_workers=data.num_workers, persistent_workers=data.num_workers > 0,
                                           pin_memory=torch.cuda.is_available())

    def _collate(self, split: str) -> Callable[[Sequence[Any]], CropBatch]:
        return collate_crops

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("val")
