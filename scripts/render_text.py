"""Render a labelled dataset of Korean and English text crops (DESIGN §1, §4); what each says: scripts.texts.

    python -m scripts.render_text --output data/rendered --num-samples 20000 --seed 0

writes DIR/images/NNNNNN.png and DIR/labels.csv (`img_path,text,orientation,language,font`, in index
order). Texts are words and 1-3 word phrases from wordfreq (or --words-file), numbers, punctuation and
mixed case; lines are horizontal or vertical (one character under another, as on Korean signboards; the
label is the reading order, top to bottom). Each sample is drawn from its own RNG seeded by
(seed, index), so a dataset is byte-identical for a seed whatever --num-workers is, and sample i does
not change when --num-samples does.

A text is drawn only with a font whose cmap covers every character of it and whose glyphs have ink
(scripts.fonts.Font.draws), so a missing glyph never yields a mislabelled image; words no font covers
are dropped from the pool and counted (render.json). With --num-workers > 1 the workers are spawned,
so a script calling render_dataset must guard its entry point with `if __name__ == "__main__":`.
"""
from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from scripts.fonts import Font, load_fonts
from scripts.texts import PLATE, TextSampler, holds_excluded
from scripts.words import LANGUAGES, read_word_list, script_of, word_pool
from vqvae.plumbing.io import (BadRowReport, normalize_text, report_path_for, save_image, write_csv_atomic,
                               write_json_atomic)
from vqvae.plumbing.cli import run_cli

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ["img_path", "text", "orientation", "language", "font"]
TARGET_DIR = "targets"  # with --clean-targets: each crop's clean target, in the labels' `target_path` column
# Augmentation strength: scales the probability and the size of every distortion.
AUGMENT_LEVELS = {"none": 0.0, "light": 0.5, "medium": 1.0, "heavy": 1.5}
IMAGE_FORMATS = ("png", "jpg")
# A sample redraws its text until it is renderable (font coverage, length, excluded words); the pools are
# pre-filtered so this rarely loops, and giving up is reported as a bad row, never silent.
MAX_ATTEMPTS = 100
# Vertical lines are mostly Korean signboards; Latin vertical text is allowed but rarer.
VERTICAL_LANGUAGE_WEIGHTS = {"ko": 0.8, "en": 0.1, "mixed": 0.1}
# Share of horizontal samples that mix Hangul and Latin when both languages are enabled.
MIXED_SHARE = 0.15
MIN_CONTRAST = 3.0  # WCAG contrast ratio between text and background (3:1 = "large text" minimum)
LINE_BOX_MARGIN = 0.1  # of the font size, before and after the text of a --line-box crop
LINE_BOX_SPACING = 0.1  # of the font size, between the cells of a vertical --line-box crop
# Share of other texts drawn inside a border, like many signs and labels (render_dataset's default
# frame_share).
FRAME_SHARE = 0.04
# Share of framed crops that go on past the border into what surrounds it (a car body, a wall), dark in
# SURROUND_DARK of them: detectors' boxes around plates and signs do, and the shipped model, trained only on
# crops that end in their own background, read 0% of real_ko_plates.
SURROUND_SHARE, SURROUND_DARK = 0.5, 0.6
# Share of augmented plates drawn with their two bolts, one between the border and each end of the number:
# plates are screwed on, and the chunk-36 model, never shown a bolt, read three leading digits for two in 15 of
# the 58 crops of real_ko_plates ("177누 5031" for 17누5031: the left bolt as a digit).
BOLT_SHARE = 0.8
# Share of crops drawn condensed or extended along the line (plates, signs and headlines use narrow and wide
# lettering that few installed fonts have), and the range of that scale.
STRETCH_SHARE, STRETCH_RANGE = 0.25, (0.65, 1.2)
# Margins of a tight crop, per side, as a share of the font size (render_dataset's tight_share): a text detector's
# box often ends at the ink, where the loose crops' 2-25% never does, and the chunk-69 model read the held-out sets
# rendered tight at 71-79% against 82-86% as rendered (BENCHMARKS.md, session 42).
TIGHT_MARGIN = 0.04


class SampleError(RuntimeError):
    """A sample that could not be rendered (reported as a bad row)."""


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides the content of a dataset besides (seed, index); shipped to the workers."""
    seed: int
    languages: tuple[str, ...]
    vertical_share: float
    min_height: int
    max_height: int
    augment: float
    max_chars: int
    max_vertical_chars: int
    image_format: str
    words_only: bool
    min_aspect: float = 0.0
    line_box: bool = False
    clean_targets: bool = False
    syllable_share: float = 0.0
    frame_share: float = FRAME_SHARE
    tight_share: float = 0.0


# ------------------------------------------------------------------------------------------ drawing

# Large enough for every (font, size) of a few hundred fonts: a Noto CJK face takes ~20 ms to open.
@lru_cache(maxsize=8192)
def _pil_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: precomposed Hangul needs no shaping, and raqm (present or not per install) would make
    # the same seed render different pixels on different machines.
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=8192)
def _cap_top(path: str, index: int, size: int) -> int:
    """Top of a capital 'H' above the baseline (negative px): the least height a horizontal crop gets, so
    'ace' and 'Abg' crops share a line height as a text detector's boxes would."""
    font = _pil_font(path, index, size)
    top = font.getbbox("H", anchor="ls")[1]
    return top if top < 0 else -round(0.7 * size)


def _luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of an sRGB colour in 0..255."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ np.array([0.2126, 0.7152, 0.0722]))


def _contrast(a: np.ndarray, b: np.ndarray) -> float:
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(text, background) RGB float colours with a contrast ratio >= MIN_CONTRAST."""
    if rng.random() < 0.35:  # print-like: dark ink on light paper, or the reverse
        dark, light = rng.uniform(0, 70, 3), rng.uniform(190, 255, 3)
        return (dark, light) if rng.random() < 0.75 else (light, dark)
    for _ in range(30):
        text, background = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if _contrast(text, background) >= MIN_CONTRAST:
            return text, background
    return np.zeros(3), np.full(3, 255.0)


def _background(rng: np.random.Generator, height: int, width: int, colour: np.ndarray, text_colour: np.ndarray,
                strength: float) -> np.ndarray:
    """(height, width, 3) float32 background: solid, a linear gradient, or smooth noise around `colour`."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = colour
    r = rng.random()
    if r < 0.3 * min(strength, 1.0):  # linear gradient to a second colour that still contrasts with the text
        other = np.clip(colour + rng.normal(0, 50, 3), 0, 255)
        if _contrast(other, text_colour) >= MIN_CONTRAST:
            angle = rng.uniform(0, 2 * math.pi)
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            t = xs * math.cos(angle) + ys * math.sin(angle)
            t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
            image += t[..., None] * (other - colour).astype(np.float32)
    elif r < 0.55 * min(strength, 1.0):  # smooth blotches, like paper or a painted wall
        small = rng.normal(0, 12 * strength, (max(2, height // 8), max(2, width // 8), 1)).astype(np.float32)
        image += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    return image


def _draw_horizontal(font: ImageFont.FreeTypeFont, text: str, stroke: int, pad: int, cap_top: int,
                     line_box: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Masks of a one-line text: (full (fill+stroke), fill) uint8 (H, W) and the crop box (x0, y0, x1, y1)
    before margins: ink, extended up to the cap height and down to the baseline; or with `line_box` the
    font's line box: pen origin to advance, ascent to descent, whatever the letters."""
    left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=stroke)
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    origin = (pad - left, pad - top)
    full = Image.new("L", (width, height), 0)
    ImageDraw.Draw(full).text(origin, text, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
    fill = full
    if stroke:
        fill = Image.new("L", (width, height), 0)
        ImageDraw.Draw(fill).text(origin, text, font=font, fill=255, anchor="ls")
    if line_box:
        ascent, descent = font.getmetrics()
        box = (origin[0], origin[1] - ascent, origin[0] + font.getlength(text), origin[1] + descent)
    else:
        cap = cap_top - stroke
        box = (pad, min(pad, origin[1] + cap), width - pad, max(height - pad, origin[1] + stroke))
    return np.asarray(full), np.asarray(fill), box


def _draw_vertical(font: ImageFont.FreeTypeFont, text: str, stroke: int, pad: int, spacing: float,
                   line_box: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Masks of a vertical line: each character centred in its own cell, top to bottom; a space is a half
    cell of gap. Same return as _draw_horizontal; the box is the ink's, or with `line_box` the column of
    cells, one font size wide, whatever the characters (fixed-width in CJK fonts)."""
    size = font.size
    cell = round(size * (1.0 + spacing))
    cells = [cell // 2 if char == " " else cell for char in text]
    boxes = [font.getbbox(char, anchor="mm", stroke_width=stroke) for char in text if char != " "]
    column = max(right - left for left, _, right, _ in boxes)
    if line_box:  # room for the whole cell, one font size wide
        column = max(column, size)
    width, height = column + 2 * pad, sum(cells) + 2 * pad
    full = Image.new("L", (width, height), 0)
    fill = Image.new("L", (width, height), 0) if stroke else full
    y = pad
    for char, h in zip(text, cells):
        if char != " ":
            centre = (width / 2, y + h / 2)
            ImageDraw.Draw(full).text(centre, char, font=font, fill=255, anchor="mm", stroke_width=stroke,
                                      stroke_fill=255)
            if stroke:
                ImageDraw.Draw(fill).text(centre, char, font=font, fill=255, anchor="mm")
        y += h
    full_array = np.asarray(full)
    ys, xs = np.nonzero(full_array)
    if len(xs) == 0:
        raise SampleError(f"font {font.path} drew no ink for {text!r}")
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    if line_box:
        box = ((width - size) / 2, pad, (width + size) / 2, pad + sum(cells))
    return full_array, np.asarray(fill), box


def _warp_matrix(rng: np.random.Generator, box: tuple[float, float, float, float], vertical: bool,
                 strength: float) -> tuple[np.ndarray, int, int]:
    """A perspective matrix taking the crop box (small rotation + corner jitter, condensed or extended along
    the line now and then) onto an output image whose size (width, height) is the warped box's bounding
    rectangle."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    dst = corners.copy()
    if strength > 0 and rng.random() < 0.6 * min(strength, 1.0):
        max_angle = (2.0 if vertical else 4.0) * strength
        angle = math.radians(float(np.clip(rng.normal(0, max_angle / 2), -max_angle, max_angle)))
        centre = corners.mean(axis=0)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
        dst = (dst - centre) @ rotation.T + centre
    if strength > 0 and rng.random() < 0.4 * min(strength, 1.0):
        short_side = min(x1 - x0, y1 - y0)
        dst = dst + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * 0.08 * strength * short_side
    if strength > 0 and rng.random() < STRETCH_SHARE * min(strength, 1.0):
        dst[:, 1 if vertical else 0] *= rng.uniform(*STRETCH_RANGE)
    dst -= dst.min(axis=0)
    width, height = (int(math.ceil(v)) for v in dst.max(axis=0))
    return cv2.getPerspectiveTransform(corners, dst.astype(np.float32)), max(width, 2), max(height, 2)


def _degrade(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    """Photometric augmentations on a float32 (H, W, 3) image in 0..255; returns uint8."""
    p = min(strength, 1.0)
    height, width = image.shape[:2]
    if rng.random() < 0.3 * p:  # contrast / brightness
        gain = rng.uniform(1 - 0.25 * strength, 1 + 0.1 * strength)
        image = (image - 128) * gain + 128 + rng.normal(0, 10 * strength)
    if rng.random() < 0.15 * p and min(height, width) >= 8:  # low resolution: down and back up
        factor = rng.uniform(max(0.35, 1 - 0.45 * strength), 0.9)
        small = cv2.resize(image, (max(2, round(width * factor)), max(2, round(height * factor))),
                           interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3 * p:
        sigma = rng.uniform(0.3, 0.3 + 0.8 * strength)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < 0.3 * p:
        image = image + rng.normal(0, rng.uniform(2, 2 + 6 * strength), image.shape).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * p:  # JPEG blocks and ringing
        quality = int(rng.integers(max(15, round(90 - 50 * strength)), 96))
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return image


def _draw_bolts(rng: np.random.Generator, masks: Sequence[np.ndarray], box: tuple[float, float, float, float],
                size: int) -> tuple[float, float]:
    """Draw a plate's two bolts into `masks`, in room added at both ends of the line `box`, as a dot or a ring
    at mid-height; returns the widened box's new left and right edges."""
    x0, y0, x1, y1 = box
    room = rng.uniform(0.25, 0.5) * size
    radius = max(1, round(rng.uniform(0.05, 0.1) * size))
    ring = -1 if rng.random() < 0.5 else max(1, radius // 2)  # cv2: a negative thickness fills the circle
    centre_y = round((y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * (y1 - y0))
    for centre_x in (x0 - room / 2, x1 + room / 2):
        for mask in masks:
            cv2.circle(mask, (round(centre_x), centre_y), radius, 255, ring)
    return x0 - room, x1 + room


def render_image(rng: np.random.Generator, text: str, font: Font, size: int, vertical: bool,
                 strength: float = 1.0, min_aspect: float = 0.0, line_box: bool = False,
                 frame: bool = False, with_target: bool = False, tight: bool = False
                 ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Draw `text` with `font` at `size` px into a tight-ish crop: RGB uint8 (H, W, 3).

    Vertical text stacks the characters top to bottom. `strength` (0 = clean black on white) scales the
    augmentations: colours and backgrounds, outline and shadow, rotation and perspective, blur, noise, JPEG.
    `min_aspect` > 0 extends shorter crops along the reading direction (right, or down for vertical text)
    with background until length / thickness >= min_aspect: fixed-width fields, where every text keeps the
    same scale once resized to a template. `line_box` crops text to the font's line box with fixed margins
    instead of the ink box with random ones (vertical text: a column of cells one font size wide, at a fixed
    spacing): with one font, every crop then has one scale and every glyph a fixed place, like printed
    forms. `frame` draws a border in the text colour around the text, as on plates and many signs, and
    crops just outside it or, when augmented, now and then further out, into a surround of another colour.
    `tight` crops at the ink (TIGHT_MARGIN) instead of a few pixels out, like a tight detector box.
    `with_target` returns `(crop, target)`: the target is the crop as the text is, grey uint8 (H, W), the
    glyphs (and frame) black on white at the very same place, without colours, backgrounds, outline, shadow,
    blur, noise or JPEG: what a clean-target VQ-VAE reconstructs (`--clean-targets`). It costs no random
    draw, so the crop is the same with or without it.
    The caller guarantees that `font` covers `text`.
    """
    pil_font = _pil_font(font.path, font.index, size)
    stroke = max(1, round(size * rng.uniform(0.03, 0.08))) if rng.random() < 0.12 * min(strength, 1.0) else 0
    pad = size + 2 * stroke
    if vertical:
        spacing = rng.uniform(0.0, 0.3)  # drawn always, so later random draws do not shift
        full, fill, box = _draw_vertical(pil_font, text, stroke, pad, LINE_BOX_SPACING if line_box else spacing,
                                         line_box)
    else:
        full, fill, box = _draw_horizontal(pil_font, text, stroke, pad, _cap_top(font.path, font.index, size),
                                           line_box)
    # "A few px" of margin on each side, independently, like a text detector's loose boxes.
    margins = rng.uniform(0.02, 0.25, 4) * size + 1  # drawn always, so later random draws do not shift
    if tight:  # the same draws mapped onto 0..TIGHT_MARGIN of the size, less 0.02 px (as the published sets have it)
        margins = (margins - 1 - 0.02 * size) / 0.23 * TIGHT_MARGIN - 0.02
    if line_box:  # across the line, the box has room for the tallest or widest glyph already
        along = LINE_BOX_MARGIN * size
        margins[:] = (0.0, along, 0.0, along) if vertical else (along, 0.0, along, 0.0)
    x0, y0, x1, y1 = box
    x0, y0, x1, y1 = x0 - margins[0], y0 - margins[1], x1 + margins[2], y1 + margins[3]
    inside = None  # with a surround: a mask of what the frame encloses, warped like the text
    if frame:  # drawn into the masks, so it is warped, coloured and degraded with the text
        thickness = max(1, round(rng.uniform(0.03, 0.1) * size))
        full, fill = full.copy(), fill.copy()
        if strength > 0 and PLATE.fullmatch(text) and rng.random() < BOLT_SHARE:
            x0, x1 = _draw_bolts(rng, (full, fill), (x0, y0, x1, y1), size)
        height, width = full.shape
        corners = (max(0, round(x0)), max(0, round(y0))), (min(width - 1, round(x1)), min(height - 1, round(y1)))
        for mask in (full, fill):
            cv2.rectangle(mask, *corners, 255, thickness)
        outside = rng.uniform(0.02, 0.12) * size + thickness
        if strength > 0 and rng.random() < SURROUND_SHARE:
            inside = np.zeros_like(full)
            cv2.rectangle(inside, *corners, 255, cv2.FILLED)
            outside += rng.uniform(0.1, 0.6) * size
        x0, y0, x1, y1 = x0 - outside, y0 - outside, x1 + outside, y1 + outside
    if vertical:
        y1 = max(y1, y0 + min_aspect * (x1 - x0))
    else:
        x1 = max(x1, x0 + min_aspect * (y1 - y0))
    box = (x0, y0, x1, y1)
    matrix, width, height = _warp_matrix(rng, box, vertical, strength)

    def warp(mask: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(mask.astype(np.float32) * (1 / 255), matrix, (width, height),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    # Clean renders (strength 0) are black on white; colours are part of the augmentation.
    text_colour, bg_colour = _colours(rng) if strength > 0 else (np.zeros(3), np.full(3, 255.0))
    image = _background(rng, height, width, bg_colour, text_colour, strength)
    if inside is not None:
        surround = rng.uniform(0, 60, 3) if rng.random() < SURROUND_DARK else rng.uniform(0, 255, 3)
        enclosed = warp(inside)[..., None]
        image = image * enclosed + surround.astype(np.float32) * (1 - enclosed)
    if strength > 0 and rng.random() < 0.1 * min(strength, 1.0):  # drop shadow
        shift = np.float32([[1, 0, rng.uniform(0.03, 0.08) * size], [0, 1, rng.uniform(0.03, 0.08) * size]])
        shadow = cv2.warpAffine(full, shift, (full.shape[1], full.shape[0]))
        shadow = warp(cv2.GaussianBlur(shadow, (0, 0), max(0.5, 0.03 * size)))[..., None] * rng.uniform(0.4, 0.8)
        image = image * (1 - shadow) + (bg_colour * 0.3).astype(np.float32) * shadow
    fill_alpha = warp(fill)
    if stroke:
        outline_colour = rng.uniform(0, 255, 3) if rng.random() < 0.5 else 255.0 - text_colour
        alpha = warp(full)[..., None]
        image = image * (1 - alpha) + outline_colour.astype(np.float32) * alpha
    if fill_alpha.max() < 0.5:
        raise SampleError(f"font {font.name} drew no ink for {text!r} at size {size}")
    alpha = fill_alpha[..., None]
    image = image * (1 - alpha) + text_colour.astype(np.float32) * alpha
    image = _degrade(rng, image, strength)
    if with_target:
        return image, (255.0 * (1.0 - fill_alpha) + 0.5).astype(np.uint8)
    return image


# ---------------------------------------------------------------------------------------- the dataset

class _Renderer:
    """Per-process state: the settings, fonts and pools; renders sample `index` from (seed, index) alone."""

    def __init__(self, settings: RenderSettings, fonts: Sequence[Font], sampler: TextSampler, image_dir: str,
                 num_samples: int):
        self.settings, self.fonts, self.sampler, self.image_dir = settings, tuple(fonts), sampler, image_dir
        horizontal = {language: 1.0 for language in settings.languages}
        if {"ko", "en"} <= set(horizontal) and (not sampler.words_only or "mixed" in sampler.pools):
            horizontal = {"ko": (1 - MIXED_SHARE) / 2, "en": (1 - MIXED_SHARE) / 2, "mixed": MIXED_SHARE}
        vertical = {language: VERTICAL_LANGUAGE_WEIGHTS[language] for language in horizontal}
        self.language_weights = {False: self._normalized(horizontal), True: self._normalized(vertical)}
        self.digits = max(6, len(str(num_samples - 1)))  # zero-padded file names sort in index order

    @staticmethod
    def _normalized(weights: dict[str, float]) -> tuple[tuple[str, ...], np.ndarray]:
        values = np.array(list(weights.values()), np.float64)
        return tuple(weights), values / values.sum()

    def image_name(self, index: int) -> str:
        return f"{index:0{self.digits}d}.{self.settings.image_format}"

    def target_name(self, index: int) -> str:
        return f"{index:0{self.digits}d}.png"  # lossless whatever --format: a target is exact

    def choose_text(self, rng: np.random.Generator, vertical: bool, counts: Counter) -> tuple[str, str, Font]:
        """Draw (text, language, font) until a text fits the limits, avoids excluded words and some font
        covers all of it; each redraw is counted by reason."""
        names, weights = self.language_weights[vertical]
        limit = self.settings.max_vertical_chars if vertical else self.settings.max_chars
        for _ in range(MAX_ATTEMPTS):
            language = names[int(rng.choice(len(names), p=weights))]
            text = self.sampler.sample(rng, language)
            if len(text) > limit:
                counts["redrawn_too_long"] += 1
                continue
            if vertical and len(text.replace(" ", "")) < 2:  # one character would not make a tall crop
                counts["redrawn_too_short_for_vertical"] += 1
                continue
            if vertical and PLATE.fullmatch(text):  # plates are never written top to bottom
                counts["redrawn_plate_for_vertical"] += 1
                continue
            if self.sampler.is_excluded(text):
                counts["redrawn_excluded_word"] += 1
                continue
            font = self._drawing_font(rng, text)
            if font is None:
                counts["redrawn_no_font_covers"] += 1
                continue
            if font.capitals_only() and text != text.upper():  # the label says what the picture shows
                counts["upper_cased_for_capitals_font"] += 1
                text = text.upper()
            return text, language, font
        raise SampleError(f"no renderable text after {MAX_ATTEMPTS} draws ({dict(counts)}); "
                          f"raise --max-chars or add fonts that cover the word lists")

    def _drawing_font(self, rng: np.random.Generator, text: str) -> Font | None:
        """A font drawn uniformly from those that draw `text`, or None. The cheap cmap test narrows the
        candidates first; the ink test (a glyph rendering per new character) runs only on the font drawn,
        which keeps a set of hundreds of fonts fast. A font that draws lowercase as capitals must draw the text's
        upper case too, which the caller labels it with."""
        candidates = [font for font in self.fonts if font.covers(text)]
        while candidates:
            font = candidates.pop(int(rng.integers(len(candidates))))
            if font.draws(text) and (text == text.upper() or not font.capitals_only() or font.draws(text.upper())):
                return font
        return None

    def __call__(self, index: int) -> tuple[int, dict | None, str | None, Counter]:
        counts: Counter = Counter()
        name = self.image_name(index)
        try:
            rng = np.random.default_rng([self.settings.seed, index])
            vertical = bool(rng.random() < self.settings.vertical_share)
            text, language, font = self.choose_text(rng, vertical, counts)
            log_min, log_max = math.log(self.settings.min_height), math.log(self.settings.max_height)
            size = int(round(math.exp(rng.uniform(log_min, log_max))))
            # Plates have a border; other texts get one now and then (not in clean renders: strength 0).
            frame = self.settings.augment > 0 and (PLATE.fullmatch(text) is not None
                                                   or rng.random() < self.settings.frame_share)
            # drawn only when asked for, so renders without tight crops stay what they were
            tight = self.settings.tight_share > 0 and rng.random() < self.settings.tight_share
            image = render_image(rng, text, font, size, vertical, self.settings.augment, self.settings.min_aspect,
                                 self.settings.line_box, frame, with_target=self.settings.clean_targets, tight=tight)
            if self.settings.clean_targets:
                image, target = image
                save_image(os.path.join(os.path.dirname(self.image_dir), TARGET_DIR, self.target_name(index)), target)
            save_image(os.path.join(self.image_dir, name), image)
        except Exception as error:  # reported as a bad row with its reason; the run goes on
            return index, None, f"{type(error).__name__}: {error}", counts
        row = {"img_path": f"images/{name}", "text": text, "orientation": "vertical" if vertical else "horizontal",
               "language": language, "font": font.name}
        if self.settings.clean_targets:
            row["target_path"] = f"{TARGET_DIR}/{self.target_name(index)}"
        return index, row, None, counts


_WORKER: _Renderer | None = None


def _init_worker(renderer: _Renderer) -> None:
    global _WORKER
    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would only oversubscribe
    _WORKER = renderer


def _render_in_worker(index: int) -> tuple[int, dict | None, str | None, Counter]:
    assert _WORKER is not None, "worker used before _init_worker"
    return _WORKER(index)


def _parse_languages(languages: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if languages is None:
        return None
    items = [s.strip() for s in languages.split(",")] if isinstance(languages, str) else list(languages)
    items = [s for s in items if s]
    bad = [s for s in items if s not in LANGUAGES]
    if bad or not items:
        raise ValueError(f"languages {bad or items!r} are not supported; use a comma list of {list(LANGUAGES)} "
                         f"(mixed Korean+English texts come automatically when both are given)")
    return tuple(dict.fromkeys(items))


def build_pools(languages: tuple[str, ...] | None, fonts: Sequence[Font],
                words: Sequence[str] | Mapping[str, Sequence[str]] | None, exclude: frozenset[str], max_chars: int,
                pool_size: int) -> tuple[dict[str, list[str]], tuple[str, ...], dict]:
    """Word pools per language, filtered: no excluded word (casefold), at most `max_chars` characters, and
    covered by at least one font. Returns (pools, languages, counts of dropped words).

    `words` None: wordfreq top `pool_size` per language. A sequence: sorted into 'ko'/'en'/'mixed' by
    script (digits-only entries go with 'en', or 'ko' when English is off). A mapping: used as given.
    """
    dropped: Counter = Counter()
    if words is None:
        languages = languages or LANGUAGES
        raw = {language: word_pool(language, pool_size) for language in languages}
    elif isinstance(words, Mapping):
        raw = {language: [normalize_text(w) for w in ws] for language, ws in words.items()}
    else:
        raw = {"ko": [], "en": [], "mixed": []}
        for word in map(normalize_text, words):
            script = script_of(word)
            raw[script if script != "other" else "en"].append(word)
        if languages is not None and "en" not in languages:
            raw["ko"] += [w for w in raw["en"] if script_of(w) == "other"]
    unknown = set(raw) - {"ko", "en", "mixed"}
    if unknown:
        raise ValueError(f"word pools {sorted(unknown)} are not languages; use keys 'ko', 'en' (and 'mixed')")
    if languages is None:  # user words decide the languages
        languages = tuple(language for language in LANGUAGES if raw.get(language))
        if not languages:
            raise ValueError("the word list has no Korean or English entries to render")
    pools: dict[str, list[str]] = {}
    for language, entries in raw.items():
        if language != "mixed" and language not in languages:
            continue
        kept = []
        for word in entries:
            if not word or len(word) > max_chars:
                dropped[f"{language}_too_long"] += 1
            elif word.casefold() in exclude or holds_excluded(word, exclude):
                dropped[f"{language}_excluded"] += 1
            elif not any(font.draws(word + word.upper()) for font in fonts):  # UPPER is drawn too
                dropped[f"{language}_no_font_covers"] += 1
            else:
                kept.append(word)
        pools[language] = kept
    for language in languages:
        if not pools.get(language):
            why = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items()) if k.startswith(language)) or "no entries"
            if dropped.get(f"{language}_no_font_covers"):
                hint = (f"none of the fonts {[f.name for f in fonts][:8]} covers Hangul; add one that does "
                        f"(e.g. Noto Sans CJK) with --fonts or drop 'ko' from --languages")
            else:
                hint = f"drop {language!r} from --languages or give more words"
            raise ValueError(f"no {language!r} word can be rendered ({why}); {hint}")
    return pools, languages, dict(dropped)


def render_dataset(output_dir: str | os.PathLike, num_samples: int, seed: int = 0, *,
                   languages: str | Sequence[str] | None = None, vertical_share: float = 0.3,
                   fonts: Sequence[str | os.PathLike] | Sequence[Font] | None = None,
                   min_height: int = 20, max_height: int = 48, augment: str | float = "medium",
                   num_workers: int = 2, words: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                   exclude_words: Iterable[str] | None = None, max_chars: int = 20, max_vertical_chars: int = 8,
                   pool_size: int = 20000, image_format: str = "png", words_only: bool = False,
                   min_aspect: float = 0.0, line_box: bool = False, clean_targets: bool = False,
                   syllable_share: float = 0.0, frame_share: float = FRAME_SHARE, tight_share: float = 0.0,
                   progress: bool = True) -> pd.DataFrame:
    """Render `num_samples` labelled text crops into `output_dir` and return its labels frame.

    Writes output_dir/images/NNNNNN.<image_format> and output_dir/labels.csv (LABEL_COLUMNS, index order,
    img_path relative to the folder, NFC text), plus render.json (settings and counts). Samples that fail
    are left out of labels.csv and listed in labels.csv.bad.csv; the frame's `attrs` hold `stats` (counts of
    redraws and dropped pool words) and `num_failed`.

    languages: 'ko', 'en' or both (comma string or list); None = both, or those present in `words`.
    fonts: font files/folders (or loaded Fonts); None = DejaVu + Noto Sans CJK. min/max_height: font size
    range in px (log-uniform). augment: 'none' | 'light' | 'medium' | 'heavy' or a strength >= 0.
    words: replaces the wordfreq pools (entries may be phrases). exclude_words: never rendered, any case.
    words_only: texts are pool entries only (no numbers, punctuation, phrases; Latin case still varies),
    e.g. to render a test set of exactly the held-out words. min_aspect: extend shorter crops with background
    to this length / thickness (0 = tight crops; see render_image). line_box: crop text to the font's line
    box with fixed margins (see render_image). clean_targets: also write each crop's clean target
    (render_image's `with_target`) to output_dir/targets/NNNNNN.png, named in a `target_path` column; the crops
    are the same as without it. syllable_share: the share of Korean texts that are 1-4 syllables drawn uniformly
    from the Korean pool's (TextSampler; not with words_only). frame_share: the share of texts other than plate
    numbers drawn inside a border (plates always are; none when augment is 0); the same seed draws the same texts,
    fonts and sizes whatever it is. tight_share: the share of crops cut at their ink (TIGHT_MARGIN).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be at least 1")
    if seed < 0:
        raise ValueError(f"seed={seed} must be >= 0 (it seeds numpy's SeedSequence)")
    if not 0.0 <= vertical_share <= 1.0:
        raise ValueError(f"vertical_share={vertical_share} must be in [0, 1]")
    if not 4 <= min_height <= max_height:
        raise ValueError(f"font sizes min_height={min_height}, max_height={max_height}: need 4 <= min <= max")
    if max_chars < 1 or max_vertical_chars < 2:
        raise ValueError(f"max_chars={max_chars} must be >= 1 and max_vertical_chars={max_vertical_chars} >= 2")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format {image_format!r} is not one of {list(IMAGE_FORMATS)}")
    if isinstance(augment, str):
        if augment not in AUGMENT_LEVELS:
            raise ValueError(f"augment level {augment!r} is not one of {list(AUGMENT_LEVELS)} (or a number >= 0)")
        strength = AUGMENT_LEVELS[augment]
    else:
        strength = float(augment)
        if not 0.0 <= strength <= 3.0:
            raise ValueError(f"augment strength {augment} must be in [0, 3] (medium = 1.0)")
    if num_workers < 1:
        raise ValueError(f"num_workers={num_workers} must be at least 1")
    if not 0.0 <= min_aspect <= 64.0:
        raise ValueError(f"min_aspect={min_aspect} must be in [0, 64] (0 = tight crops)")
    if not 0.0 <= syllable_share <= 1.0:
        raise ValueError(f"syllable_share={syllable_share} must be in [0, 1]")
    if not 0.0 <= frame_share <= 1.0:
        raise ValueError(f"frame_share={frame_share} must be in [0, 1]")
    if not 0.0 <= tight_share <= 1.0:
        raise ValueError(f"tight_share={tight_share} must be in [0, 1]")

    if fonts and all(isinstance(f, Font) for f in fonts):
        font_list = list(fonts)
    else:
        font_list = load_fonts(fonts or None)  # type: ignore[arg-type]
    exclude = frozenset(normalize_text(w).casefold() for w in (exclude_words or ()) if w.strip())
    pools, language_tuple, dropped = build_pools(_parse_languages(languages), font_list, words, exclude,
                                                 max_chars, pool_size)
    settings = RenderSettings(seed=int(seed), languages=language_tuple, vertical_share=float(vertical_share),
                              min_height=int(min_height), max_height=int(max_height), augment=strength,
                              max_chars=int(max_chars), max_vertical_chars=int(min(max_vertical_chars, max_chars)),
                              image_format=image_format, words_only=bool(words_only), min_aspect=float(min_aspect),
                              line_box=bool(line_box), clean_targets=bool(clean_targets),
                              syllable_share=float(syllable_share), frame_share=float(frame_share),
                              tight_share=float(tight_share))
    if settings.vertical_share > 0 and settings.max_vertical_chars < 2:
        raise ValueError(f"vertical text needs at least 2 characters but max_chars={max_chars}; "
                         f"raise --max-chars or set --vertical-share 0")

    output_dir = Path(output_dir)
    image_dir = output_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    if settings.clean_targets:
        (output_dir / TARGET_DIR).mkdir(exist_ok=True)
    sampler = TextSampler(pools, exclude, words_only=settings.words_only, syllable_share=settings.syllable_share)
    renderer = _Renderer(settings, font_list, sampler, str(image_dir), num_samples)

    rows: list[dict | None] = [None] * num_samples
    report, counts = BadRowReport(), Counter()
    bar = tqdm(total=num_samples, desc="render", unit="img", disable=not progress)
    if num_workers == 1 or num_samples <= 16:  # starting processes costs more than a few images
        results: Iterable = map(renderer, range(num_samples))
        pool = None
    else:
        # spawn, not fork: a child forked after OpenCV ran in the parent can deadlock in OpenCV's thread pool.
        pool = mp.get_context("spawn").Pool(num_workers, initializer=_init_worker, initargs=(renderer,))
        chunksize = max(1, min(32, num_samples // (4 * num_workers)))  # small jobs still use every worker
        results = pool.imap_unordered(_render_in_worker, range(num_samples), chunksize=chunksize)
    try:
        for index, row, error, sample_counts in results:
            counts.update(sample_counts)
            if row is None:
                report.add(index, f"images/{renderer.image_name(index)}", error or "unknown error")
            rows[index] = row
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()

    columns = LABEL_COLUMNS + ["target_path"] if settings.clean_targets else LABEL_COLUMNS
    frame = pd.DataFrame([row for row in rows if row is not None], columns=columns)
    labels_path = output_dir / "labels.csv"
    write_csv_atomic(frame, labels_path)
    report.rows.sort(key=lambda r: r["row"])
    bad_path = report.write(report_path_for(labels_path))
    stats = {"pool_sizes": {k: len(v) for k, v in pools.items()}, "pool_words_dropped": dropped,
             "redraws": dict(sorted(counts.items())), "num_rendered": len(frame), "num_failed": len(report)}
    write_json_atomic({"settings": asdict(settings), "fonts": [f.name for f in font_list], "stats": stats},
                      output_dir / "render.json")
    if bad_path:
        logger.error("%d of %d samples failed; see %s", len(report), num_samples, bad_path)
    frame.attrs.update(stats=stats, num_failed=len(report))
    return frame


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default only where it has a real one (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.render_text",
        description="Render a labelled dataset of Korean/English text crops: DIR/images/* and DIR/labels.csv "
                    "(img_path,text,orientation,language,font). Same seed => identical dataset, whatever "
                    "--num-workers.",
        formatter_class=_DefaultsFormatter)
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--num-samples", type=int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed; sample i uses (seed, i)")
    parser.add_argument("--languages", default=None,
                        help="comma list of ko,en (default: both, or those in --words-file); "
                             "mixed Korean+English texts appear when both are on")
    parser.add_argument("--vertical-share", type=float, default=0.3, help="fraction of vertical (top-to-bottom) lines")
    parser.add_argument("--fonts", nargs="+", default=None, metavar="FILE_OR_DIR",
                        help="font files or folders (default: DejaVu from matplotlib + Noto Sans CJK)")
    parser.add_argument("--min-height", type=int, default=20, help="smallest font size in px")
    parser.add_argument("--max-height", type=int, default=48, help="largest font size in px")
    augment = parser.add_mutually_exclusive_group()
    augment.add_argument("--augment", default="medium", choices=list(AUGMENT_LEVELS),
                         help="augmentation level: colours, backgrounds, rotation, perspective, blur, noise, JPEG")
    augment.add_argument("--no-augment", dest="augment", action="store_const", const="none",
                         help="same as --augment none")
    parser.add_argument("--num-workers", type=int, default=2, help="processes (the dataset does not depend on it)")
    parser.add_argument("--words-file", default=None, help="UTF-8 file, one word or phrase a line, replacing wordfreq")
    parser.add_argument("--exclude-words", default=None, metavar="FILE",
                        help="UTF-8 file of words never to render (any case), e.g. held-out test words")
    parser.add_argument("--max-chars", type=int, default=20, help="longest label, in characters")
    parser.add_argument("--max-vertical-chars", type=int, default=8, help="longest vertical label")
    parser.add_argument("--pool-size", type=int, default=20000, help="wordfreq words per language")
    parser.add_argument("--format", dest="image_format", default="png", choices=IMAGE_FORMATS, help="image file format")
    parser.add_argument("--words-only", action="store_true",
                        help="render the words as they are: no numbers, punctuation or phrases (held-out test sets)")
    parser.add_argument("--min-aspect", type=float, default=0.0,
                        help="extend shorter crops with background (right, or down when vertical) to this "
                             "length/thickness ratio: fixed-width fields, one text scale after template resizing")
    parser.add_argument("--line-box", action="store_true",
                        help="crop text to the font's line box (pen origin to advance, ascent to descent; "
                             "vertical: cells one font size wide at a fixed spacing) with fixed margins, not to "
                             "its ink with random margins: one scale and fixed glyph places per font, like "
                             "printed forms")
    parser.add_argument("--clean-targets", action="store_true",
                        help="also write each crop's clean target (its glyphs black on white, same geometry, no "
                             "colour, background or degradation) to targets/, named in a target_path column: "
                             "the training pairs of a clean-target VQ-VAE (data.clean_target)")
    parser.add_argument("--syllable-share", type=float, default=0.0,
                        help="share of Korean texts that are 1-4 syllables drawn uniformly from the Korean pool's, "
                             "so rare syllables are drawn as often as common ones (default 0: none)")
    parser.add_argument("--frame-share", type=float, default=FRAME_SHARE,
                        help="share of texts other than plate numbers drawn inside a border, as on signs and labels "
                             "(plates always are)")
    parser.add_argument("--tight-share", type=float, default=0.0,
                        help="share of crops cut at their ink (margins of 0-4%% of the font size per side), "
                             "like tight detector boxes, instead of 2-25%% (default 0: none)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 some samples failed (reported), 2 a usage or input error."""
    return run_cli(build_parser().parse_args, run, argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    words = read_word_list(args.words_file) if args.words_file else None
    exclude = read_word_list(args.exclude_words) if args.exclude_words else None
    frame = render_dataset(args.output, args.num_samples, args.seed, languages=args.languages,
                           vertical_share=args.vertical_share, fonts=args.fonts, min_height=args.min_height,
                           max_height=args.max_height, augment=args.augment, num_workers=args.num_workers,
                           words=words, exclude_words=exclude, max_chars=args.max_chars,
                           max_vertical_chars=args.max_vertical_chars, pool_size=args.pool_size,
                           image_format=args.image_format, words_only=args.words_only,
                           min_aspect=args.min_aspect, line_box=args.line_box, clean_targets=args.clean_targets,
                           syllable_share=args.syllable_share, frame_share=args.frame_share,
                           tight_share=args.tight_share)
    stats = frame.attrs["stats"]
    print(f"wrote {len(frame)} images and {Path(args.output) / 'labels.csv'}; pools {stats['pool_sizes']}, "
          f"dropped pool words {stats['pool_words_dropped']}, redraws {stats['redraws']}")
    if frame.attrs["num_failed"]:
        print(f"{frame.attrs['num_failed']} samples failed: see {report_path_for(Path(args.output) / 'labels.csv')}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
