"""Recognition metrics (DESIGN §5): accuracy, 1 - NED (ICDAR 2019) and CER.

Edit distances come from rapidfuzz (a maintained C++ library), computed for all pairs at once.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

def normalize_for_metrics(text: str, ignore_case: bool = False, ignore_space: bool = False) -> str:
    """NFC (never NFKD: it splits Hangul into jamo), then optionally casefold and drop all whitespace."""
    text = unicodedata.normalize("NFC", text)
    if ignore_case:
        text = text.casefold()
    if ignore_space:
        text = "".join(text.split())
    return text


def edit_distances(predictions: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Levenshtein distance of each (prediction, label) pair: (N,) int64."""
    if len(predictions) != len(labels):
        raise ValueError(f"got {len(predictions)} predictions for {len(labels)} labels; "
                         f"pass one prediction per label")
    if not predictions:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(process.cpdist(list(predictions), list(labels), scorer=Levenshtein.distance,
                                     workers=1), dtype=np.int64)


def text_metrics(predictions: Sequence[str], labels: Sequence[str], ignore_case: bool = False,
                 ignore_space: bool = False) -> dict:
    """Compare predictions with ground-truth labels.

    Returns {"num_samples": N, "accuracy": exact-match share in [0, 1], "one_minus_ned": mean of
    1 - ED / max(len(gt), len(pred)) in [0, 1] (a pair of empty strings scores 1), "cer": total edits /
    total ground-truth characters (>= 0, may exceed 1; 0 when there are no label characters and no edits,
    inf when there are edits but no label characters)}. With no samples the rates are NaN.
    Both sides are NFC-normalized first; `ignore_case` / `ignore_space` apply to both.
    """
    preds = [normalize_for_metrics(p, ignore_case, ignore_space) for p in predictions]
    gts = [normalize_for_metrics(g, ignore_case, ignore_space) for g in labels]
    distances = edit_distances(preds, gts)
    num_samples = len(gts)
    if num_samples == 0:
        return {"num_samples": 0, "accuracy": float("nan"), "one_minus_ned": float("nan"), "cer": float("nan")}
    pred_lengths = np.fromiter((len(p) for p in preds), dtype=np.int64, count=num_samples)
    gt_lengths = np.fromiter((len(g) for g in gts), dtype=np.int64, count=num_samples)
    longest = np.maximum(pred_lengths, gt_lengths)
    # Both empty: distance 0 and max length 0; count it as a perfect match rather than 0/0.
    ned = np.where(longest > 0, distances / np.maximum(longest, 1), 0.0)
    total_edits, total_chars = int(distances.sum()), int(gt_lengths.sum())
    if total_chars > 0:
        cer = total_edits / total_chars
    else:
        cer = 0.0 if total_edits == 0 else float("inf")
    return {
        "num_samples": num_samples,
        "accuracy": float(np.mean([p == g for p, g in zip(preds, gts)])),
        "one_minus_ned": float(1.0 - ned.mean()),
        "cer": float(cer),
    }
