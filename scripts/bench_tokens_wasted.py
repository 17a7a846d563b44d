"""Tokens wasted by our aspect-ratio templates vs padding every crop to a square grid.

    python -m scripts.bench_tokens_wasted --dataset data/rendered/labels.csv --json outputs/tokens_wasted.json
    python -m scripts.bench_tokens_wasted --num-samples 2000      # renders its own set first

For each crop and each budget L (tokens per image), the share of the L positions that carry no image
content (vqvae.templates.template_waste / square_waste): `<vpad>` positions after the grid plus codes
covering only padding. Row tokens are excluded (they carry layout, not waste). Only image sizes matter,
read from the file headers.

Without --dataset it renders a set with `scripts.render_text` (30% vertical, as its default), or, if that
module is unavailable, draws words itself with PIL and the DejaVu font matplotlib ships.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from vqvae.data import read_image_size
from vqvae.plumbing.io import BadRowReport, ImageReadError, read_labelled_csv, report_path_for, write_json_atomic
from vqvae.templates import choose_template, square_waste, template_waste
from vqvae.plumbing.cli import run_cli

# Fallback words when scripts.render_text is missing: short and long, so both wide and near-square crops.
FALLBACK_WORDS = ["OCR", "hello", "world", "token", "template", "aspect ratio", "Inverse DALL-E",
                  "a", "42", "quick brown fox", "VQ-VAE", "rendering text", "grid", "Seoul", "open source"]


def render_fallback(folder: Path, num_samples: int, seed: int) -> Path:
    """Render `num_samples` words (horizontal, and vertical one letter under another for ~30%) with PIL."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    import pandas as pd

    from vqvae.plumbing.io import write_csv_atomic

    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    rng = np.random.default_rng(seed)
    rows = []
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(num_samples), desc="rendering", unit="img"):
        text = FALLBACK_WORDS[rng.integers(len(FALLBACK_WORDS))]
        font = ImageFont.truetype(str(font_path), int(rng.integers(20, 48)))
        vertical = rng.random() < 0.3
        lines = list(text.replace(" ", "")) if vertical else [text]
        boxes = [font.getbbox(line) for line in lines]
        line_height = max(b[3] for b in boxes) + 2
        width = max(b[2] for b in boxes) + 8
        image = Image.new("RGB", (width, line_height * len(lines) + 8), "white")
        draw = ImageDraw.Draw(image)
        for number, line in enumerate(lines):
            draw.text((4, 4 + number * line_height), line, fill="black", font=font)
        name = f"images/{i:06d}.png"
        image.save(folder / name)
        rows.append({"img_path": name, "text": text, "orientation": "vertical" if vertical else "horizontal"})
    write_csv_atomic(pd.DataFrame(rows), folder / "labels.csv")
    return folder / "labels.csv"


def render_set(folder: Path, num_samples: int, seed: int) -> Path:
    try:
        from scripts import render_text
    except ImportError:
        return render_fallback(folder, num_samples, seed)
    code = render_text.main(["--output", str(folder), "--num-samples", str(num_samples), "--seed", str(seed)])
    if code not in (0, None) or not (folder / "labels.csv").is_file():
        return render_fallback(folder / "fallback", num_samples, seed)
    return folder / "labels.csv"


def waste_table(sizes: list[tuple[int, int]], lengths: Sequence[int]) -> list[dict]:
    """One row per L: mean and median waste of templates and of the square, and the mean number of
    content codes each gives a crop (more codes = more resolution for the same budget)."""
    table = []
    for max_length in lengths:
        ours = np.array([template_waste(w, h, max_length) for w, h in sizes])
        square = np.array([square_waste(w, h, max_length) for w, h in sizes])
        ours_codes = np.array([(1 - waste) * (max_length - choose_template(w, h, max_length).rows)
                               for (w, h), waste in zip(sizes, ours)])
        square_codes = (1 - square) * max_length
        table.append({"max_length": max_length, "images": len(sizes),
                      "template_waste_mean": float(ours.mean()), "template_waste_median": float(np.median(ours)),
                      "square_waste_mean": float(square.mean()), "square_waste_median": float(np.median(square)),
                      "template_content_codes_mean": float(ours_codes.mean()),
                      "square_content_codes_mean": float(square_codes.mean()),
                      "square_side": math.isqrt(max_length)})
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 some images could not be read (reported), 2 a usage or input error."""
    return run_cli(parse_args, run, argv)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_tokens_wasted",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", default=None, help="labelled CSV (img_path,...); default: render one")
    parser.add_argument("--num-samples", type=int, default=1000, help="crops to render without --dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-lengths", type=int, nargs="+", default=[64, 128, 256], help="budgets L to compare")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:

    with tempfile.TemporaryDirectory(prefix="tokens_wasted_") as scratch:
        labels = Path(args.dataset) if args.dataset else render_set(Path(scratch), args.num_samples, args.seed)
        frame = read_labelled_csv(labels, required=("img_path",))
        sizes, orientations, report = [], [], BadRowReport()
        has_orientation = "orientation" in frame.columns
        for row, path in enumerate(tqdm(frame["abs_path"], desc="reading sizes", unit="img")):
            try:
                sizes.append(read_image_size(path))
            except ImageReadError as error:
                report.add(row, frame["img_path"].iat[row], str(error))
                continue
            orientations.append(frame["orientation"].iat[row] if has_orientation else
                                ("vertical" if sizes[-1][1] > sizes[-1][0] else "horizontal"))
    if not sizes:
        raise ValueError(f"none of the {len(frame)} images in {labels} could be read")

    results = {"dataset": str(args.dataset or f"rendered ({args.num_samples} samples, seed {args.seed})"),
               "all": waste_table(sizes, args.max_lengths)}
    for orientation in sorted(set(orientations)):
        subset = [size for size, o in zip(sizes, orientations) if o == orientation]
        results[orientation] = waste_table(subset, args.max_lengths)

    print(f"tokens wasted (share of the L positions, row tokens excluded) on {results['dataset']}")
    print(f"{'subset':<11} {'L':>4} {'images':>7} {'templates':>10} {'square':>8} {'codes (tpl)':>12} "
          f"{'codes (sq)':>11}")
    for subset in ["all", *sorted(set(orientations))]:
        for row in results[subset]:
            print(f"{subset:<11} {row['max_length']:>4} {row['images']:>7} {row['template_waste_mean']:>9.1%} "
                  f"{row['square_waste_mean']:>8.1%} {row['template_content_codes_mean']:>12.1f} "
                  f"{row['square_content_codes_mean']:>11.1f}")
    if args.json:
        write_json_atomic(results, args.json)
        print(f"wrote {args.json}")
    if len(report):
        output = Path(args.json or args.dataset or "tokens_wasted")
        bad = report.write(report_path_for(output))
        print(f"{len(report)} image(s) could not be read; see {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
