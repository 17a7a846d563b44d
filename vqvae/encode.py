"""Labelled CSV -> token dataset: every image's VQ-VAE code grid as a `visual_tokens` column (DESIGN §1).

    python -m vqvae.encode config/vqvae-demo.yaml outputs/vqvae/checkpoints/best.ckpt \\
        --dataset data/train/labels.csv --output data/train/tokens.csv
    python -m vqvae.encode CONFIG CKPT --dataset CSV --output CSV --repeats 4 --augment --context-pairs 1000

The output keeps every input column and row order; images that cannot be read are kept out of it and
listed in `<output>.bad.csv` (exit status 1 unless --skip-bad). A sidecar `<output>.json` records the
VQ-VAE fingerprint, codebook size, downsampling, max_length, the command and the counts.

Several processes (`torchrun --nproc-per-node N -m vqvae.encode ...`) split the batches and rank 0 writes
the same CSV one process would.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vqvae.plumbing.cli import DEVICE_HELP, resolve_device, run_cli
from vqvae.checkpoint import fingerprint, load_vqvae
from vqvae.data import augment_image
from vqvae.encoding import default_num_workers, encode_images, encode_paths
from vqvae.plumbing.io import (BadRowReport, ImageReadError, image_header_size, load_image, read_labelled_csv,
                      report_path_for, write_csv_atomic)
from vqvae.templates import choose_template
from vqvae.tokens import TOKENS_COLUMN, grid_to_string, write_sidecar

log = logging.getLogger(__name__)

CONTEXT_PAIR = "context_pair"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vqvae.encode", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="the VQ-VAE training config (YAML), e.g. its run_dir/config.yaml")
    parser.add_argument("checkpoint", help="a checkpoint of that config, e.g. run_dir/checkpoints/best.ckpt")
    parser.add_argument("--dataset", required=True, help="labelled CSV with img_path,text (paths relative to it)")
    parser.add_argument("--output", required=True, help="token CSV to write (sidecar: OUTPUT.json)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens per image incl. row tokens (default: the config's data.max_length)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="write N augmented encodings per image, with a `repeat` column 0..N-1 (needs --augment)")
    parser.add_argument("--augment", action="store_true",
                        help="random scale/shift/colour/blur/noise, seeded per (seed, row, repeat)")
    parser.add_argument("--context-pairs", type=int, default=0,
                        help="add N rows of two random horizontal crops side by side, labels joined by a space")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=None,
                        help="processes that load images (and on CPU also encode them, one thread each); "
                             "0: all in the main process; default: usable CPU cores (max 8) on CPU, 4 on GPU")
    parser.add_argument("--seed", type=int, default=0, help="seeds augmentation and context-pair choice")
    parser.add_argument("--skip-bad", action="store_true",
                        help="exit 0 even if some images failed (they are still reported in OUTPUT.bad.csv)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be >= 1")
    if args.repeats is not None and args.repeats > 1 and not args.augment:
        parser.error(f"--repeats {args.repeats} without --augment would write {args.repeats} identical "
                     f"encodings of each image; add --augment")
    if args.context_pairs < 0:
        parser.error(f"--context-pairs {args.context_pairs} must be >= 0")
    if args.batch_size < 1 or (args.num_workers is not None and args.num_workers < 0):
        parser.error(f"--batch-size {args.batch_size} must be >= 1 and --num-workers {args.num_workers} >= 0")
    return args


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two RGB uint8 crops -> one (H, W1' + gap + W2', 3): both resized to the smaller height, joined
    with a gap of a quarter of the height filled with the mean colour of their borders."""
    import cv2

    height = min(left.shape[0], right.shape[0])
    resized = [cv2.resize(im, (max(2, round(im.shape[1] * height / im.shape[0])), height),
                          interpolation=cv2.INTER_AREA) if im.shape[0] != height else im for im in (left, right)]
    borders = np.concatenate([np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]) for im in resized])
    gap = np.empty((height, max(2, height // 4), 3), dtype=np.uint8)
    gap[:] = borders.mean(axis=0).round().astype(np.uint8)
    return np.concatenate([resized[0], gap, resized[1]], axis=1)


def make_context_pairs(frame: pd.DataFrame, usable: list[int], num_pairs: int, seed: int, augment: bool,
                       report: BadRowReport) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
    """Choose `num_pairs` pairs of distinct horizontal (w >= h) usable rows with a seeded generator and
    build their side-by-side images. Returns (pairs of row numbers, RGB images)."""
    rng = np.random.default_rng([seed, 1])  # stream 1: kept apart from the augmentation streams
    cache: dict[int, np.ndarray] = {}

    def image(row: int) -> np.ndarray:
        if row not in cache:
            cache[row] = load_image(frame["abs_path"].iat[row])
        return cache[row]

    horizontal = []
    for row in usable:  # rows whose header was read already, so within the pixel limit
        width, height = image_header_size(frame["abs_path"].iat[row])
        if width >= height:
            horizontal.append(row)
    if len(horizontal) < 2:
        raise ValueError(f"--context-pairs {num_pairs} needs at least 2 readable horizontal images, found "
                         f"{len(horizontal)}; drop --context-pairs for this dataset")
    pairs, images = [], []
    for number in range(num_pairs):
        first, second = rng.choice(len(horizontal), size=2, replace=False)
        rows = (horizontal[first], horizontal[second])
        try:
            joined = side_by_side(image(rows[0]), image(rows[1]))
        except ImageReadError as error:
            report.add(f"pair{number}", "|".join(frame["img_path"].iat[r] for r in rows), str(error))
            continue
        if augment:
            joined = augment_image(joined, np.random.default_rng([seed, 2, number]))
        pairs.append(rows)
        images.append(joined)
        if len(cache) > 4096:  # bounded memory on big datasets; pairs rarely share images anyway
            cache.clear()
    return pairs, images


def _distributed_setup() -> tuple[int, int]:
    """(world_size, rank) from torchrun's environment, initialising a gloo group when world_size > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return world, rank


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: returns the exit status (0 ok, 1 some rows failed, 2 a usage/input error)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Encode as `args` say; raises FileNotFoundError/ValueError on bad input, returns the exit status."""
    started = time.perf_counter()
    world, rank = _distributed_setup()
    device = resolve_device(args.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    model, cfg = load_vqvae(args.config, args.checkpoint, map_location=device)
    max_length = args.max_length or int(cfg.data.max_length)
    choose_template(1, 1, max_length, model.line_codes)  # a bad --max-length fails here, before any work
    frame = read_labelled_csv(args.dataset)
    num_repeats = args.repeats or 1
    progress = not args.no_progress and rank == 0

    num_workers = args.num_workers
    if num_workers is None and world > 1:  # the ranks share the machine's cores
        num_workers = max(1, default_num_workers(device) // world)
    encode_started = time.perf_counter()
    grids_by_repeat: list[list[np.ndarray | None]] = []
    report = BadRowReport()
    for repeat in range(num_repeats):
        grids, repeat_report = encode_paths(
            model, list(frame["abs_path"]), max_length, batch_size=args.batch_size, num_workers=num_workers,
            device=device, augment=args.augment, seed=args.seed, progress=progress, repeat=repeat,
            num_replicas=world, rank=rank)
        if world > 1:  # rank 0 gathers every shard; each row was encoded by exactly one rank
            gathered: list | None = [None] * world if rank == 0 else None
            torch.distributed.gather_object((grids, repeat_report.rows), gathered, dst=0)
            if rank != 0:
                continue
            grids = [next((part[0][i] for part in gathered if part[0][i] is not None), None)
                     for i in range(len(grids))]
            repeat_report = BadRowReport(sorted((row for part in gathered for row in part[1]),
                                                key=lambda row: int(row["row"])))
        grids_by_repeat.append(grids)
        if repeat == 0:
            report.rows.extend(repeat_report.rows)
        else:  # a file failing only in a later repeat (flaky disk) is still reported, once
            seen = {int(row["row"]) for row in report.rows}
            report.rows.extend(row for row in repeat_report.rows if int(row["row"]) not in seen)
    encode_seconds = time.perf_counter() - encode_started
    if rank != 0:
        torch.distributed.barrier()  # wait until rank 0 has written, so torchrun ends when the files exist
        torch.distributed.destroy_process_group()
        return 0

    failed = {int(row["row"]) for row in report.rows}
    for grids in grids_by_repeat:  # a row is written only if every repeat encoded it
        failed |= {i for i, grid in enumerate(grids) if grid is None}
    for row in sorted(failed - {int(r["row"]) for r in report.rows}):
        report.add(row, frame["img_path"].iat[row], "no grid came back for this row")
    report.rows.sort(key=lambda r: int(r["row"]))
    for entry in report.rows:  # the report names img_path as the CSV gives it; the reason has the full path
        entry["img_path"] = frame["img_path"].iat[int(entry["row"])]
    usable = [i for i in range(len(frame)) if i not in failed]

    columns = [c for c in frame.columns if c != "abs_path"]
    parts = []
    for repeat, grids in enumerate(grids_by_repeat):
        part = frame.iloc[usable][columns].copy()
        part[TOKENS_COLUMN] = [grid_to_string(grids[i]) for i in usable]
        if args.repeats is not None:
            part["repeat"] = repeat
        part["_order"] = np.arange(len(usable)) * num_repeats + repeat  # row-major: an image's repeats together
        parts.append(part)
    output = pd.concat(parts).sort_values("_order", kind="stable").drop(columns="_order")

    num_pairs = failed_pairs = 0
    if args.context_pairs:
        pairs, images = make_context_pairs(frame, usable, args.context_pairs, args.seed, args.augment, report)
        pair_grids = encode_images(model, images, max_length, batch_size=args.batch_size, device=device)
        pair_rows = pd.DataFrame({c: [""] * len(pairs) for c in columns})
        pair_rows["img_path"] = ["|".join(frame["img_path"].iat[r] for r in pair) for pair in pairs]
        pair_rows["text"] = [" ".join(frame["text"].iat[r] for r in pair) for pair in pairs]
        pair_rows[TOKENS_COLUMN] = [grid_to_string(grid) for grid in pair_grids]
        if args.repeats is not None:
            pair_rows["repeat"] = 0
        if "source" not in output.columns:
            output["source"] = ""
        pair_rows["source"] = CONTEXT_PAIR
        output = pd.concat([output, pair_rows], ignore_index=True)
        num_pairs, failed_pairs = len(pairs), args.context_pairs - len(pairs)

    write_csv_atomic(output, args.output)
    bad_path = report.write(report_path_for(args.output))
    counts = {"input_rows": len(frame), "encoded_images": len(usable), "failed_rows": len(failed),
              "failed_context_pairs": failed_pairs,
              "repeats": num_repeats, "context_pairs": num_pairs, "output_rows": len(output),
              "encode_seconds": round(encode_seconds, 2)}
    write_sidecar(args.output, {
        "fingerprint": fingerprint(model), "num_codes": model.num_codes, "downsample": model.downsample,
        "line_codes": model.line_codes, "max_length": max_length,
        "command": shlex.join([Path(sys.executable).name, "-m", "vqvae.encode",
                               *(sys.argv[1:] if argv is None else argv)]),
        "config": str(args.config), "checkpoint": str(args.checkpoint), "dataset": str(args.dataset),
        "augment": args.augment, "seed": args.seed, "counts": counts})
    seconds = time.perf_counter() - started
    print(f"wrote {len(output)} rows to {args.output} ({len(usable)} of {len(frame)} images encoded"
          f"{f' x {num_repeats} repeats' if num_repeats > 1 else ''}"
          f"{f', {num_pairs} context pairs' if num_pairs else ''}"
          f") in {seconds:.1f}s; encoding {len(usable) * num_repeats / max(encode_seconds, 1e-9):.0f} images/s")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if failed or failed_pairs:
        print(f"{len(failed)} row(s) and {failed_pairs} context pair(s) failed and are not in the output; "
              f"see {bad_path}", file=sys.stderr)
        return 0 if args.skip_bad else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
