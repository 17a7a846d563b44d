"""Aspect-ratio templates: which token grid (rows x cols) an image is encoded to (DESIGN §2).

With `max_length` L tokens per image, a grid of r rows costs r * (c + 1) tokens, because each row
starts with one `<row>` token. Templates are the grids that use L almost fully; an image gets the
template whose aspect ratio is nearest to its own in log space, so a 1:8 vertical sign and an 8:1
word are treated symmetrically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Padding colour (RGB) right and bottom of a resized image. Mid-grey, so padding is neither a dark nor
# a light background and the encoder learns it as its own thing.
PAD_RGB = (127, 127, 127)


@dataclass(frozen=True, order=True)
class Template:
    """A token grid of `rows` x `cols` codes; its image box is (cols*f) x (rows*f) pixels."""
    rows: int
    cols: int

    @property
    def aspect(self) -> float:
        return self.cols / self.rows

    @property
    def num_tokens(self) -> int:
        """Tokens used in the GPT sequence, one `<row>` token per row included."""
        return self.rows * (self.cols + 1)

    def box(self, downsample: int) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.rows * downsample, self.cols * downsample


@lru_cache(maxsize=None)
def make_templates(max_length: int) -> tuple[Template, ...]:
    """All templates for `max_length` tokens: r = 1..L rows, c = (L - r) // r codes a row, kept when
    c >= 1 and the tokens left unused (L - r*(c+1)) are fewer than sqrt(L)."""
    if max_length < 2:
        raise ValueError(f"max_length={max_length} is too small: a grid needs at least 2 tokens "
                         f"(one <row> token and one code)")
    templates = []
    for rows in range(1, max_length + 1):
        cols = (max_length - rows) // rows
        waste = max_length - rows * (cols + 1)
        if cols >= 1 and waste < math.sqrt(max_length):
            templates.append(Template(rows, cols))
    return tuple(templates)


def choose_template(width: int, height: int, max_length: int) -> Template:
    """The template whose aspect cols/rows is nearest to width/height in log space."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} is empty; crops need at least 1x1 pixels")
    templates = make_templates(max_length)
    target = math.log(width / height)
    return min(templates, key=lambda t: (abs(math.log(t.aspect) - target), -t.rows * t.cols))


def fit_to_template(image: np.ndarray, template: Template, downsample: int) -> np.ndarray:
    """Resize an RGB uint8 image (H, W, 3) to fit the template's box keeping its aspect ratio, then pad
    right and bottom with PAD_RGB. Returns (box_h, box_w, 3) uint8."""
    box_h, box_w = template.box(downsample)
    height, width = image.shape[:2]
    new_h, new_w = content_size(width, height, template, downsample)
    interpolation = cv2.INTER_AREA if new_w < width else cv2.INTER_CUBIC
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.empty((box_h, box_w, 3), dtype=np.uint8)
    canvas[:] = PAD_RGB
    canvas[:new_h, :new_w] = resized
    return canvas


def content_size(width: int, height: int, template: Template, downsample: int) -> tuple[int, int]:
    """(height, width) in pixels of an image resized into the template's box; the rest is padding."""
    box_h, box_w = template.box(downsample)
    scale = min(box_w / width, box_h / height)
    return min(box_h, max(1, round(height * scale))), min(box_w, max(1, round(width * scale)))


def image_to_tensor_array(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1], the range the VQ-VAE works in."""
    return (image.astype(np.float32).transpose(2, 0, 1) / 127.5) - 1.0


def tensor_array_to_image(array: np.ndarray) -> np.ndarray:
    """float (3, H, W) in [-1, 1] -> RGB uint8 (H, W, 3)."""
    return np.clip((array.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def content_codes(width: int, height: int, rows: int, cols: int) -> int:
    """Codes of a rows x cols grid that hold some of a width x height image fitted into it keeping its
    aspect ratio (top-left, as fit_to_template does); a code only partly covered still holds content."""
    scale = min(cols / width, rows / height)
    # The 1e-9 keeps an exact fit (e.g. 8.0 codes) from becoming 9 through float error.
    return max(1, min(cols, math.ceil(width * scale - 1e-9))) * max(1, min(rows, math.ceil(height * scale - 1e-9)))


def square_waste(width: int, height: int, max_length: int) -> float:
    """Share of an L-token budget wasted when the image is padded to a square grid (the reference's
    alternative): the largest square of side isqrt(L) codes, no row tokens; positions past the square
    and codes covering only padding are waste. For the tokens-wasted benchmark."""
    side = math.isqrt(max_length)
    return 1.0 - content_codes(width, height, side, side) / max_length


def template_waste(width: int, height: int, max_length: int) -> float:
    """Share of an L-token budget wasted with our templates: positions past the grid (`<vpad>`) plus codes
    that cover only padding, over the L positions that are not row tokens (row tokens carry the layout, so
    they count neither as content nor as waste)."""
    template = choose_template(width, height, max_length)
    content = content_codes(width, height, template.rows, template.cols)
    return 1.0 - content / (max_length - template.rows)
