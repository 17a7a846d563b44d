"""Moving a trained GPT onto another VQ-VAE's codes by translation rather than from nothing.

Two VQ-VAEs with the same downsampling cut a crop into the same grid (DESIGN §2): cell (r, c) of one covers
the pixels cell (r, c) of the other does. Encoding the same crops with both pairs each new code with the old
codes found where it is; a new code's embedding then starts as the mean of those old codes' embeddings, so a
model that read (or drew) the old codes meets inputs it already knows the meaning of, and its tied output
projection scores each new code by the old codes it stands for. Codes never seen start as Hugging Face
initialises them. Torch, numpy and transformers only (no Lightning).

On the shipped drawing model (1 024 codes) moved onto the recognizer's VQ-VAE (4 096 codes) by the pairs of 1 000
crops, the recognizer read back 46.9% of its best-of-8 drawings of 64 held-out prompts before any training; with
the code embeddings drawn anew, 0.0% (BENCHMARKS.md).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from transformers import GPT2LMHeadModel

from gpt.modeling import with_new_codebook
from gpt.vocab import Vocab
from vqvae.encoding import encode_paths


def colocated_codes(old_grids: Sequence[np.ndarray | None], new_grids: Sequence[np.ndarray | None]) -> np.ndarray:
    """(n, 2) int64 pairs (new code, old code), one per grid cell of every crop both VQ-VAEs encoded to the same
    shape (a crop one of them failed, or a shape that differs, adds nothing)."""
    pairs = [np.stack([new.ravel(), old.ravel()], axis=1) for old, new in zip(old_grids, new_grids)
             if old is not None and new is not None and old.shape == new.shape]
    return np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), dtype=np.int64)


def translated_embeddings(old_code_embeddings: Tensor, pairs: np.ndarray, num_new_codes: int) -> tuple[Tensor, Tensor]:
    """Each new code's embedding as the mean of the old code embeddings (K_old, d) co-located with it, weighted by
    how often; returns (K_new, d) embeddings and the (K_new,) bool mask of new codes that occurred (rows of the
    others are zero)."""
    if len(pairs) and (pairs[:, 0].max() >= num_new_codes or pairs[:, 1].max() >= len(old_code_embeddings)):
        raise ValueError(f"a code pair lies outside the codebooks ({num_new_codes} new, {len(old_code_embeddings)} "
                         f"old codes): the grids come from other VQ-VAEs")
    counts = torch.zeros(num_new_codes, len(old_code_embeddings), dtype=torch.float32)
    index = torch.from_numpy(pairs)
    counts.index_put_((index[:, 0], index[:, 1]), torch.ones(len(pairs)), accumulate=True)
    seen = counts.sum(1) > 0
    weights = counts / counts.sum(1, keepdim=True).clamp(min=1)
    return (weights @ old_code_embeddings.float()).to(old_code_embeddings.dtype), seen


def translate_codebook(model: GPT2LMHeadModel, old: Vocab, old_vqvae: torch.nn.Module, old_max_length: int,
                       paths: Sequence[str], new_grids: Sequence[np.ndarray | None],
                       num_new_codes: int) -> tuple[GPT2LMHeadModel, Vocab, int]:
    """`model` (trained on the codes of `old_vqvae`) moved onto another VQ-VAE's `num_new_codes` codes: the crops
    at `paths` encoded by the old VQ-VAE are paired cell by cell with `new_grids`, the same crops' grids of the new
    one. Returns the model, its new Vocab and how many new codes were seen (the others start at random).
    ValueError when no crop has the same grid shape under both (other downsampling: nothing lines up)."""
    old_grids, _ = encode_paths(old_vqvae, list(paths), old_max_length, num_workers=0, progress=False)
    pairs = colocated_codes(old_grids, new_grids)
    if not len(pairs):
        raise ValueError(f"none of the {len(paths)} crops has the same grid under both VQ-VAEs (downsampling "
                         f"{getattr(old_vqvae, 'downsample', '?')} for the old one): their codes cannot be paired")
    new = Vocab(old.chars, num_new_codes)
    weights = model.get_input_embeddings().weight.detach()
    codes, seen = translated_embeddings(weights[old.code_offset:old.code_offset + old.num_codes], pairs, num_new_codes)
    model = with_new_codebook(model, old, new)
    rows = new.code_offset + torch.nonzero(seen).squeeze(1)
    model.get_input_embeddings().weight.data[rows] = codes[seen]
    return model, new, int(seen.sum())
