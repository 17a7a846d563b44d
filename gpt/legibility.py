"""Legibility of generated images: how well a recognition model (and Tesseract, when installed) reads the
prompt back.

- `recognizer_image_ids`: generated grids (or, for a recognizer with another VQ-VAE, the decoded images
  re-encoded by its VQ-VAE) as the recognizer's image parts.
- `read_back`: greedy recognition of image parts (text + confidence, as `gpt.decoding` defines it).
- `read_back_and_score`: the same readings and log p(prompt | image) under a recognition model, from one pass
  over each image part; the reranking's readings and score.
- `tesseract_status` / `tesseract_read`: optional second reader; skipped with a reason when `tesseract` is
  not on PATH.
- `legibility_summary`: the numbers `python -m gpt.generate ... --evaluate` writes to legibility.json.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from gpt.decoding import read_and_score, recognize
from gpt.metrics import text_metrics
from gpt.vocab import GridTooLong, Vocab

log = logging.getLogger(__name__)


def recognizer_image_ids(vocab: Vocab, max_visual_length: int, grids: Sequence[np.ndarray],
                         images: Sequence[np.ndarray], same_vqvae: bool,
                         vqvae: Optional[torch.nn.Module] = None, max_length: Optional[int] = None,
                         batch_size: int = 64) -> Tensor:
    """(B, max_visual_length) int64 image parts for a recognizer.

    With `same_vqvae` (the generator's and the recognizer's VQ-VAE fingerprints are equal) a grid that fits
    is laid out as it is; otherwise (or when it does not fit) the RGB uint8 image (H, W, 3) is re-encoded by
    the recognizer's `vqvae` at its template budget `max_length`, exactly as `gpt.read` reads a file.
    """
    ids: list[Optional[list[int]]] = [None] * len(grids)
    to_encode = []
    for index, grid in enumerate(grids):
        if same_vqvae:
            try:
                ids[index] = vocab.image_part(grid, max_visual_length)
                continue
            except GridTooLong:
                pass
        to_encode.append(index)
    if to_encode:
        if vqvae is None or max_length is None:
            raise ValueError("the recognizer's VQ-VAE and max_length are needed to re-encode generated images")
        from vqvae.encoding import encode_images

        encoded = encode_images(vqvae, [images[i] for i in to_encode], max_length, batch_size=batch_size)
        for index, grid in zip(to_encode, encoded):
            ids[index] = vocab.image_part(grid, max_visual_length)
    return torch.tensor(ids, dtype=torch.long).view(len(grids), max_visual_length)


def read_back_and_score(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, texts: Sequence[str],
                        max_text_length: int, batch_size: int = 64) -> tuple[list[tuple[str, float]], Tensor]:
    """`read_back` of B image parts (B, V) under an image-first model, and (B,) float32 log p(text | image
    part) of `texts`: the sum over each text's characters and `</s>` of log-probabilities taken over the tokens
    recognition may output (as in gpt.decoding). Both from one pass over each image part
    (`gpt.decoding.read_and_score`). A text the recognizer cannot spell (a character outside its charset, or
    longer than max_text_length - 2) scores -inf.
    """
    if image_ids.ndim != 2 or image_ids.shape[0] != len(texts):
        raise ValueError(f"image_ids must be (B, V) with B = {len(texts)} texts, got {tuple(image_ids.shape)}")
    text_ids = torch.full((len(texts), max_text_length), vocab.pad_id, dtype=torch.long)
    spellable = torch.ones(len(texts), dtype=torch.bool)
    for row, text in enumerate(texts):
        ids, unknown = vocab.encode_text(text)
        if unknown or len(ids) > max_text_length - 2:
            spellable[row] = False  # its score is set to -inf below; the row is run as the empty text
            text = ""
        text_ids[row] = torch.tensor(vocab.text_part(text, max_text_length))
    readings: list[tuple[str, float]] = []
    scores = []
    for start in range(0, len(texts), batch_size):
        read, score = read_and_score(model, vocab, image_ids[start:start + batch_size],
                                     text_ids[start:start + batch_size], max_text_length)
        readings += read
        scores.append(score)
    score = torch.cat(scores) if scores else torch.zeros(0)
    return readings, torch.where(spellable, score, torch.full_like(score, float("-inf")))


def read_back(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, max_text_length: int,
              batch_size: int = 64) -> list[tuple[str, float]]:
    """Greedy recognition of B image parts (B, V): [(text, confidence in (0, 1])], batched."""
    results: list[tuple[str, float]] = []
    for start in range(0, image_ids.shape[0], batch_size):
        results.extend(recognize(model, vocab, image_ids[start:start + batch_size], max_text_length))
    return results


def tesseract_status(language: str = "eng") -> tuple[bool, str]:
    """(available, reason): whether `tesseract` is on PATH and knows `language` (e.g. "eng", "kor+eng")."""
    binary = shutil.which("tesseract")
    if binary is None:
        return False, ("tesseract is not on PATH (scripts/install_tesseract.sh installs it with its Korean and English "
                       "models, as root where apt-get works, to get this number)")
    try:
        listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"tesseract --list-langs failed: {error}"
    known = set(listed.stdout.split()) | set(listed.stderr.split())
    missing = [lang for lang in language.split("+") if lang not in known]
    if missing:
        return False, (f"tesseract has no traineddata for {missing} (languages: {sorted(known)[:20]}); "
                       f"scripts/install_tesseract.sh installs kor, kor_vert and eng")
    return True, f"{binary} -l {language} --psm 7"


def tesseract_read(paths: Sequence[str], language: str = "eng", psm: int = 7) -> list[str]:
    """Tesseract's reading of each image file as one line (--psm 7; 5 reads a vertical block, with kor_vert);
    "" where it fails or the path is "" (a prompt with no decodable candidate)."""
    texts = []
    for path in paths:
        if not path:
            texts.append("")
            continue
        try:
            done = subprocess.run(["tesseract", str(path), "stdout", "-l", language, "--psm", str(psm)],
                                  capture_output=True, text=True, timeout=60)
            texts.append(" ".join(done.stdout.split()))
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("tesseract failed on %s: %s", path, error)
            texts.append("")
    return texts


def legibility_summary(prompts: Sequence[str], best_read_back: Sequence[str], best_scores: Sequence[float],
                       any_exact: Sequence[bool], num_candidates: int,
                       tesseract_texts: Optional[Sequence[str]] = None,
                       tesseract_reason: str = "") -> dict[str, Any]:
    """legibility.json: per prompt, the best candidate's read-back compared with the prompt.

    Returns {"num_prompts", "num_candidates", "recognizer": {"exact_rate": share of best candidates read
    back exactly, "one_minus_ned", "cer", "any_candidate_exact_rate", "mean_best_log_likelihood"},
    "tesseract": {"available": bool, "reason" or the same rates}}.
    """
    metrics = text_metrics(list(best_read_back), list(prompts))
    finite = [s for s in best_scores if np.isfinite(s)]
    summary: dict[str, Any] = {
        "num_prompts": len(prompts), "num_candidates": int(num_candidates),
        "recognizer": {"exact_rate": metrics["accuracy"], "one_minus_ned": metrics["one_minus_ned"],
                       "cer": metrics["cer"],
                       "any_candidate_exact_rate": float(np.mean(any_exact)) if len(any_exact) else float("nan"),
                       "mean_best_log_likelihood": float(np.mean(finite)) if finite else float("nan")}}
    if tesseract_texts is None:
        summary["tesseract"] = {"available": False, "reason": tesseract_reason}
    else:
        found = text_metrics(list(tesseract_texts), list(prompts))
        summary["tesseract"] = {"available": True, "command": tesseract_reason, "exact_rate": found["accuracy"],
                                "one_minus_ned": found["one_minus_ned"], "cer": found["cer"]}
    return summary
