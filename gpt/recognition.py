"""Recognition with an export: image parts (token ids or code grids) in, text and confidence out.

The library behind `gpt.predict` (token CSVs), `gpt.reading` (image files and arrays) and the web page:
precision choice (bf16 autocast where the hardware has it), batching, and the voting of augmented copies.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from gpt.decoding import recognize
from gpt.pretrained import Pretrained
from gpt.vocab import Vocab
from vqvae.plumbing.hardware import cpu_has_native_bf16
from vqvae.plumbing.io import BadRowReport, read_labelled_csv
from vqvae.tokens import TOKENS_COLUMN, check_same_vqvae, read_sidecar, string_to_grid


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> bfloat16 on CUDA and on CPUs with native bf16, float32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bfloat16"
    return "float32"


def image_ids_from_grids(vocab: Vocab, grids: Sequence[np.ndarray], max_visual_length: int) -> torch.Tensor:
    """Code grids (rows, cols) -> image parts (N, max_visual_length) int64, laid out by the Vocab (grids of
    one shape at once). Raises GridTooLong naming the first row whose grid does not fit."""
    if not grids:
        return torch.empty(0, max_visual_length, dtype=torch.int64)
    # The Vocab lays out whole sequences; an empty label with a 2-id text part is `<s></s>`, cut off here.
    ids, _ = vocab.sequences(grids, [""] * len(grids), "image_first", max_visual_length, 2)
    return torch.from_numpy(ids[:, :max_visual_length]).long()


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast context for `precision` "bfloat16" (or "auto" resolving to it), a no-op for float32."""
    if resolve_precision(precision, device) == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def recognize_ids(pretrained: Pretrained, image_ids: torch.Tensor, batch_size: int = 64, num_beams: int = 1,
                  precision: str = "auto", progress: bool = True,
                  desc: str = "recognizing") -> list[tuple[str, float]]:
    """Read image parts (N, max_visual_length) int64 -> [(text, confidence in (0, 1])] in input order.

    Rows are decoded in batches of at most `batch_size` rows of one image-part length each, so no batch holds
    <vpad> to attend past (in the shipped model's held-out crops, one length is one grid shape): on one thread, as
    gpt.reading's loader workers decode, this read the same texts in 0.8-0.9 of the time of aspect-sorted batches of
    64, small batches included, and as fast on two (BENCHMARKS.md, session 40). Results are put back in input
    order. `precision`: "auto" (bf16 autocast where the hardware has native bf16), "float32" or "bfloat16".
    """
    pretrained.require_recognition()
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    num_rows = image_ids.shape[0]
    results: list[tuple[str, float]] = [("", 0.0)] * num_rows
    model, vocab = pretrained.model, pretrained.vocab
    lengths = (image_ids != vocab.vpad_id).sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    _, counts = torch.unique_consecutive(lengths[order], return_counts=True)
    batches = [chunk for group in torch.split(order, counts.tolist())
               for chunk in torch.split(group, batch_size)]
    bar = tqdm(total=num_rows, desc=desc, unit="img", disable=not progress, leave=False)
    with torch.inference_mode(), autocast_for(pretrained.device, precision):
        for chunk in batches:
            chunk = chunk.tolist()
            decoded = recognize(model, vocab, image_ids[chunk], pretrained.max_text_length, use_cache=True,
                                num_beams=num_beams)
            for index, result in zip(chunk, decoded):
                results[index] = result
            bar.update(len(chunk))
    bar.close()
    return results


def recognize_grids(pretrained: Pretrained, grids: Sequence[np.ndarray], batch_size: int = 64, num_beams: int = 1,
                    precision: str = "auto", progress: bool = True,
                    desc: str = "recognizing") -> list[tuple[str, float]]:
    """Read code grids (rows, cols) int64 -> [(text, confidence)] in input order (see recognize_ids)."""
    image_ids = image_ids_from_grids(pretrained.vocab, grids, pretrained.max_visual_length)
    return recognize_ids(pretrained, image_ids, batch_size, num_beams, precision, progress, desc)


def merge_augmented(frame: pd.DataFrame, key: str = "img_path") -> pd.DataFrame:
    """One row per `key` (first-appearance order): the prediction `text` with the largest summed
    `confidence` over the copies wins (ties: the higher single confidence, then the first seen).

    Other columns come from the image's first copy; `confidence` becomes the winner's summed confidence
    divided by the number of copies (in (0, 1]), `votes` the copies that predicted it, `copies` their number.
    """
    for column in (key, "text", "confidence"):
        if column not in frame.columns:
            raise ValueError(f"merge needs a {column!r} column; found {list(frame.columns)}")
    frame = frame.reset_index(drop=True)
    frame["_first"] = np.arange(len(frame))
    copies = frame.groupby(key, sort=False).size().rename("copies")
    tally = (frame.groupby([key, "text"], sort=False)
             .agg(score=("confidence", "sum"), best=("confidence", "max"), votes=("confidence", "size"),
                  first=("_first", "min"))
             .reset_index())
    tally = tally.sort_values([key, "score", "best", "first"], ascending=[True, False, False, True], kind="stable")
    winners = tally.drop_duplicates(key).set_index(key)
    merged = frame.drop_duplicates(key).drop(columns=["text", "confidence", "_first"]).set_index(key, drop=False)
    merged["text"] = winners.loc[merged.index, "text"].to_numpy()
    merged["copies"] = copies.loc[merged.index].to_numpy()
    merged["votes"] = winners.loc[merged.index, "votes"].to_numpy()
    merged["confidence"] = winners.loc[merged.index, "score"].to_numpy() / merged["copies"].to_numpy()
    return merged.reset_index(drop=True)


def parse_grids(frame: pd.DataFrame, max_visual_length: int, num_codes: int,
                report: BadRowReport) -> list[Optional[np.ndarray]]:
    """`visual_tokens` strings -> grids; a row that does not parse, holds a code outside [0, num_codes) or
    does not fit `max_visual_length` is None and listed in `report` (row = position in `frame`)."""
    grids: list[Optional[np.ndarray]] = []
    for row, (path, tokens) in enumerate(zip(frame["img_path"], frame[TOKENS_COLUMN])):
        try:
            grid = string_to_grid(tokens)
        except ValueError as error:
            report.add(row, path, str(error))
            grids.append(None)
            continue
        rows, cols = grid.shape
        if grid.min() < 0 or grid.max() >= num_codes:
            report.add(row, path, f"codes span [{grid.min()}, {grid.max()}] but the codebook has {num_codes} "
                                  f"codes")
            grids.append(None)
            continue
        if rows * (cols + 1) > max_visual_length:
            report.add(row, path, f"a {rows}x{cols} code grid needs {rows * (cols + 1)} tokens but the model's "
                                  f"max_visual_length is {max_visual_length}")
            grids.append(None)
            continue
        grids.append(grid)
    return grids


def predict_csv(pretrained: Pretrained, tokens_csv: str, batch_size: int = 64, num_beams: int = 1,
                merge: bool = False, skip_bad: bool = False, precision: str = "auto",
                progress: bool = True) -> tuple[pd.DataFrame, BadRowReport]:
    """Predict every row of a token CSV. Returns (output frame, report of skipped rows).

    Refuses a CSV from another VQ-VAE (ValueError naming both fingerprints). A row whose grid does not parse
    or fit is an error (ValueError naming it) unless `skip_bad`, which leaves it out and reports it.
    """
    check_same_vqvae(pretrained.fingerprint, read_sidecar(tokens_csv), f"token CSV {tokens_csv!r}")
    frame = read_labelled_csv(tokens_csv, required=("img_path", TOKENS_COLUMN)).drop(columns="abs_path")
    report = BadRowReport()
    grids = parse_grids(frame, pretrained.max_visual_length, pretrained.vocab.num_codes, report)
    if len(report) and not skip_bad:
        first = report.rows[0]
        raise ValueError(f"{len(report)} row(s) of {tokens_csv} cannot be read, e.g. row {first['row']} "
                         f"({first['img_path']}): {first['reason']}. Pass --skip-bad to skip and list them")
    keep = [i for i, grid in enumerate(grids) if grid is not None]
    results = recognize_grids(pretrained, [grids[i] for i in keep], batch_size, num_beams, precision, progress)
    output = frame.iloc[keep].reset_index(drop=True)
    if "text" in output.columns:
        output = output.rename(columns={"text": "label"})
    output["text"] = [text for text, _ in results]
    output["confidence"] = [confidence for _, confidence in results]
    if merge:
        output = merge_augmented(output)
    return output, report
