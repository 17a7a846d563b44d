"""What the recognizer reads of the same crops at lower resolutions: each crop scaled down (never up) so the side
across its line (the shorter side) is H pixels, then read as a user's image would be (exact, spaces ignored).

    python -m scripts.bench_resolution outputs/pretrain/data/heldout_*/labels.csv [--heights 0 48 32 24 16]
        [--model DIR] [--output outputs/resolution] [--json outputs/resolution/resolution.json]

Height 0 reads the crops as they are. Each set's crop sizes (median and tenth percentile across the line) are
printed first, so `--heights 0` measures how large a set's crops are (and reads them as they are). Photographed
crops are small (real_en: median 32 px across its line, a tenth under 18 px; the rendered held-out English crops:
median 39, a tenth under 28), so the slope of this curve says how much of the gap between rendered and real crops is
resolution alone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from gpt.evaluate import dataset_names, evaluate
from gpt.pretrained import SHIPPED_MODEL, load_pretrained
from vqvae.plumbing.io import read_labelled_csv, write_csv_atomic, write_json_atomic


def scale_across_line(image: np.ndarray, pixels: int) -> np.ndarray:
    """`image` scaled down (area-averaged, aspect kept) so its shorter side is `pixels`; as it is when already
    that small or `pixels` is 0."""
    short = min(image.shape[:2])
    if pixels <= 0 or short <= pixels:
        return image
    factor = pixels / short
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def read_images(csv_path: Path) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The labelled CSV `csv_path` (without its absolute paths) and its images, read once for every height."""
    frame = read_labelled_csv(csv_path)
    images = []
    for source in frame["abs_path"]:
        image = cv2.imread(source, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {source!r} of {csv_path}")
        images.append(image)
    return frame.drop(columns="abs_path"), images


def write_scaled(frame: pd.DataFrame, images: list[np.ndarray], pixels: int, out: Path) -> Path:
    """A copy of the labelled set (`frame`, `images`) with every image scaled by `scale_across_line`, under `out`."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    paths = [f"images/{i:05d}.png" for i in range(len(images))]
    for path, image in zip(paths, images):
        cv2.imwrite(str(out / path), scale_across_line(image, pixels))
    write_csv_atomic(frame.assign(img_path=paths), out / "labels.csv")
    return out / "labels.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs (img_path,text)")
    parser.add_argument("--heights", type=int, nargs="+", default=[0, 48, 32, 24, 16],
                        help="pixels across the line (0: as they are)")
    parser.add_argument("--model", default=str(SHIPPED_MODEL), help="recognition export (default: the shipped one)")
    parser.add_argument("--output", default="outputs/resolution", help="folder of the scaled copies")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if any(h < 0 for h in args.heights):
        parser.error(f"--heights must be 0 (as they are) or positive pixel counts, got {args.heights}")
    names = dataset_names(args.datasets)
    pretrained = load_pretrained(args.model)
    sets = [read_images(Path(path)) for path in args.datasets]
    sizes: dict[str, dict[str, float]] = {}
    for name, (_, images) in zip(names, sets):
        across = [min(image.shape[:2]) for image in images]
        sizes[name] = {"median": float(np.median(across)), "p10": float(np.percentile(across, 10))}
        print(f"{name}: {len(across)} crops, median {sizes[name]['median']:.0f} px across the line, "
              f"a tenth under {sizes[name]['p10']:.0f} px", flush=True)
    figures: dict[str, dict[str, float]] = {}
    for pixels in args.heights:
        written = [write_scaled(frame, images, pixels, Path(args.output) / f"h{pixels}" / name)
                   for name, (frame, images) in zip(names, sets)]
        table, _, _ = evaluate(pretrained, [str(csv) for csv in written], ignore_space=True, progress=False)
        figures[str(pixels)] = {row["dataset"]: round(float(row["accuracy"]), 4) for _, row in table.iterrows()}
        scores = "  ".join(f"{name} {100 * accuracy:.1f}%" for name, accuracy in figures[str(pixels)].items())
        print(f"{pixels or 'as is':>5} px: {scores}", flush=True)
    if args.json:
        write_json_atomic({"model": args.model, "datasets": args.datasets, "sizes_across_line": sizes,
                           "accuracy": figures}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
