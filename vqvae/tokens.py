"""The token-dataset format (DESIGN §1): a code grid as a string, and the JSON sidecar beside a CSV.

A grid's rows are joined by a tab and the codes in a row by single spaces: "12 7 9\t4 4 1" is 2x3.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from vqvae.plumbing.io import write_json_atomic

TOKENS_COLUMN = "visual_tokens"


def grid_to_string(grid: np.ndarray) -> str:
    """(rows, cols) integer grid -> "c c c\\tc c c"."""
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"a code grid must be a non-empty 2-D array, got shape {grid.shape}")
    return "\t".join(" ".join(map(str, row)) for row in grid.tolist())


def string_to_grid(text: str) -> np.ndarray:
    """Inverse of grid_to_string; raises ValueError on ragged rows or non-integer codes."""
    rows = [row.split(" ") for row in text.strip("\n").split("\t")]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"ragged code grid: row lengths {sorted(widths)} in {text[:60]!r}...")
    try:
        return np.array(rows, dtype=np.int32)  # int32: gpt.train holds hundreds of thousands of these at once
    except ValueError:
        raise ValueError(f"code grid {text[:60]!r} holds a value that is not an integer") from None


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    return Path(str(csv_path) + ".json")


def write_sidecar(csv_path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Record what produced a token CSV: fingerprint, num_codes, downsample, max_length, command."""
    write_json_atomic(meta, sidecar_path(csv_path))


def read_sidecar(csv_path: str | os.PathLike) -> dict[str, Any]:
    path = sidecar_path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"token CSV {str(csv_path)!r} has no sidecar {str(path)!r}; it records which "
                                f"VQ-VAE made the tokens. Re-create the CSV with `python -m vqvae.encode`")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_same_vqvae(expected_fingerprint: str, found: dict[str, Any], where: str) -> None:
    """Refuse tokens made by another VQ-VAE, naming both."""
    got = found.get("fingerprint")
    if got != expected_fingerprint:
        raise ValueError(f"{where} was encoded by VQ-VAE {got!r}, but this model was trained with VQ-VAE "
                         f"{expected_fingerprint!r}; re-encode it with the matching VQ-VAE checkpoint")
