"""Measure a trained VQ-VAE on a labelled image set: reconstruction PSNR, codebook usage, encode speed.

    python -m scripts.bench_vqvae CONFIG CHECKPOINT --dataset CSV [--limit N] [--json FILE]

- PSNR (dB) is computed over each image's content region only (its template box minus the padding), on
  pixels in [0, 255], then averaged over images.
- Codebook usage is the share of the K codes that occur at least once over the whole set, and the
  perplexity of the aggregated code histogram (K means perfectly uniform use).
- Encode throughput is `vqvae.encoding.encode_paths` end to end (file reading, resizing, batching by
  template, encoder), in images per second.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from vqvae.checkpoint import load_vqvae
from vqvae.encoding import encode_paths
from vqvae.plumbing.io import load_image, read_labelled_csv, write_json_atomic
from vqvae.modeling import histogram_perplexity
from vqvae.templates import choose_template, content_size, fit_to_template, strip_frame, tensor_array_to_image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


@torch.inference_mode()
def measure(model, paths: list[str], max_length: int, batch_size: int = 64, num_workers: int = 2) -> dict:
    """PSNR, codebook usage/perplexity and encode images/s of `model` over `paths`."""
    start = time.perf_counter()
    grids, report = encode_paths(model, paths, max_length, batch_size=batch_size, num_workers=num_workers)
    encode_seconds = time.perf_counter() - start
    ok = [(p, g) for p, g in zip(paths, grids) if g is not None]
    counts = torch.zeros(model.num_codes, dtype=torch.long)
    for _, grid in ok:
        counts += torch.bincount(torch.from_numpy(grid).flatten(), minlength=model.num_codes)

    psnrs = []
    by_shape: dict[tuple, list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]] = {}
    for path, grid in ok:
        image = strip_frame(load_image(path))  # as encoding cut it
        template = choose_template(image.shape[1], image.shape[0], max_length, model.line_codes)
        by_shape.setdefault(grid.shape, []).append(
            (fit_to_template(image, template, model.downsample), grid,
             content_size(image.shape[1], image.shape[0], template, model.downsample)))
    for items in tqdm(by_shape.values(), desc="decoding for PSNR", unit="shape"):
        for chunk_start in range(0, len(items), batch_size):
            chunk = items[chunk_start:chunk_start + batch_size]
            code_ids = torch.from_numpy(np.stack([grid for _, grid, _ in chunk]))
            recon = model.decode(code_ids).float().numpy()
            for (canvas, _, (h, w)), rec in zip(chunk, recon):
                psnrs.append(psnr(canvas[:h, :w], tensor_array_to_image(rec)[:h, :w]))
    return {
        "num_images": len(ok),
        "num_failed": len(report),
        "psnr_db": round(float(np.mean(psnrs)), 2) if psnrs else None,
        "codebook_usage": round(float((counts > 0).float().mean()), 4),
        "codebook_perplexity": round(float(histogram_perplexity(counts)), 1),
        "num_codes": model.num_codes,
        "encode_images_per_s": round(len(paths) / encode_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", required=True, help="labelled CSV (img_path,text)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N rows only")
    parser.add_argument("--max-length", type=int, default=None, help="default: the config's data.max_length")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    model, cfg = load_vqvae(args.config, args.checkpoint)
    frame = read_labelled_csv(args.dataset)
    paths = list(frame["abs_path"])[: args.limit]
    result = measure(model, paths, args.max_length or cfg.data.max_length, args.batch_size, args.num_workers)
    result["dataset"] = args.dataset
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        write_json_atomic(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
