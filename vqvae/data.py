"""Template-shaped image data for the VQ-VAE: the crop dataset and batch sampler of training and encoding.

Every image is fitted to its aspect-ratio template (vqvae.templates), so a batch can only hold images of
one template. `CropDataset` reads each image's size from its header once (cheap) to pick the template;
`TemplateBatchSampler` groups indices by template (shuffled per epoch, sharded across DDP ranks);
`collate_crops` stacks a batch and keeps failed items out of it, but on record.

Training and encoding see the same pixels: `vqvae.encoding.encode_paths` goes through the very same dataset.
"""
from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from typing import IO, Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from vqvae.plumbing.batches import ShardedBatchSampler
from vqvae.plumbing.io import BadRowReport, ImageReadError, image_header_size, load_image
from vqvae.templates import (LINE_CODES, Frame, Template, choose_template, cut_to_frame, find_frame,
                             fit_grey_to_template, fit_to_template, image_to_tensor_array)

log = logging.getLogger(__name__)


class FailedCrop(NamedTuple):
    """Marker a dataset returns instead of an image that could not be read (kept out of the batch)."""
    index: int
    path: str
    reason: str


class CropBatch(tuple):
    """`(images (B,3,h,w) float in [-1,1], indices (B,) int64)` with the items that failed as `.failures`.

    A plain 2-tuple to anyone who unpacks it; `.failures` lists FailedCrop markers for this batch (they
    travel back from DataLoader worker processes with the batch).
    """

    def __new__(cls, items: Iterable[Any] = (), failures: Sequence[FailedCrop] = ()) -> "CropBatch":
        self = super().__new__(cls, items)
        self.failures = list(failures)
        return self

    @property
    def images(self) -> Tensor:
        return self[0]

    @property
    def indices(self) -> Tensor:
        return self[1]


def read_image_size(path: str | IO[bytes], name: str | None = None) -> tuple[int, int]:
    """(width, height) from the image header only (no pixel decode) of a file path or an open binary file
    (e.g. an upload in memory, named `name` in messages). Raises ImageReadError naming the image if it is
    missing, not an image, smaller than 2x2 pixels or over the pixel limit (vqvae.plumbing.io)."""
    if name is None:
        name = path if isinstance(path, str) else getattr(path, "name", "<upload>")
    if isinstance(path, str) and not os.path.exists(path):
        raise ImageReadError(f"image {name!r} does not exist")
    width, height = image_header_size(path, name)
    if width < 2 or height < 2:
        raise ImageReadError(f"image {name!r} is {width}x{height} pixels; a crop needs at least 2x2")
    return width, height


def augment_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`augment_pair` of a crop without a target -> RGB uint8 (H', W', 3)."""
    return augment_pair(image, None, rng)[0]


def augment_pair(image: np.ndarray, target: np.ndarray | None, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Small, label-preserving changes to an RGB uint8 crop (H, W, 3) -> (RGB uint8 (H', W', 3), target'):
    `reframe_pair`, then `jitter_appearance` of the image (the clean `target` stays clean)."""
    image, target = reframe_pair(image, target, rng)
    return jitter_appearance(image, rng), target


def reframe_pair(image: np.ndarray, target: np.ndarray | None, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Shift/scale: each border moves by up to 6% of its side (cropped or padded with the edge colour), which
    shifts the text and changes its scale inside the template box; a `target` of the crop's size moves with it."""
    import cv2  # local: keeps `import vqvae.data` light for tools that only need the sampler

    height, width = image.shape[:2]
    top, bottom = (rng.uniform(-0.06, 0.06, 2) * height).round().astype(int)
    left, right = (rng.uniform(-0.06, 0.06, 2) * width).round().astype(int)
    # Crop negative margins, but never below 2x2 pixels.
    y0, y1 = max(0, -top), height - max(0, -bottom)
    x0, x1 = max(0, -left), width - max(0, -right)
    pads = [max(0, top), max(0, bottom), max(0, left), max(0, right)]

    def reframe(pixels: np.ndarray) -> np.ndarray:
        if y1 - y0 >= 2 and x1 - x0 >= 2:
            pixels = pixels[y0:y1, x0:x1]
        return cv2.copyMakeBorder(pixels, *pads, borderType=cv2.BORDER_REPLICATE) if any(pads) else pixels

    return reframe(image), None if target is None else reframe(target)


def jitter_appearance(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast/colour jitter, and with probability 0.3 each a light Gaussian blur and Gaussian noise."""
    import cv2

    contrast = rng.uniform(0.8, 1.2)
    brightness = rng.uniform(-25.0, 25.0)
    gains = rng.uniform(0.95, 1.05, 3).astype(np.float32)
    out = image.astype(np.float32)
    out = (out - out.mean()) * contrast + out.mean() + brightness
    out *= gains
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        out += rng.normal(0.0, rng.uniform(2.0, 8.0), out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class CropDataset(torch.utils.data.Dataset):
    """Images fitted to their aspect-ratio template; item -> (image (3,h,w) float32 in [-1,1], index), or with
    `target_paths` (one clean target per image, grey, the image's size) -> (image, index, target (3,h,w)).

    `paths`: image files. Files whose header cannot be read (missing, corrupt, < 2x2 px) are found here,
    once: they are listed in `report` (a BadRowReport: row = position in `paths`) and in `failures`, logged
    with a count, and excluded, so `len(self)` counts only the usable files. `index` in an item is the
    file's position in the original `paths`, so callers can place results whatever was excluded.

    `templates[i]` is the template of item i (from the size of its text's part, `vqvae.templates.find_frame`: each
    image is decoded once here to find a frame around its text, and cut to it, `cut_to_frame`, whenever it is
    loaded; and `line_codes`, the VQ-VAE's codes across a line), `(h, w) = template.box(downsample)`.

    Item keys: `dataset[i]` for i in [0, len) is item i; a key `repeat * len(self) + i` is item i seen for the
    `repeat`-th time (epoch or encode repeat): with `augment`, the augmentation is seeded by
    (seed, index, repeat), so it is reproducible in any worker process and any batching.

    A file that fails only when decoded returns a FailedCrop marker instead, which `collate_crops` keeps out
    of the batch and hands back as `batch.failures`.
    """

    def __init__(self, paths: Sequence[str], max_length: int, downsample: int, augment: bool = False,
                 seed: int = 0, progress: bool = False, target_paths: Sequence[str] | None = None,
                 line_codes: int = LINE_CODES) -> None:
        if downsample < 1:
            raise ValueError(f"downsample={downsample} must be a positive integer (8 or 16)")
        if target_paths is not None and len(target_paths) != len(paths):
            raise ValueError(f"{len(target_paths)} target paths for {len(paths)} images: one target per image")
        self.all_targets = None if target_paths is None else [str(p) for p in target_paths]
        self.max_length, self.downsample, self.augment, self.seed = max_length, downsample, augment, seed
        self.all_paths = [str(p) for p in paths]
        self.report = BadRowReport()
        self.failures: list[FailedCrop] = []
        self.paths: list[str] = []
        self.rows: list[int] = []  # position in all_paths of each kept item
        self.templates: list[Template] = []
        self.frames: list[Frame | None] = []  # each item's find_frame; None: the file decodes only when loaded
        iterator = tqdm(self.all_paths, desc="finding frames", unit="img", disable=not progress, leave=False)
        for row, path in enumerate(iterator):
            try:
                width, height = read_image_size(path)
                frame = None
                try:
                    frame = find_frame(load_image(path))
                    y0, y1, x0, x1 = frame.box
                    width, height = x1 - x0, y1 - y0
                except Exception:  # noqa: BLE001  # a file that fails only when decoded fails in __getitem__
                    pass
                template = choose_template(width, height, max_length, line_codes)
            except (ImageReadError, ValueError) as error:  # unreadable, or too long a line for max_length
                self.failures.append(FailedCrop(row, path, str(error)))
                self.report.add(row, path, str(error))
                continue
            self.paths.append(path)
            self.rows.append(row)
            self.templates.append(template)
            self.frames.append(frame)
        if self.failures:
            log.warning("%d of %d images could not be read and are excluded (first: %s)",
                        len(self.failures), len(self.all_paths), self.failures[0].reason)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int) -> tuple[Tensor, int] | tuple[Tensor, int, Tensor] | FailedCrop:
        repeat, item = divmod(int(key), len(self.paths))
        path, row, template = self.paths[item], self.rows[item], self.templates[item]
        target = None
        try:
            image = load_image(path)
            if self.all_targets is not None:
                target = load_image(self.all_targets[row])[:, :, 0]
                if target.shape != image.shape[:2]:
                    raise ImageReadError(f"target {self.all_targets[row]!r} is {target.shape[1]}x{target.shape[0]} "
                                         f"pixels but its image {path!r} {image.shape[1]}x{image.shape[0]}")
            frame = self.frames[item]
            if frame is not None:
                image = cut_to_frame(image, frame)
                target = None if target is None else cut_to_frame(target, frame)
            if self.augment:
                image, target = augment_pair(image, target, np.random.default_rng([self.seed, row, repeat]))
        except ImageReadError as error:
            log.warning("%s", error)
            return FailedCrop(row, path, str(error))
        except Exception as error:  # a decoder crash on one file must not kill a long job
            reason = f"image {path!r} could not be loaded ({type(error).__name__}: {error})"
            log.warning("%s", reason)
            return FailedCrop(row, path, reason)
        try:
            canvas = fit_to_template(image, template, self.downsample)
        except ValueError as error:  # cannot be normalized, e.g. one flat colour
            log.warning("image %r: %s", path, error)
            return FailedCrop(row, path, f"image {path!r}: {error}")
        tensor = torch.from_numpy(image_to_tensor_array(canvas))
        if target is None:
            return tensor, row
        return tensor, row, torch.from_numpy(image_to_tensor_array(fit_grey_to_template(target, template,
                                                                                        self.downsample)))

    def groups(self) -> dict[Template, list[int]]:
        """Item positions (0..len-1) by template, in ascending position order."""
        groups: dict[Template, list[int]] = defaultdict(list)
        for item, template in enumerate(self.templates):
            groups[template].append(item)
        return dict(groups)


def collate_crops(batch: Sequence[tuple[Tensor, int] | FailedCrop]) -> CropBatch:
    """Stack one template's items -> CropBatch `(images (B,3,h,w), indices (B,) int64)`, `.failures` set;
    items with clean targets add a third tensor, `(images, indices, targets (B,3,h,w))`.

    Failed items are dropped from the tensors and listed in `.failures`; a batch where every item failed
    has B = 0 (images of shape (0, 3, 0, 0)).
    """
    good = [item for item in batch if not isinstance(item, FailedCrop)]
    failures = [item for item in batch if isinstance(item, FailedCrop)]
    if not good:
        return CropBatch((torch.empty(0, 3, 0, 0), torch.empty(0, dtype=torch.int64)), failures)
    images = torch.stack([item[0] for item in good])
    indices = torch.tensor([item[1] for item in good], dtype=torch.int64)
    if len(good[0]) == 3:
        return CropBatch((images, indices, torch.stack([item[2] for item in good])), failures)
    return CropBatch((images, indices), failures)


class TemplateBatchSampler(ShardedBatchSampler):
    """Batches of dataset keys sharing one template (so each batch is one tensor shape).

    With `shuffle`, items are shuffled within each template and the batches shuffled, with a generator
    seeded by (seed, epoch); the epoch advances by one on every `iter()` (Lightning does not call
    `set_epoch` on batch samplers), or is set with `set_epoch`, which can also skip the batches a resumed
    run has already trained on (VQVAEDataModule sets both from the restored trainer). Keys carry the epoch
    (`epoch * len(dataset) + i`) so augmentation differs per epoch (see CropDataset); without shuffle
    they are plain positions, in ascending order within each template.

    Sharding across DDP ranks (`pad=False` for validation) and resuming: `ShardedBatchSampler`.
    """

    def __init__(self, dataset: CropDataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, num_replicas: int | None = None, rank: int | None = None,
                 pad: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        super().__init__(num_replicas, rank, pad)
        self.groups = dataset.groups()
        self.num_items = len(dataset)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        batches: list[list[int]] = []
        for template in sorted(self.groups):
            items = self.groups[template]
            if self.shuffle:
                items = [items[i] for i in torch.randperm(len(items), generator=generator).tolist()]
            for start in range(0, len(items), self.batch_size):
                batch = items[start:start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def num_batches(self) -> int:
        total = 0
        for items in self.groups.values():
            total += len(items) // self.batch_size if self.drop_last else math.ceil(len(items) / self.batch_size)
        return total

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        mine, skip = self._this_rank(epoch)
        offset = epoch * self.num_items if self.shuffle else 0
        for batch in mine[skip:]:
            yield [offset + item for item in batch]
