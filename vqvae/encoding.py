"""The encoding engine: crops (arrays or files) -> VQ-VAE code grids, fast and in input order.

Files go through the very dataset and batch sampler training uses (`vqvae.data`), so training and encoding
see the same pixels; batches hold one template each; a file that cannot be read comes back as None with
its reason in a BadRowReport. The library behind `vqvae.encode`, `gpt.reading` and the web page.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from vqvae.data import CropDataset, FailedCrop, TemplateBatchSampler, collate_crops
from vqvae.plumbing.io import BadRowReport, ImageReadError, to_rgb_uint8
from vqvae.templates import (LINE_CODES, choose_template, fit_grey_to_template, image_to_tensor_array,
                             normalize_text_part)

if TYPE_CHECKING:  # only for annotations: encoding must import without the model
    from vqvae.modeling import VQVAE


def _autocast(device: torch.device):
    # bf16 on CUDA only: on a CPU without native bf16 it was no faster for the demo encoder and changed ~3% of the
    # codes; on one with it (AVX-512 BF16) the shipped encoder ran 1.3-1.4x faster, but 1.5-1.8% of its codes
    # changed and the GPT read 0.2-0.7 points less from them (scripts/bench_encode_precision.py, BENCHMARKS.md).
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _as_conv_input(images: Tensor, device: torch.device) -> Tensor:
    # channels_last (NHWC): the demo encoder ran ~1.4x faster on CPU (noisy, shared 2-core machine). Codes can
    # differ from NCHW only at near-ties (0.05% on a random model); every path here uses NHWC, so results
    # agree across batchings, workers and shards. The model's own weights are left untouched.
    return images.to(device).contiguous(memory_format=torch.channels_last)


def _model_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def encoder_input(image: np.ndarray, max_length: int, downsample: int, line_codes: int = LINE_CODES) -> np.ndarray:
    """What the encoder sees of one RGB uint8 crop (H, W, 3): the crop, cut to the inside of a frame around its text
    (`normalize_text_part`), fitted to its template's box and padded, RGB uint8 (box_h, box_w, 3), for a VQ-VAE of
    `downsample` and `line_codes`. `encode_images` encodes exactly this; shown to people as "what the model saw"."""
    grey = normalize_text_part(image)
    template = choose_template(grey.shape[1], grey.shape[0], max_length, line_codes)
    return fit_grey_to_template(grey, template, downsample)


@torch.inference_mode()
def encode_images(model: "VQVAE", images: Sequence[np.ndarray], max_length: int, batch_size: int = 64,
                  device: str | torch.device | None = None) -> list[np.ndarray]:
    """Encode in-memory crops: RGB uint8 arrays (H, W, 3) (gray (H, W) and RGBA are converted) ->
    code grids (rows, cols) int64 in [0, num_codes), in input order.

    Images are fitted to their templates and batched by template, so each batch is one tensor shape.
    `device`: where the model runs (default: where its parameters are). Raises ImageReadError naming the
    position of an unusable image (e.g. smaller than 2x2).
    """
    device = _model_device(model, device)
    rgb = []
    for position, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            if image.shape[0] < 2 or image.shape[1] < 2:
                raise ImageReadError(f"images[{position}] is {image.shape[1]}x{image.shape[0]} pixels; "
                                     f"a crop needs at least 2x2")
            rgb.append(image)
        else:
            # to_rgb_uint8 takes OpenCV channel order; a 3/4-channel array here is RGB(A), so flip to BGR(A).
            if image.ndim == 3 and image.shape[2] in (3, 4):
                image = image[:, :, [2, 1, 0, 3][:image.shape[2]]]
            rgb.append(to_rgb_uint8(image, f"images[{position}]"))
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)  # by box shape: one template, one shape
    inputs: dict[int, np.ndarray] = {}
    for position, image in enumerate(rgb):
        try:  # a line too long for max_length, or a crop of one flat colour, cannot be normalized
            inputs[position] = image_to_tensor_array(encoder_input(image, max_length, model.downsample,
                                                                   model.line_codes))
        except ValueError as error:
            raise ImageReadError(f"images[{position}]: {error}") from None
        groups[inputs[position].shape].append(position)
    results: list[np.ndarray | None] = [None] * len(rgb)
    with _autocast(device):
        for positions in groups.values():
            for start in range(0, len(positions), batch_size):
                chunk = positions[start:start + batch_size]
                batch = np.stack([inputs.pop(p) for p in chunk])  # one template: one box shape
                code_ids = model.encode(_as_conv_input(torch.from_numpy(batch), device)).cpu().numpy()
                for p, grid in zip(chunk, code_ids):
                    results[p] = grid.astype(np.int64)
    return results  # type: ignore[return-value]


class _EncodeBatches(torch.utils.data.Dataset):
    """Item i = batch i loaded *and encoded* (and given to `then`) -> (indices (B,), codes, failures), codes
    being the (B, h, w) int64 code grids or `then`'s B results for them.

    For CPU encoding with DataLoader workers: each worker runs the model on whole batches with one thread
    (DataLoader workers use one torch thread). On a 2-core machine two single-thread processes encoded the
    demo set 2-4x faster than one process with two intra-op threads (small convs parallelise poorly), and
    the codes are identical because every batch is the same as in a one-process run.
    """

    def __init__(self, dataset: CropDataset, batches: list[list[int]], model: torch.nn.Module,
                 then: Callable[[np.ndarray], Sequence[Any]] | None) -> None:
        self.dataset, self.batches, self.model, self.then = dataset, batches, model, then

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[Tensor, Any, list[FailedCrop]]:
        batch = collate_crops([self.dataset[key] for key in self.batches[i]])
        images, indices = batch
        with torch.inference_mode():
            code_ids = (self.model.encode(_as_conv_input(images, torch.device("cpu"))) if len(indices)
                        else torch.empty(0, 0, 0, dtype=torch.int64))
        return indices, _then(self.then, code_ids), batch.failures


def _then(then: Callable[[np.ndarray], Sequence[Any]] | None, code_ids: Tensor) -> Any:
    """A batch's (B, h, w) codes as int64 grids, or what `then` makes of them (B results; none for no grid)."""
    grids = code_ids.cpu().numpy().astype(np.int64)
    if then is None:
        return grids
    results = then(grids) if len(grids) else []
    if len(results) != len(grids):
        raise ValueError(f"then={then!r} gave {len(results)} results for a batch of {len(grids)} code grids")
    return results


def _no_collate(item: Any) -> Any:
    return item


def default_num_workers(device: str | torch.device) -> int:
    """Loader processes for encoding: on CPU every usable core (max 8), each encoding whole batches with
    one thread; on GPU 4, which only load and resize images."""
    if torch.device(device).type == "cpu":
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return min(cores, 8)
    return 4


@torch.inference_mode()
def encode_paths(model: "VQVAE", paths: Sequence[str], max_length: int, batch_size: int = 64,
                 num_workers: int | None = None, device: str | torch.device | None = None,
                 augment: bool = False, seed: int = 0, progress: bool = True, repeat: int = 0,
                 num_replicas: int = 1, rank: int = 0,
                 then: Callable[[np.ndarray], Sequence[Any]] | None = None) -> tuple[list[Any], BadRowReport]:
    """Encode image files -> (grids, report): `grids[i]` is the (rows, cols) int64 grid of `paths[i]`, or
    None if it failed; `report` holds one row (row = i, img_path, reason) per failure.

    Deterministic and order-preserving whatever `batch_size`/`num_workers`: images are batched by template
    in a fixed order and results placed by index. `num_workers` DataLoader processes (None: see
    default_num_workers) load the images; on CPU they also run the model, one thread each; 0 runs
    everything in this process with all its threads. With `augment`, the augmentation is seeded by
    (seed, index, repeat), so `repeat` 0..N-1 gives N different, reproducible encodings of each image.

    Sharding (several processes, e.g. torchrun): with `num_replicas` > 1 this process encodes only every
    `num_replicas`-th batch of the fixed batch list, starting at `rank`, and returns None for the other
    rows (and reports construction failures only on rank 0). Every image is encoded in the very batch a
    single process would use, so the gathered result is identical to a one-process run.

    `then`, a function of one batch's code grids (B, rows, cols) int64 -> B results, runs where that batch was
    encoded (in its loader worker on CPU, with that worker's one thread), and `grids[i]` is then its result for
    `paths[i]`: `gpt.reading` reads crops in the workers as they are encoded, so the GPT no longer waits for the
    last crop's codes and one thread per worker keeps both cores busy (BENCHMARKS.md, session 40). It must be
    picklable where workers are spawned (a module-level function or a functools.partial of one).
    """
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank} must be in [0, num_replicas={num_replicas})")
    device = _model_device(model, device)
    if num_workers is None:
        num_workers = default_num_workers(device)
    dataset = CropDataset(paths, max_length, model.downsample, augment=augment, seed=seed, progress=progress,
                          line_codes=model.line_codes)
    report = BadRowReport()
    for failure in dataset.failures if rank == 0 else []:
        report.add(failure.index, failure.path, failure.reason)
    results: list[np.ndarray | None] = [None] * len(dataset.all_paths)
    if len(dataset) == 0:
        return results, report
    sampler = TemplateBatchSampler(dataset, batch_size, shuffle=False, num_replicas=1, rank=0)
    offset = repeat * len(dataset)
    # Largest batches first: workers take batches in turn, so the last ones, small, even out their finishing times.
    batches = sorted(([offset + item for item in batch] for batch in sampler), key=len, reverse=True)
    batches = batches[rank::num_replicas]
    stage = "encoding" if then is None else "reading"
    bar = tqdm(total=sum(map(len, batches)), desc=f"{stage} (repeat {repeat})" if repeat else stage,
               unit="img", disable=not progress)
    failures: list[FailedCrop] = []

    def place(indices: Tensor, codes: Any, batch_failures: list[FailedCrop]) -> None:
        failures.extend(batch_failures)
        for index, result in zip(indices.tolist(), codes):
            results[index] = result
        bar.update(len(indices) + len(batch_failures))

    if device.type == "cpu" and num_workers > 0:
        loader = torch.utils.data.DataLoader(_EncodeBatches(dataset, batches, model, then), batch_size=None,
                                             collate_fn=_no_collate, num_workers=num_workers)
        for indices, codes, batch_failures in loader:
            place(indices, codes, batch_failures)
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate_crops,
                                             num_workers=num_workers)
        for batch in loader:
            images, indices = batch
            with _autocast(device):
                code_ids = (model.encode(_as_conv_input(images, device)) if len(indices)
                            else torch.empty(0, 0, 0, dtype=torch.int64))
            place(indices, _then(then, code_ids), batch.failures)
    bar.close()
    for failure in sorted(failures):
        report.add(failure.index, failure.path, failure.reason)
    report.rows.sort(key=lambda row: int(row["row"]))
    return results, report
