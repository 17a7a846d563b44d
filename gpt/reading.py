"""End-to-end reading: image files or arrays -> VQ-VAE code grids -> text, with per-stage timing.

The library behind `gpt.read`, `gpt.evaluate`, the speed benchmark and the web page; a file that cannot be
read is a reported bad row, never a crash of its batch.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

from gpt.pretrained import Pretrained
from gpt.recognition import nbest_grids, recognize_grids, score_grids
from vqvae.plumbing.io import BadRowReport


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm")


def find_images(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given (in order) and, for each folder, its image files (by suffix, recursively, sorted).

    A path that does not exist is kept, so the reader reports it. ValueError if nothing is left."""
    if not inputs:
        raise ValueError("no image given: pass image files or folders")
    paths: list[str] = []
    empty_folders = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(str(p) for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                empty_folders.append(str(item))
            paths.extend(found)
        else:
            paths.append(str(item))
    if not paths:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {empty_folders}; pass image files "
                         f"or folders that hold some")
    return paths


@dataclass
class ReadResult:
    """`predictions[i]` is (text, confidence) for paths[i], or None if that image failed (see `report`,
    row = i); `seconds`: wall time of the reading, files to texts (the stages overlap on CPU)."""
    predictions: list[Optional[tuple[str, float]]]
    report: BadRowReport = field(default_factory=BadRowReport)
    seconds: float = 0.0

    @property
    def num_read(self) -> int:
        return sum(p is not None for p in self.predictions)

    def timing(self) -> dict[str, float]:
        """{"images", "seconds", "images_per_s"}: images read, end to end."""
        rate = self.num_read / self.seconds if self.seconds > 0 else float("nan")
        return {"images": self.num_read, "seconds": self.seconds, "images_per_s": rate}


def _read_batch(pretrained: Pretrained, num_beams: int, precision: str,
                grids: np.ndarray) -> list[tuple[str, float]]:
    """(text, confidence) for each of one encoded batch's code grids (B, rows, cols), read as one batch."""
    return recognize_grids(pretrained, list(grids), batch_size=len(grids), num_beams=num_beams,
                           precision=precision, progress=False)


def read_images(pretrained: Pretrained, paths: Sequence[str], batch_size: int = 64,
                num_workers: Optional[int] = None, num_beams: int = 1, precision: str = "auto", progress: bool = True,
                votes: int = 1) -> ReadResult:
    """OCR image files: each batch of crops (one template, batched as `vqvae.encoding.encode_paths` batches
    them) is VQ-encoded and read by the GPT where it was loaded: on CPU in `num_workers` loader processes
    (None: one per core, see vqvae.encoding.default_num_workers) with one thread each, so encoding and decoding
    overlap and keep every core busy (1.15-1.2x the crops/s of encoding everything first, then decoding with
    every thread: BENCHMARKS.md, session 40). Unreadable files are in the result's report, never silently
    dropped.

    With `votes` = N > 1 each image's N best readings (beam search) are weighed by the image itself and by N - 1
    copies of it with its borders moved (so the text shifts and scales inside the strip) and its colours jittered
    (vqvae.data.augment_pair, seeded by image and copy: reproducible): the reading with the largest log p(text |
    image) + COPY_WEIGHT * sum of log p(text | copy) wins (`num_beams` is then unused), its confidence the
    exponential of that sum over the weights; a copy whose augmentation fails does not weigh."""
    if pretrained.vqvae is None:
        raise ValueError(f"{pretrained.directory} was loaded without its VQ-VAE; load it with load_vqvae=True")
    if votes < 1:
        raise ValueError(f"votes={votes}: read each image at least once (1 reads it as it is, without voting)")
    pretrained.require_recognition()
    from vqvae.encoding import encode_paths

    started = time.perf_counter()
    encode = partial(encode_paths, pretrained.vqvae, list(paths), pretrained.max_length, batch_size=batch_size,
                     num_workers=num_workers, device=pretrained.device, progress=progress)
    first = (partial(_read_batch, pretrained, num_beams, precision) if votes == 1
             else partial(_nbest_batch, pretrained, votes, precision))
    readings, report = encode(then=first)
    report.rows.sort(key=lambda row: int(row["row"]))
    readable = [i for i, reading in enumerate(readings) if reading is not None]
    for i in set(range(len(readings))) - set(readable) - {int(row["row"]) for row in report.rows}:
        report.add(i, paths[i], "no reading came back for this image")
    predictions: list[Optional[tuple[str, float]]] = [None] * len(paths)
    if votes > 1:
        copies = [encode(augment=True, repeat=copy)[0] for copy in range(1, votes)]
        weighed = _weigh_copies([readings[i] for i in readable], [[copy[i] for copy in copies] for i in readable],
                                pretrained, batch_size, precision)
        readings = dict(zip(readable, weighed))
    for i in readable:
        predictions[i] = readings[i]
    return ReadResult(predictions, report, time.perf_counter() - started)


# The copies' weight against the image's own: of 0, 0.25, 0.5, 1 and 2, 0.5 read the most of the validation set's
# 1 000 crops (training words and fonts; 83.2% with the best beam alone, 87.2% with 5 votes; BENCHMARKS.md).
COPY_WEIGHT = 0.5


def _nbest_batch(pretrained: Pretrained, num: int, precision: str, grids: np.ndarray) -> list[list[tuple[str, float]]]:
    """The `num` best readings [(text, log p)] of each of one encoded batch's code grids (B, rows, cols)."""
    return nbest_grids(pretrained, list(grids), num, batch_size=len(grids), precision=precision)


def _weigh_copies(candidates: list[list[tuple[str, float]]], copies: list[list[Optional[np.ndarray]]],
                  pretrained: Pretrained, batch_size: int, precision: str) -> list[tuple[str, float]]:
    """(text, confidence) per image: its candidates weighed by its copies' code grids (None: a failed copy)."""
    jobs = [(i, grid) for i, grids in enumerate(copies) for grid in grids if grid is not None]
    scores = score_grids(pretrained, [grid for _, grid in jobs], [[t for t, _ in candidates[i]] for i, _ in jobs],
                         batch_size=batch_size, precision=precision)
    by_image: list[list[list[float]]] = [[] for _ in candidates]
    for (i, _), row in zip(jobs, scores):
        by_image[i].append(row)
    return [_weigh(own, rows) for own, rows in zip(candidates, by_image)]


def _weigh(own: list[tuple[str, float]], copies: list[list[float]]) -> tuple[str, float]:
    """The candidate with the largest own log p + COPY_WEIGHT * its copies' log p, and the exponential of that
    score over the weights' sum (in (0, 1]) as its confidence."""
    totals = [score + COPY_WEIGHT * sum(row[k] for row in copies) for k, (_, score) in enumerate(own)]
    best = max(range(len(own)), key=totals.__getitem__)
    return own[best][0], math.exp(totals[best] / (1 + COPY_WEIGHT * len(copies)))


class Reading(NamedTuple):
    """What the model read in one image: text, confidence in (0, 1], and the (rows, cols) int64 code grid."""
    text: str
    confidence: float
    grid: np.ndarray


def read_arrays(pretrained: Pretrained, images: Sequence[np.ndarray], batch_size: int = 64, num_beams: int = 1,
                precision: str = "auto") -> list[Reading]:
    """OCR decoded crops in memory (RGB uint8 (H, W, 3); gray and RGBA are converted) -> a Reading each, in
    input order: the same encoder input and decoding as `read_images` gives their files, with no file I/O
    (for servers and notebooks). Raises ImageReadError naming the position of an unusable image."""
    if pretrained.vqvae is None:
        raise ValueError(f"{pretrained.directory} was loaded without its VQ-VAE; load it with load_vqvae=True")
    pretrained.require_recognition()
    from vqvae.encoding import encode_images

    grids = encode_images(pretrained.vqvae, images, pretrained.max_length, batch_size, device=pretrained.device)
    results = recognize_grids(pretrained, grids, batch_size=batch_size, num_beams=num_beams, precision=precision,
                              progress=False)
    return [Reading(text, confidence, grid) for (text, confidence), grid in zip(results, grids)]
