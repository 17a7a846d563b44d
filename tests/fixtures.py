"""Shared test fixtures for text-to-image: tiny exports of both orders and token CSVs that match them.

Everything is random and tiny (the VQ-VAE and GPT sizes of tests/test_export.py): plumbing, not quality.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from gpt.export import write_export
from gpt.pretrained import load_pretrained
from tests.test_export import MAX_LENGTH, MAX_TEXT_LENGTH, TINY_VQVAE, build_export, build_parts
from vqvae.tokens import grid_to_string, write_sidecar

# Texts spelled with the characters of tests.test_export.TEXTS (the tiny exports' charset).
PROMPT_TEXTS = ["hello", "world", "abc", "한국어", "cab 12", "lo", "wor", "bad"]
# Grid shapes that fit MAX_LENGTH tokens with one <row> per row.
GRID_SHAPES = [(1, 6), (2, 5), (1, 10), (3, 4), (2, 7)]


def recognition_export(directory: Path, seed: int = 0) -> Path:
    """A random tiny image-first (recognition) export, as gpt.export writes it."""
    return build_export(directory, seed)


def text_to_image_export(directory: Path, seed: int = 0) -> Path:
    """A random tiny text-first export with the same VQ-VAE (same fingerprint) as `recognition_export(seed)`."""
    vqvae, task = build_parts(seed)
    return write_export(directory, task.model, task.vocab, "text_first", MAX_LENGTH, MAX_TEXT_LENGTH, vqvae,
                        TINY_VQVAE, MAX_LENGTH, {"train": ["train.csv"], "global_step": 0})


def labelled_crops(folder: Path, count: int = 3) -> Path:
    """`count` crops of a dark bar on light grey, each 10 px wider than the last, labelled "ab" in
    folder/labels.csv (img_path,text), which this returns."""
    rows = []
    for index in range(count):
        image = np.full((30, 90 + 10 * index, 3), 230, np.uint8)
        image[8:22, 6:70] = 20
        cv2.imwrite(str(folder / f"{index}.png"), image)
        rows.append({"img_path": f"{index}.png", "text": "ab"})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


def token_csv(path: Path, export_dir: Path, num_rows: int = 16, seed: int = 0,
              fingerprint: str | None = None, num_codes: int = TINY_VQVAE.num_codes) -> str:
    """A token CSV (img_path,text,visual_tokens + sidecar) of random grids for the export's VQ-VAE (or for the
    VQ-VAE named `fingerprint` with `num_codes` codes, to test refusals and new codebooks). Returns the path as a
    string."""
    rng = np.random.default_rng(seed)
    if fingerprint is None:
        fingerprint = load_pretrained(export_dir, load_tokenizer=False, load_vqvae=False).fingerprint
    shapes = [GRID_SHAPES[int(i)] for i in rng.integers(0, len(GRID_SHAPES), num_rows)]
    grids = [rng.integers(0, num_codes, shape) for shape in shapes]
    texts = [PROMPT_TEXTS[i % len(PROMPT_TEXTS)] for i in range(num_rows)]
    pd.DataFrame({"img_path": [f"img{i}.png" for i in range(num_rows)], "text": texts,
                  "visual_tokens": [grid_to_string(g) for g in grids]}).to_csv(path, index=False)
    write_sidecar(path, {"fingerprint": fingerprint, "num_codes": num_codes, "downsample": 8,
                         "max_length": MAX_LENGTH, "command": "test"})
    return str(path)
