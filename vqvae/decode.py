"""Token dataset -> images: every `visual_tokens` grid decoded by the VQ-VAE to a PNG.

    python -m vqvae.decode config/vqvae-demo.yaml outputs/vqvae/checkpoints/best.ckpt \\
        --tokens data/train/tokens.csv --output outputs/decoded

Writes `DIR/<img_path stem>_<row>.png` (the row number makes names collision-free) and `DIR/index.csv`
(row, img_path, text if present, image, rows, cols). Rows whose tokens cannot be decoded are listed in
`DIR/index.csv.bad.csv` and make the exit status 1. Tokens made by another VQ-VAE (sidecar fingerprint)
are refused unless --ignore-fingerprint.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from vqvae.plumbing.cli import DEVICE_HELP, resolve_device, run_cli
from vqvae.checkpoint import fingerprint, load_vqvae
from vqvae.plumbing.io import BadRowReport, report_path_for, save_image, write_csv_atomic
from vqvae.modeling import VQVAE
from vqvae.templates import tensor_array_to_image
from vqvae.tokens import TOKENS_COLUMN, check_same_vqvae, read_sidecar, sidecar_path, string_to_grid

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vqvae.decode", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="the VQ-VAE training config (YAML)")
    parser.add_argument("checkpoint", help="a checkpoint of that config (.ckpt) or a save_vqvae_dir folder")
    parser.add_argument("--tokens", required=True, help=f"token CSV with a `{TOKENS_COLUMN}` column")
    parser.add_argument("--output", required=True, help="folder for the PNGs and index.csv")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="decode only the first N rows")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--ignore-fingerprint", action="store_true",
                        help="decode even if the sidecar says another VQ-VAE made the tokens")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size} must be >= 1")
    return args


def safe_stem(img_path: str) -> str:
    """A file-name-safe stem of an img_path ("a/b c.png|d.png" -> "b_c"); "image" if nothing is left."""
    stem = Path(str(img_path).split("|")[0]).stem
    return re.sub(r"[^\w.-]+", "_", stem).strip("._")[:60] or "image"


@torch.inference_mode()
def decode_grids(model: VQVAE, grids: Sequence[np.ndarray], batch_size: int = 64,
                 device: str | torch.device = "cpu", progress: bool = False) -> list[np.ndarray]:
    """Code grids (rows, cols) int in [0, num_codes) -> RGB uint8 images (rows*f, cols*f, 3), input order.

    Grids are batched by shape. Raises ValueError (from VQVAE.decode) for ids outside the codebook.
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for position, grid in enumerate(grids):
        groups[tuple(np.shape(grid))].append(position)
    images: list[np.ndarray | None] = [None] * len(grids)
    bar = tqdm(total=len(grids), desc="decoding", unit="img", disable=not progress)
    for positions in groups.values():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start:start + batch_size]
            code_ids = torch.from_numpy(np.stack([np.asarray(grids[p], dtype=np.int64) for p in chunk]))
            decoded = model.decode(code_ids.to(device)).float().cpu().numpy()
            for p, array in zip(chunk, decoded):
                images[p] = tensor_array_to_image(array)
            bar.update(len(chunk))
    bar.close()
    return images  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: returns the exit status (0 ok, 1 some rows failed, 2 a usage/input error)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Decode as `args` say; raises FileNotFoundError/ValueError on bad input, returns the exit status."""
    device = resolve_device(args.device)
    model, _ = load_vqvae(args.config, args.checkpoint, map_location=device)
    tokens_path = Path(args.tokens)
    if not tokens_path.is_file():
        raise FileNotFoundError(f"token CSV {str(tokens_path)!r} does not exist; "
                                "make one with `python -m vqvae.encode`")
    if sidecar_path(tokens_path).is_file():
        if not args.ignore_fingerprint:
            check_same_vqvae(fingerprint(model), read_sidecar(tokens_path), str(tokens_path))
    else:
        log.warning("%s has no sidecar; cannot check that %s made these tokens", tokens_path, args.checkpoint)
    try:
        frame = pd.read_csv(tokens_path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{tokens_path} is empty; expected a header with `{TOKENS_COLUMN}`") from None
    if TOKENS_COLUMN not in frame.columns:
        raise ValueError(f"{tokens_path} has no `{TOKENS_COLUMN}` column (found {list(frame.columns)}); "
                         f"is it a token CSV from `python -m vqvae.encode`?")
    if args.limit is not None:
        frame = frame.iloc[:args.limit]
    img_paths = frame["img_path"].tolist() if "img_path" in frame.columns else [""] * len(frame)

    report = BadRowReport()
    rows, grids = [], []
    for row, text in enumerate(frame[TOKENS_COLUMN]):
        try:
            grid = string_to_grid(text)
            if grid.min() < 0 or grid.max() >= model.num_codes:
                raise ValueError(f"code ids span [{grid.min()}, {grid.max()}] but the codebook has "
                                 f"[0, {model.num_codes})")
        except ValueError as error:
            report.add(row, img_paths[row], f"row {row}: {error}")
            continue
        rows.append(row)
        grids.append(grid)
    images = decode_grids(model, grids, args.batch_size, device, progress=not args.no_progress)

    output = Path(args.output)
    index = []
    for row, grid, image in tqdm(list(zip(rows, grids, images)), desc="writing PNGs", unit="img",
                                 disable=args.no_progress):
        name = f"{safe_stem(img_paths[row])}_{row:06d}.png"
        save_image(output / name, image)
        entry = {"row": row, "img_path": img_paths[row], "image": name, "rows": grid.shape[0], "cols": grid.shape[1]}
        if "text" in frame.columns:
            entry["text"] = frame["text"].iat[row]
        index.append(entry)
    columns = ["row", "img_path", *(["text"] if "text" in frame.columns else []), "image", "rows", "cols"]
    index_path = output / "index.csv"
    write_csv_atomic(pd.DataFrame(index, columns=columns), index_path)
    bad_path = report.write(report_path_for(index_path))
    print(f"wrote {len(index)} PNGs and {index_path}")
    if len(report):
        print(f"{len(report)} row(s) could not be decoded; see {bad_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
