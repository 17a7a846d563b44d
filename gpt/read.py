"""End-to-end OCR of image files with one export folder: VQ-encode, then recognise (DESIGN §4).

    python -m gpt.read outputs/bench/gpt word.png crops/ --output predictions.csv
    python -m gpt.read MODEL_DIR crops/ --timing

Each image is fitted to its aspect-ratio template and encoded by the export's own VQ-VAE (batched by
template), and the GPT reads the code grid. Folders are searched recursively for image files. Prints
`path<TAB>text<TAB>confidence` per image, or writes a CSV `img_path,text,confidence` with --output.
Files that cannot be read are reported on stderr (and in OUTPUT.bad.csv) and skipped; the exit status is
then 1. --timing prints images/s of each stage (VQ encoding, GPT decoding) and end to end.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from gpt.predict import add_inference_options, check_inference_options, recognize_grids, take_model_argument
from gpt.pretrained import Pretrained, load_pretrained
from vqvae.plumbing.io import BadRowReport, report_path_for, write_csv_atomic
from vqvae.plumbing.cli import run_cli

log = logging.getLogger(__name__)

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
    row = i). Seconds spent in each stage for the timing report."""
    predictions: list[Optional[tuple[str, float]]]
    report: BadRowReport = field(default_factory=BadRowReport)
    encode_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def num_read(self) -> int:
        return sum(p is not None for p in self.predictions)

    def timing(self) -> dict[str, float]:
        """{"images", "encode_images_per_s", "decode_images_per_s", "images_per_s"} (end to end = both stages)."""
        count = self.num_read
        total = self.encode_seconds + self.decode_seconds
        rate = lambda seconds: count / seconds if seconds > 0 else float("nan")  # noqa: E731
        return {"images": count, "encode_seconds": self.encode_seconds, "decode_seconds": self.decode_seconds,
                "encode_images_per_s": rate(self.encode_seconds), "decode_images_per_s": rate(self.decode_seconds),
                "images_per_s": rate(total)}


def read_images(pretrained: Pretrained, paths: Sequence[str], batch_size: int = 64, num_workers: int = 0,
                num_beams: int = 1, precision: str = "auto", progress: bool = True) -> ReadResult:
    """OCR image files: VQ-encode each (template per image, batched by template, `num_workers` loader
    processes), then decode all grids with the GPT. Unreadable files are in the result's report, never
    silently dropped."""
    if pretrained.vqvae is None:
        raise ValueError(f"{pretrained.directory} was loaded without its VQ-VAE; load it with load_vqvae=True")
    pretrained.require_recognition()
    from vqvae.data import encode_paths

    started = time.perf_counter()
    grids, report = encode_paths(pretrained.vqvae, list(paths), pretrained.max_length, batch_size=batch_size,
                                 num_workers=num_workers, device=pretrained.device, progress=progress)
    encoded = time.perf_counter()
    report.rows.sort(key=lambda row: int(row["row"]))
    readable = [i for i, grid in enumerate(grids) if grid is not None]
    for i in set(range(len(grids))) - set(readable) - {int(row["row"]) for row in report.rows}:
        report.add(i, paths[i], "no code grid came back for this image")
    results = recognize_grids(pretrained, [grids[i] for i in readable], batch_size=batch_size,
                              num_beams=num_beams, precision=precision, progress=progress)
    decoded = time.perf_counter()
    predictions: list[Optional[tuple[str, float]]] = [None] * len(paths)
    for i, result in zip(readable, results):
        predictions[i] = result
    return ReadResult(predictions, report, encoded - started, decoded - encoded)


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
    from vqvae.data import encode_images

    grids = encode_images(pretrained.vqvae, images, pretrained.max_length, batch_size, device=pretrained.device)
    results = recognize_grids(pretrained, grids, batch_size=batch_size, num_beams=num_beams, precision=precision,
                              progress=False)
    return [Reading(text, confidence, grid) for (text, confidence), grid in zip(results, grids)]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.read", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("images", nargs="+", metavar="[MODEL_DIR] IMAGE",
                        help="a recognition export folder (python -m gpt.export; default: the shipped model "
                             "resources/models/ocr-ko-en), then image files and/or folders (searched recursively)")
    parser.add_argument("--output", default=None, help="write a CSV img_path,text,confidence instead of printing")
    parser.add_argument("--timing", action="store_true", help="print images/s of VQ encoding, GPT decoding, total")
    add_inference_options(parser, image_files=True)
    args = parser.parse_args(argv)
    check_inference_options(parser, args)
    take_model_argument(parser, args, "images", "image file or folder")
    return args


def format_timing(timing: dict[str, float]) -> str:
    """One line, e.g. `VQ encoding: 420.1 images/s (2.42 s); GPT decoding: 160.3 images/s (6.35 s); total:
    116.7 images/s (1024 images)` (stage times exclude loading the model)."""
    return (f"VQ encoding: {timing['encode_images_per_s']:.1f} images/s ({timing['encode_seconds']:.2f} s); "
            f"GPT decoding: {timing['decode_images_per_s']:.1f} images/s ({timing['decode_seconds']:.2f} s); "
            f"total: {timing['images_per_s']:.1f} images/s ({int(timing['images'])} images)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 1 some images failed (reported), 2 a usage or input error."""
    return run_cli(parse_args, run, argv, logging.WARNING)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    paths = find_images(args.images)
    pretrained = load_pretrained(args.model_dir, device=args.device, load_tokenizer=False, load_vqvae=True)
    result = read_images(pretrained, paths, args.batch_size, args.num_workers, args.num_beams,
                         args.precision, not args.no_progress)
    readable = [i for i, p in enumerate(result.predictions) if p is not None]
    if args.output:
        frame = pd.DataFrame({"img_path": [paths[i] for i in readable],
                              "text": [result.predictions[i][0] for i in readable],  # type: ignore[index]
                              "confidence": [result.predictions[i][1] for i in readable]})  # type: ignore[index]
        write_csv_atomic(frame, args.output)
        bad_path = result.report.write(report_path_for(args.output))
        print(f"wrote {len(frame)} rows to {args.output}", file=sys.stderr)
    else:
        bad_path = None
        for i in readable:
            text, confidence = result.predictions[i]  # type: ignore[misc]
            # Tabs and newlines inside a prediction would break the line format; show them escaped.
            shown = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            print(f"{paths[i]}\t{shown}\t{confidence:.6g}")
    for row in result.report.rows:
        print(f"failed: {row['img_path']}: {row['reason']}", file=sys.stderr)
    if args.timing:
        print(format_timing(result.timing()), file=sys.stderr)
    if len(result.report):
        where = f"; see {bad_path}" if bad_path else ""
        print(f"{len(result.report)} of {len(paths)} image(s) could not be read{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
