"""Drawing text with a text-to-image export: prompts -> sampled image parts -> decoded, cropped images,
reranked by a recognizer; and unconditional samples with self-captions. Contact sheets for people to look at.

The library behind `gpt.generate`, gpt.finetune's sample images, the drawing benchmark and the web page.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from gpt.legibility import read_back, read_back_and_score, recognizer_image_ids
from gpt.metrics import normalize_for_metrics
from gpt.pretrained import Pretrained
from gpt.sampling import SamplingConfig, candidate_uniforms, sample_image_parts
from gpt.vocab import Vocab
from vqvae.data import augment_pair
from vqvae.decode import decode_grids
from vqvae.plumbing.io import ImageReadError
from vqvae.templates import PAD_RGB, upright

log = logging.getLogger(__name__)

# Sampling defaults of drawing, measured on the shipped drawing model (scripts.bench_draw, 64 held-out prompts of
# seed 1, best of 8 read back by the recognizer): temperature 1.0 / guidance 1.0 9.4%, 0.7 / 1.0 29.7%,
# 1.0 / 2.0 39.1%, 0.7 / 2.0 53.1%, 0.85 / 2.0 54.7%, 0.5 / 2.0 53.1%, 0.7 / 3.0 45.3% (BENCHMARKS.md).
DEFAULT_TEMPERATURE, DEFAULT_GUIDANCE = 0.7, 2.0
# Readings of each candidate by the reranking recognizer: the image as it is and copies with moved borders and
# jittered colours (scripts.bench_draw_rerank, BENCHMARKS.md).
RERANK_READINGS = 4


# A sheet shows at most this many tiles: beyond that the tiles get too small to judge legibility.
MAX_SHEET_TILES = 64


class PromptError(ValueError):
    """A prompt the model cannot take (characters outside its charset, too long, empty)."""


@dataclass
class Generated:
    """One sampled image part and what became of it. `image` is RGB uint8 (H, W, 3), None if undecodable."""
    prompt_index: int
    prompt: str
    candidate: int
    image_ids: np.ndarray  # (max_visual_length,) int64
    gen_logprob: float  # sum of the drawn tokens' log-probabilities under the sampling distribution
    grid: Optional[np.ndarray] = None  # (rows, cols) int64 codes
    repairs: list[str] = field(default_factory=list)
    image: Optional[np.ndarray] = None
    error: str = ""
    read_back: str = ""  # the recognizer's reading (prompts) or the model's own caption (unconditional)
    confidence: float = float("nan")
    score: float = float("nan")  # log p(prompt | image) under the recognizer, the mean over its readings
    exact: bool = False
    votes: int = 0  # how many of the recognizer's readings spell the prompt (gpt.drawing.rerank)
    is_best: bool = False
    rank: int = -1
    path: str = ""


# ---------------------------------------------------------------------------------------------- prompts
def check_prompts(prompts: Sequence[str], vocab: Vocab, max_text_length: int, where: str = "the model",
                  undrawn: Collection[str] = frozenset()) -> list[str]:
    """NFC prompts, or PromptError naming every character outside the charset and every one of `undrawn`
    (characters the model never saw drawn: Pretrained.undrawn_chars), each with the prompts holding it, every
    prompt longer than max_text_length - 2 characters, and empty prompts."""
    prompts = [unicodedata.normalize("NFC", p) for p in prompts]
    known = set(vocab.chars)
    problems = []
    unknown = _characters_in(prompts, lambda char: char not in known)
    if unknown:
        problems.append(f"{len(unknown)} character(s) are not in the charset of {where}: {_shown(unknown)}; "
                        f"remove or replace them (the charset is its charset.json)")
    never_drawn = _characters_in(prompts, lambda char: char in known and char in undrawn)
    if never_drawn:
        problems.append(f"{len(never_drawn)} character(s) never came in the training of {where}, so it cannot draw "
                        f"them (it does not compose a syllable from its letters): {_shown(never_drawn)}; replace "
                        f"them, or fine-tune on text holding them (the list is `undrawn_chars` in its layout.json)")
    too_long = [(i, len(p)) for i, p in enumerate(prompts) if len(p) > max_text_length - 2]
    if too_long:
        problems.append(f"prompt(s) {too_long[:10]} (index, characters) are longer than the "
                        f"{max_text_length - 2} characters the text part holds; shorten them")
    empty = [i for i, p in enumerate(prompts) if not p.strip()]
    if empty:
        problems.append(f"prompt(s) {empty[:10]} are empty; for prompt-free images use --unconditional "
                        f"with a recognition model")
    if problems:
        raise PromptError("; ".join(problems))
    return prompts


def _characters_in(prompts: Sequence[str], wanted: Callable[[str], bool]) -> dict[str, list[int]]:
    """{character: indices of the prompts holding it} for the `wanted` characters, in sorted order."""
    found: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        for char in sorted(filter(wanted, set(prompt))):
            found.setdefault(char, []).append(index)
    return found


def _shown(found: dict[str, list[int]]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X}, prompt {', '.join(map(str, rows[:3]))})"
                     for c, rows in list(found.items())[:20])


# ---------------------------------------------------------------------------------------------- sampling
def sample_rows(model: torch.nn.Module, vocab: Vocab, prompt_ids: torch.Tensor, max_visual_length: int,
                sampling: SamplingConfig, batch_size: int, uncond_ids: Optional[torch.Tensor] = None,
                progress: bool = True, row_widths: Optional[torch.Tensor] = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample one image part per row of prompt_ids (N, P) in batches of `batch_size` rows (`row_widths`
    (N,): codes per image row to impose, see sample_image_parts).

    Row i uses random stream i of `sampling.seed`, so results do not depend on `batch_size`.
    Returns image ids (N, max_visual_length) int64 and generation log-probabilities (N,) float32.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size} must be >= 1")
    total = prompt_ids.shape[0]
    uniforms = candidate_uniforms(total, max_visual_length, sampling.seed)
    ids, logprobs = [], []
    bar = tqdm(total=total, desc="generating", unit="img", disable=not progress)
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        out = sample_image_parts(model, vocab, prompt_ids[start:stop], max_visual_length, sampling,
                                 uniforms=uniforms[start:stop], uncond_prompt_ids=uncond_ids,
                                 row_widths=None if row_widths is None else row_widths[start:stop])
        ids.append(out.image_ids.cpu().numpy())
        logprobs.append(out.logprob.cpu().numpy())
        bar.update(stop - start)
    bar.close()
    return np.concatenate(ids), np.concatenate(logprobs)


def crop_padding(image: np.ndarray, downsample: int, tolerance: float = 24.0) -> np.ndarray:
    """Cut away the template padding (PAD_RGB after the line's end: bottom and right) of a decoded RGB uint8
    image (H, W, 3): trailing pixel rows and columns whose pixels all lie within `tolerance` of the padding
    colour. The padding starts mid-code where the line's length is not a multiple of a code, so whole codes
    would leave a grey bar. At least one code (`downsample` pixels) of each side is kept."""
    padded = np.abs(image.astype(np.int16) - np.array(PAD_RGB, dtype=np.int16)).max(axis=2) <= tolerance  # (H, W)
    keep_rows = padded.shape[0] - _trailing_true(padded.all(axis=1))
    keep_cols = padded.shape[1] - _trailing_true(padded.all(axis=0))
    return np.ascontiguousarray(image[:max(downsample, keep_rows), :max(downsample, keep_cols)])


def _trailing_true(flags: np.ndarray) -> int:
    """How many entries at the end of a 1-D bool array are True."""
    return len(flags) - (int(np.flatnonzero(~flags)[-1]) + 1 if (~flags).any() else 0)


def decode_candidates(items: list[Generated], vocab: Vocab, vqvae: torch.nn.Module, crop: bool = True,
                      batch_size: int = 64, progress: bool = True) -> None:
    """Parse every item's image ids into a grid (Vocab.parse_grid; repairs kept) and decode the grids with
    the VQ-VAE, batched by grid shape. Items with no code get `error` and no image."""
    decodable = []
    for item in items:
        try:
            item.grid, item.repairs = vocab.parse_grid(item.image_ids)
            decodable.append(item)
        except ValueError as error:
            item.error = str(error)
    device = next(vqvae.parameters()).device
    images = decode_grids(vqvae, [item.grid for item in decodable], batch_size=batch_size, device=device,
                          progress=progress)
    for item, image in zip(decodable, images):
        item.image = crop_padding(image, vqvae.downsample) if crop else image


def require_text_to_image(generator: Pretrained) -> None:
    """ValueError unless `generator` is a text-first (text-to-image) export."""
    if generator.order != "text_first":
        raise ValueError(f"{generator.directory} is an {generator.order!r} (recognition) model; prompts need a "
                         f"text-to-image export from `python -m gpt.finetune` (or use --unconditional N)")


def generate_for_prompts(generator: Pretrained, prompts: Sequence[str], num_candidates: int,
                         sampling: SamplingConfig, batch_size: int = 32, crop: bool = True,
                         progress: bool = True, vertical: bool = False) -> list[Generated]:
    """`num_candidates` images for each prompt from a text-first export (prompt-major order). Prompts are
    checked first (PromptError); decoding failures are left in `Generated.error`. `vertical` asks for
    vertical text (the <vertical> mark, gpt.vocab). With rectangular sampling every row is as many codes wide
    as the VQ-VAE's strips (its line_codes), a strip as every crop is (DESIGN §2); the drawn strip is shown
    turned back into a horizontal line unless `vertical`."""
    require_text_to_image(generator)
    if num_candidates < 1:
        raise ValueError(f"--num-candidates {num_candidates} must be >= 1")
    vocab, text_length = generator.vocab, generator.max_text_length
    prompts = check_prompts(prompts, vocab, text_length, str(generator.directory), generator.undrawn_chars)
    text_parts = torch.tensor([vocab.text_part(p, text_length, vertical) for p in prompts], dtype=torch.long)
    prompt_ids = text_parts.repeat_interleave(num_candidates, dim=0)  # (P*N, T), prompt-major
    uncond = None
    if sampling.guidance_scale != 1.0:
        uncond = torch.tensor([vocab.text_part("", text_length, vertical)], dtype=torch.long)
    widths = None
    if sampling.rectangular:
        widths = torch.full((len(prompt_ids),), generator.line_codes, dtype=torch.long)
    ids, logprobs = sample_rows(generator.model, vocab, prompt_ids, generator.max_visual_length, sampling,
                                batch_size, uncond, progress, widths)
    items = [Generated(row // num_candidates, prompts[row // num_candidates], row % num_candidates, ids[row],
                       float(logprobs[row])) for row in range(len(ids))]
    decode_candidates(items, vocab, generator.vqvae, crop, batch_size, progress)
    for item in items:
        if item.image is not None:
            item.image = upright(item.image, horizontal=not vertical)
    return items


def generate_unconditional(model: Pretrained, num_samples: int, sampling: SamplingConfig, batch_size: int = 32,
                           crop: bool = True, progress: bool = True) -> list[Generated]:
    """`num_samples` image parts from an image-first export, started at <row> (position 0), each read back
    greedily by the same model (self-caption in `read_back`, its confidence in `confidence`)."""
    if model.order != "image_first":
        raise ValueError(f"{model.directory} is a {model.order!r} model; --unconditional samples the image part "
                         f"first, which needs an image-first (recognition) export")
    if num_samples < 1:
        raise ValueError(f"--unconditional {num_samples} must be >= 1")
    prompt_ids = torch.zeros((num_samples, 0), dtype=torch.long)  # nothing before the image part
    ids, logprobs = sample_rows(model.model, model.vocab, prompt_ids, model.max_visual_length, sampling,
                                batch_size, None, progress)
    items = [Generated(-1, "", row, ids[row], float(logprobs[row])) for row in range(num_samples)]
    captions = read_back(model.model, model.vocab, torch.from_numpy(ids).to(model.device),
                         model.max_text_length, batch_size)
    for item, (text, confidence) in zip(items, captions):
        item.read_back, item.confidence = text, confidence
    decode_candidates(items, model.vocab, model.vqvae, crop, batch_size, progress)
    return items


# ---------------------------------------------------------------------------------------------- rerank
def rerank(items: list[Generated], recognizer: Pretrained, generator_fingerprint: str,
           batch_size: int = 64, readings: int = RERANK_READINGS, seed: int = 0) -> None:
    """Read every decodable candidate back with a recognition export and rank the candidates of each prompt:
    exact read-back first (spaces ignored), then the candidates more of `readings` readings spell (`votes`), then
    log p(prompt | image) (`score`, the mean over the readings); the readings are `read_copies`'. Sets read_back,
    confidence (the first reading's), score, exact, votes, rank (0 = best) and is_best on the items."""
    usable = [item for item in items if item.image is not None]
    if usable:
        same = recognizer.fingerprint == generator_fingerprint
        if not same:
            log.info("the recognizer's VQ-VAE (%s) differs from the generator's (%s): re-encoding the images",
                     recognizer.fingerprint, generator_fingerprint)
        first, exact, score = read_copies(recognizer, [item.image for item in usable], [item.grid for item in usable],
                                          [item.prompt for item in usable], readings, same, seed, batch_size)
        for item, (text, confidence), spelled, votes, mean in zip(usable, first, exact[:, 0], exact.sum(1),
                                                                   mean_over_readings(score)):
            item.read_back, item.confidence, item.exact, item.votes = text, confidence, bool(spelled), int(votes)
            item.score = float(mean)
    rank_candidates(items, by_recognizer=True)


def read_copies(recognizer: Pretrained, images: Sequence[np.ndarray], grids: Sequence[Optional[np.ndarray]],
                prompts: Sequence[str], readings: int, same_vqvae: bool, seed: int = 0, batch_size: int = 64
                ) -> tuple[list[tuple[str, float]], np.ndarray, np.ndarray]:
    """The recognizer's readings of RGB uint8 images (H, W, 3) drawn for `prompts`: each as it is, and
    `readings - 1` times a copy with its borders moved and colours jittered (vqvae.data.augment_pair, seeded by
    `seed`, position and copy: the copies `gpt.read --votes` reads). Returns (first, exact, score): first[i] the
    (text, confidence) of image i as it is; exact (N, readings) whether each reading spells its prompt; score
    (N, readings) float64 log p(prompt | copy). A reading whose copies cannot all be normalized is skipped (logged;
    False and NaN); `grids` are laid out as they are for the first reading when `same_vqvae`."""
    recognizer.require_recognition()
    if readings < 1:
        raise ValueError(f"readings={readings}: read each candidate at least once")
    first: list[tuple[str, float]] = [("", float("nan"))] * len(images)
    exact = np.zeros((len(images), readings), dtype=bool)
    score = np.full((len(images), readings), np.nan)
    for copy in range(readings if len(images) else 0):
        copies = images if not copy else [augment_pair(image, None, np.random.default_rng([seed, index, copy]))[0]
                                          for index, image in enumerate(images)]
        try:
            image_ids = recognizer_image_ids(recognizer.vocab, recognizer.max_visual_length, grids, copies,
                                             same_vqvae and not copy, recognizer.vqvae, recognizer.max_length,
                                             batch_size)
        except ImageReadError as error:  # a copy that cannot be normalized: rank without this reading
            log.warning("reading %d of the candidates skipped: %s", copy + 1, error)
            continue
        texts, scores = read_back_and_score(recognizer.model, recognizer.vocab, image_ids, prompts,
                                            recognizer.max_text_length, batch_size)
        score[:, copy] = scores.double().numpy()
        exact[:, copy] = [spells(text, prompt) for (text, _), prompt in zip(texts, prompts)]
        if not copy:
            first = texts
    return first, exact, score


def mean_over_readings(score: np.ndarray) -> np.ndarray:
    """(N,) mean of `read_copies`' (N, R) log-likelihoods over the readings not skipped (NaN); -inf where none
    was read, so such a candidate ranks last."""
    read = ~np.isnan(score)
    return np.where(read.any(1), np.nansum(score, 1) / np.maximum(read.sum(1), 1), -np.inf)


def spells(read_back: str, prompt: str) -> bool:
    """Whether a reading is the prompt, exact as the project scores reading (spaces ignored): a drawing whose
    space the recognizer misses still spells the prompt and ranks above one that does not (the score, which
    counts the space, orders the exact candidates among themselves)."""
    return normalize_for_metrics(read_back, ignore_space=True) == normalize_for_metrics(prompt, ignore_space=True)


def rank_candidates(items: list[Generated], by_recognizer: bool) -> None:
    """Per prompt, rank decodable candidates (rank 0 = best, is_best on it): by (exact, votes, score) when a
    recognizer scored them, else by the generator's mean log-probability per image token."""
    by_prompt: dict[int, list[Generated]] = {}
    for item in items:
        by_prompt.setdefault(item.prompt_index, []).append(item)
    for group in by_prompt.values():
        usable = [item for item in group if item.image is not None]
        if by_recognizer:
            key = lambda item: (item.exact, item.votes, item.score)  # noqa: E731
        else:
            key = lambda item: item.gen_logprob / max(1, item.grid.size)  # noqa: E731
        for rank, item in enumerate(sorted(usable, key=key, reverse=True)):
            item.rank, item.is_best = rank, rank == 0


# ---------------------------------------------------------------------------------------------- sheets
def _caption_font(size: int) -> ImageFont.ImageFont:
    """Noto Sans CJK (Hangul and Latin) from its pip package, else matplotlib's DejaVu Sans, else PIL's."""
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    candidates = sorted(Path(spec.origin).parent.glob("*.otf")) if spec and spec.origin else []
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    for path in candidates:
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default()


def make_sheet(images: Sequence[np.ndarray], captions: Sequence[str], tile_height: int = 64,
               tile_width: int = 320, columns: int = 4, font_size: int = 14) -> np.ndarray:
    """A contact sheet: each RGB uint8 image fitted into a tile_width x tile_height box (aspect kept, tall
    images stay tall), its caption below; at most MAX_SHEET_TILES tiles. Returns RGB uint8 (H, W, 3)."""
    images, captions = list(images)[:MAX_SHEET_TILES], list(captions)[:MAX_SHEET_TILES]
    if not images:
        raise ValueError("make_sheet needs at least one image")
    font = _caption_font(font_size)
    columns = max(1, min(columns, len(images)))
    grid_rows = math.ceil(len(images) / columns)
    caption_height, margin = font_size + 8, 6
    cell_w, cell_h = tile_width + 2 * margin, tile_height + caption_height + 2 * margin
    sheet = Image.new("RGB", (columns * cell_w, grid_rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(zip(images, captions)):
        x, y = (index % columns) * cell_w + margin, (index // columns) * cell_h + margin
        height, width = image.shape[:2]
        scale = min(tile_width / width, tile_height / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        tile = Image.fromarray(image).resize(size, Image.NEAREST if scale >= 1 else Image.BILINEAR)
        sheet.paste(tile, (x, y))
        draw.text((x, y + tile_height + 2), caption, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)
