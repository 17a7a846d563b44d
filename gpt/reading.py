"""End-to-end reading: image files or arrays -> VQ-VAE code grids -> text, with per-stage timing.

The library behind `gpt.read`, `gpt.evaluate`, the speed benchmark and the web page; a file that cannot be
read is a reported bad row, never a crash of its batch.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from gpt.pretrained import Pretrained
from gpt.recognition import merge_augmented, recognize_grids
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

    With `votes` > 1 each image is read that many times, as it is and `votes - 1` times with its borders moved
    (so the text shifts and scales inside the strip) and its colours jittered (vqvae.data.augment_pair, seeded
    by image and copy: reproducible); the text with the largest summed confidence wins and its confidence is that
    sum over the copies that voted (gpt.recognition.merge_augmented); a copy whose augmentation fails does not."""
    if pretrained.vqvae is None:
        raise ValueError(f"{pretrained.directory} was loaded without its VQ-VAE; load it with load_vqvae=True")
    if votes < 1:
        raise ValueError(f"votes={votes}: read each image at least once (1 reads it as it is, without voting)")
    pretrained.require_recognition()
    from vqvae.encoding import encode_paths

    started = time.perf_counter()
    read_batch = partial(_read_batch, pretrained, num_beams, precision)
    copies, reports = zip(*(encode_paths(pretrained.vqvae, list(paths), pretrained.max_length, batch_size=batch_size,
                                         num_workers=num_workers, device=pretrained.device, progress=progress,
                                         augment=copy > 0, repeat=copy, then=read_batch) for copy in range(votes)))
    readings, report = copies[0], reports[0]
    report.rows.sort(key=lambda row: int(row["row"]))
    readable = [i for i, reading in enumerate(readings) if reading is not None]
    for i in set(range(len(readings))) - set(readable) - {int(row["row"]) for row in report.rows}:
        report.add(i, paths[i], "no reading came back for this image")
    voters = [(i, copy[i]) for copy in copies for i in readable if copy[i] is not None]
    predictions: list[Optional[tuple[str, float]]] = [None] * len(paths)
    ballots = pd.DataFrame({"index": [i for i, _ in voters], "text": [text for _, (text, _) in voters],
                            "confidence": [confidence for _, (_, confidence) in voters]})
    merged = merge_augmented(ballots, key="index")  # one ballot each when votes == 1: its own reading
    for i, text, confidence in zip(merged["index"], merged["text"], merged["confidence"]):
        predictions[int(i)] = (text, float(confidence))
    return ReadResult(predictions, report, time.perf_counter() - started)


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
