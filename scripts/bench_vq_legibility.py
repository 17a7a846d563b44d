"""How much of a crop's legibility survives normalization and the VQ-VAE, judged by an independent reader.

    python -m scripts.bench_vq_legibility outputs/pretrain3/data/heldout_en/labels.csv:en \\
        outputs/pretrain3/data/heldout_ko_horizontal/labels.csv:ko [--model EXPORT_OR_VQ_RUN] --output DIR

For each labelled set (CSV:LANGUAGE, horizontal lines), Tesseract (`--psm 7`) reads three versions of every
crop: the crop itself, the normalized strip the VQ-VAE encodes (DESIGN §2, shown upright), and the VQ-VAE's
reconstruction of that strip from its codes. The GPT sees only codes, so the third column bounds what a reader
of those codes can recover (as far as Tesseract's reading is a guide); the gap between the first two is what
the strip's scale and grey costs, between the last two what quantization costs. Both derived versions are
scaled up 2x (Tesseract reads 32-pixel lines poorly) and written to DIR/<set>/{strip,codes}/ with their
labels.csv; DIR/results.json holds the table, DIR/sheet.png shows a few crops of each set in the three forms.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from scripts.bench import tesseract_scores
from vqvae.checkpoint import load_vqvae, load_vqvae_dir, read_vqvae_dir_config
from vqvae.decode import decode_grids
from vqvae.encoding import encode_images, encoder_input
from vqvae.plumbing.io import load_image, read_labelled_csv, save_image, write_csv_atomic, write_json_atomic
from vqvae.modeling import VQVAE
from vqvae.templates import choose_template, content_size, is_horizontal, strip_frame, upright

SHOWN = 6  # crops per set on the contact sheet


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="CSV:LANGUAGE (en or ko) of horizontal labelled crops")
    parser.add_argument("--model", default="resources/models/ocr-ko-en",
                        help="a recognition export (its vqvae/) or a vqvae.train run folder (its last.ckpt)")
    parser.add_argument("--output", required=True, help="folder for the derived crops, results.json, sheet.png")
    return parser.parse_args(argv)


def load_codec(path: Path) -> tuple[VQVAE, int]:
    """The VQ-VAE, and its max_length, of a recognition export (DIR/vqvae) or a vqvae.train run folder."""
    if (path / "vqvae").is_dir():
        return load_vqvae_dir(path / "vqvae"), read_vqvae_dir_config(path / "vqvae")["max_length"]
    model, cfg = load_vqvae(path / "config.yaml", path / "checkpoints" / "last.ckpt")
    return model, cfg.data.max_length


def derived_versions(model: VQVAE, max_length: int,
                     images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(strips, reconstructions) of RGB crops, upright, cut to their content (no padding), scaled up 2x."""
    f = model.downsample
    grids = encode_images(model, images, max_length)
    decoded = decode_grids(model, grids)
    strips, codes = [], []
    for image, reconstruction in zip(images, decoded):
        height, width = strip_frame(image).shape[:2]  # the part encoding keeps
        template = choose_template(width, height, max_length, model.line_codes)
        rows, cols = content_size(width, height, template, f)
        for strip, out in ((encoder_input(image, max_length, f, model.line_codes), strips), (reconstruction, codes)):
            # A one-syllable word can be taller than wide: its strip was never turned, so is shown as it is.
            shown = upright(strip[:rows, :cols], horizontal=is_horizontal(width, height))
            out.append(cv2.resize(shown, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    return strips, codes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    model, max_length = load_codec(Path(args.model))
    tesseract_sets, sheet_rows = {}, []
    for spec in args.sets:
        csv, _, language = spec.rpartition(":")
        if language not in ("en", "ko"):
            raise SystemExit(f"{spec!r}: give each set as CSV:LANGUAGE with LANGUAGE en or ko")
        name = Path(csv).parent.name
        frame = read_labelled_csv(csv)
        images = [load_image(path) for path in frame["abs_path"]]
        strips, codes = derived_versions(model, max_length, images)
        tesseract_sets[f"{name} crop"] = (Path(csv), language, 0.0)
        for kind, versions in (("strip", strips), ("codes", codes)):
            folder = out / name / kind
            for i, image in enumerate(versions):
                save_image(folder / f"{i:06d}.png", image)
            write_csv_atomic(frame[["text"]].assign(img_path=[f"{i:06d}.png" for i in range(len(frame))]),
                             folder / "labels.csv")
            tesseract_sets[f"{name} {kind}"] = (folder / "labels.csv", language, 0.0)
        sheet_rows += [(images[i], strips[i], codes[i]) for i in range(min(SHOWN, len(images)))]
    scores = tesseract_scores(tesseract_sets, ignore_space=True)
    if scores is None:
        raise SystemExit("tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-kor")
    table = {name: {"accuracy": s["accuracy"], "1-NED": s["one_minus_ned"]} for name, s in scores.items()}
    write_json_atomic({"model": args.model, "judge": "tesseract --psm 7, spaces ignored", "results": table},
                      out / "results.json")
    save_image(out / "sheet.png", contact_sheet(sheet_rows))
    for name, row in table.items():
        print(f"{name:40s} exact {100 * row['accuracy']:5.1f}%   1-NED {100 * row['1-NED']:5.1f}%")
    return 0


def contact_sheet(rows: list[tuple[np.ndarray, ...]], height: int = 48, gap: int = 6) -> np.ndarray:
    """Each row: the crop, its strip, its reconstruction from codes, at one height, on white."""
    scaled = [[cv2.resize(im, (max(1, round(im.shape[1] * height / im.shape[0])), height)) for im in row]
              for row in rows]
    width = max(sum(im.shape[1] for im in row) + gap * (len(row) + 1) for row in scaled)
    sheet = np.full((len(scaled) * (height + gap) + gap, width, 3), 255, np.uint8)
    for r, row in enumerate(scaled):
        x, y = gap, gap + r * (height + gap)
        for im in row:
            sheet[y:y + height, x:x + im.shape[1]] = im
            x += im.shape[1] + gap
    return sheet


if __name__ == "__main__":
    sys.exit(main())
