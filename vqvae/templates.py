"""The one crop normalization: which token grid (rows x cols) a crop is encoded to, and its pixels (DESIGN §2).

Every crop becomes a *strip*: grey, dark text on light, LINE_CODES codes across its line of text and as
many rows along it as its length needs (a horizontal line turned a quarter clockwise first), so every
glyph has one scale whatever the crop's width, margins or word length. With `max_length` L tokens per
image a grid of r rows costs r * (c + 1) tokens, because each row starts with one `<row>` token; the
sequence is padded after the last row, never to a square. A crop whose text sits inside a frame (a border
or a box of its own colour) is first cut to what the frame encloses (`find_frame`, `cut_to_frame`). Training,
encoding, reading and generation all go through `find_frame`, `choose_template` and `fit_to_template`.

`make_templates` (grids that use L fully, nearest in log-space aspect) is the earlier contract, kept for
the tokens-wasted benchmark.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

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


# Codes across a line of text, by default (a VQ-VAE's model.line_codes): every crop is scaled so its line is
# LINE_CODES * f pixels thick (32 px at f=8), so a glyph has one scale whatever the crop's width or word length.
# Measured reason: reading was learnable in CPU minutes only where glyphs kept one scale (BENCHMARKS.md, "What
# made the demo read").
LINE_CODES = 4
# A crop this many times longer than the longest strip max_length allows is refused, not squashed into it.
MAX_SQUASH = 3.0


def is_horizontal(width: int, height: int) -> bool:
    """A crop at least as wide as tall is a horizontal line; a taller one is a vertical (top-to-bottom) line."""
    return width >= height


def choose_template(width: int, height: int, max_length: int, line_codes: int = LINE_CODES) -> Template:
    """The strip of a width x height crop: `line_codes` codes across the line and one row per f pixels along it.

    Horizontal lines are turned a quarter clockwise (left end on top), so both orientations read along
    the rows, each row a slice across the line (DESIGN §2). A line longer than the longest strip that
    `max_length` allows is squashed to fit it, up to MAX_SQUASH times; beyond that ValueError."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} is empty; crops need at least 1x1 pixels")
    max_rows = max_length // (line_codes + 1)
    if max_rows < 1:
        raise ValueError(f"max_length={max_length} is too small: one strip row needs {line_codes + 1} tokens")
    across, along = (height, width) if is_horizontal(width, height) else (width, height)
    rows = max(1, math.ceil(along / across * line_codes - 1e-9))
    if rows > max_rows * MAX_SQUASH:
        raise ValueError(f"a {width}x{height} crop is a line {along / across:.1f} times longer than thick; "
                         f"max_length={max_length} holds at most {max_rows / line_codes:.1f} (squashing up to "
                         f"{MAX_SQUASH:g}x): crop it into shorter lines or raise max_length")
    return Template(min(rows, max_rows), line_codes)


# A frame around the text (a border, as on plates, signs and labels, or a box of another colour inside a surround)
# is cut away before the crop is normalized: framed copies of the held-out sets (the same words, fonts and sizes)
# read 34.6% where unframed they read 82.9%; cut to the frame's inside, 62.2%, and the unframed 83.8%, the real
# crops no worse (BENCHMARKS.md, session 38). Its inside is a hole among the crop's dark or light pixels (Otsu) that
# spans FRAME_SPAN of the crop along and across its line, fills FRAME_FILL of its rotated bounding box (a rectangle,
# not a glyph's bowl) and holds text: its grey levels spread over FRAME_CONTRAST or more (2nd to 98th percentile), which
# finds text the crop's own threshold does not part from the box it sits on (faint text on a dark box: 12 more framed
# copies read, none fewer, than with a share of the threshold's ink; session 39); the innermost such hole, looked for
# FRAME_PASSES times (a border on a box on a surround). What the cut still holds of the frame outside the hole's convex
# hull (a turned border's corners, a blurred edge) is painted in the inside's ground colour: it had been read as
# glyphs (framed copies 572 -> 669 of 900 with the same weights, plain held-out 755 -> 761; session 39). Where no hole
# passes, text that runs into the border has split it: the hole is looked for again among the crop's straight runs
# of FRAME_LINE of its width (rows) or height (columns), which a border's lines are and glyphs' short strokes are not
# (a run that reaches the crop's edge counts as going on past it, as OpenCV's erosion takes it): framed copies 676 ->
# 699 of 900 with the same weights (9 lost, 32 gained), plain held-out 762 -> 762, real 117 -> 116 (session 40).
FRAME_SPAN = (0.6, 0.4)
FRAME_FILL = 0.85
FRAME_CONTRAST = 40
FRAME_PASSES = 2
FRAME_LINE = 0.5


class Frame(NamedTuple):
    """Where a crop's text is: `box` (y0, y1, x0, x1), the part inside a frame around it or the whole crop, and
    `inside`, the frame's hole within that box (bool, box-sized; None when the crop has no frame)."""
    box: tuple[int, int, int, int]
    inside: np.ndarray | None


def find_frame(image: np.ndarray) -> Frame:
    """The `Frame` of an RGB uint8 crop (H, W, 3): the whole crop when its text has no frame, or when
    `normalize_grey` refuses it (which it then reports)."""
    try:
        grey = normalize_grey(image)
    except ValueError:
        return Frame((0, image.shape[0], 0, image.shape[1]), None)
    return _grey_find_frame(grey)


def cut_to_frame(image: np.ndarray, frame: Frame) -> np.ndarray:
    """The crop (H, W, 3) or (H, W) cut to its frame's box, what of the frame the box still holds (a rotated
    border's corners, a border's blurred edge) painted in the colour of the frame's inside (its median: the ground,
    text being the smaller part); the crop itself when it has no frame."""
    if frame.inside is None:
        return image
    y0, y1, x0, x1 = frame.box
    part = image[y0:y1, x0:x1].copy()
    inside = frame.inside
    if inside.any() and not inside.all():
        part[~inside] = np.median(part[inside], axis=0).astype(np.uint8)
    return part


def strip_frame(image: np.ndarray) -> np.ndarray:
    """The crop cut to its frame (`cut_to_frame` of `find_frame`)."""
    return cut_to_frame(image, find_frame(image))


def normalize_text_part(image: np.ndarray) -> np.ndarray:
    """`normalize_grey` of the crop cut to its frame: what encoding fits to a strip; raises as normalize_grey.
    A crop with no frame (most) is normalized once."""
    grey = normalize_grey(image)
    frame = _grey_find_frame(grey)
    if frame.inside is None:
        return grey
    return normalize_grey(cut_to_frame(image, frame))  # the inside's own stretch and polarity


def _grey_find_frame(grey: np.ndarray) -> Frame:
    """`find_frame` of a crop already normalized (grey, dark on light)."""
    y0, y1, x0, x1 = 0, grey.shape[0], 0, grey.shape[1]
    found = None
    for step in range(FRAME_PASSES):
        part = grey[y0:y1, x0:x1]  # dark on light as a whole; a box inside may be the other way round
        hole = _frame_inside(part if step == 0 or np.median(part) >= 128 else 255 - part)
        if hole is None:
            break
        (top, bottom, left, right), found = hole
        y0, y1, x0, x1 = y0 + top, y0 + bottom, x0 + left, x0 + right
    return Frame((y0, y1, x0, x1), found)


def _frame_inside(grey: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """((y0, y1, x0, x1), inside) of the innermost frame's hole in a grey crop of dark text on light (inside: the
    hole's convex hull within that box, two pixels in from its outline), or None: a light ground around a border
    makes a hole of the border and all it holds, the border one of what it holds."""
    height, width = grey.shape
    if min(height, width) < 8:
        return None
    _, dark = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    masks = (dark, 255 - dark)
    return _inside_of_holes(grey, masks) or _inside_of_holes(grey, tuple(map(_long_lines, masks)))


def _long_lines(mask: np.ndarray) -> np.ndarray:
    """The mask's straight runs of FRAME_LINE or more of the crop's width (rows) or height (columns): a border's
    lines without the glyph strokes that touch them."""
    height, width = mask.shape
    rows = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, max(3, int(FRAME_LINE * width))), np.uint8))
    columns = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((max(3, int(FRAME_LINE * height)), 1), np.uint8))
    return rows | columns


def _inside_of_holes(grey: np.ndarray, masks: tuple[np.ndarray, ...]
                     ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """`_frame_inside` of the holes of these masks (uint8 0/255, grey's shape): the smallest that passes."""
    height, width = grey.shape
    best, best_area = None, height * width
    for mask in masks:
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if hierarchy is None:
            continue
        for contour, parent in zip(contours, hierarchy[0][:, 3]):
            if parent < 0:  # an outer boundary; a hole has a parent
                continue
            _, (side_a, side_b), _ = cv2.minAreaRect(contour)
            if (max(side_a, side_b) < FRAME_SPAN[0] * max(height, width)
                    or min(side_a, side_b) < FRAME_SPAN[1] * min(height, width)
                    or cv2.contourArea(contour) < FRAME_FILL * side_a * side_b):
                continue
            x, y, box_w, box_h = cv2.boundingRect(contour)  # a hole's contour runs on its parent's pixels
            x, y, box_w, box_h = x + 1, y + 1, box_w - 2, box_h - 2
            if 0 < box_w * box_h < best_area:
                low, high = _percentiles(grey[y:y + box_h, x:x + box_w], (2, 98))
                if high - low >= FRAME_CONTRAST:
                    best, best_area = (y, y + box_h, x, x + box_w, contour), box_w * box_h
    if best is None:
        return None
    y0, y1, x0, x1, contour = best
    filled = np.zeros((height, width), np.uint8)
    # The hole's convex hull: text that touches the frame dents the hole, and must not be painted over.
    cv2.fillConvexPoly(filled, cv2.convexHull(contour), 1)
    # The outline runs on the frame's own pixels, and the hull's chords over a turned border's steps up to a pixel in.
    inside = cv2.erode(filled, np.ones((3, 3), np.uint8), iterations=2)
    return (y0, y1, x0, x1), inside[y0:y1, x0:x1].astype(bool)


def _percentiles(grey: np.ndarray, quantiles: tuple[float, ...]) -> list[np.float64]:
    """np.percentile(grey, quantiles) of a uint8 image (linear interpolation), from its histogram: no sort."""
    below = np.cumsum(np.bincount(grey.ravel(), minlength=256))  # pixels at or below each level
    values = []
    for quantile in quantiles:
        position = quantile / 100 * (grey.size - 1)
        first = int(position)
        low, high = np.searchsorted(below, [first, min(first + 1, grey.size - 1)], side="right")
        values.append(np.float64(low + (position - first) * (high - low)))  # float64, as np.percentile gives
    return values


def normalize_grey(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> grey uint8 (H, W): dark text on a light ground, contrast stretched to 0..255.

    Colour is dropped (measured: the model has to learn glyphs, not palettes). The polarity comes from the
    whole crop's median, which is ground wherever strokes cover less than half the crop; the border's was
    fooled by crops that end on a dark frame or surround, like most plates (BENCHMARKS.md). ValueError for a
    crop of one flat colour."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    low, median, high = _percentiles(grey, (2, 50, 98))
    if high - low < 8:
        low, high = float(grey.min()), float(grey.max())
        if high - low < 8:
            raise ValueError(f"the crop is one flat colour (grey levels {low:.0f}..{high:.0f}): no text to read")
    # One table of 256 grey levels: the stretch is monotone, so the stretched median is the median stretched.
    levels = np.clip((np.arange(256, dtype=np.float32) - low) * (255.0 / (high - low)), 0, 255)
    if levels[int(median)] + (median % 1) * (levels[min(255, int(median) + 1)] - levels[int(median)]) < 128:
        levels = 255.0 - levels  # light text on a dark ground
    return cv2.LUT(grey, (levels + 0.5).astype(np.uint8))


def fit_to_template(image: np.ndarray, template: Template, downsample: int) -> np.ndarray:
    """Normalize an RGB uint8 crop (H, W, 3) into its strip box (rows*f, cols*f, 3) uint8 (DESIGN §2):
    grey with dark text on light (`normalize_grey`, replicated to 3 channels), a horizontal line turned a
    quarter clockwise, scaled to the strip's thickness keeping its aspect (squashed along the line only when
    longer than the box), PAD_RGB after its end."""
    return fit_grey_to_template(normalize_grey(image), template, downsample)


def fit_grey_to_template(grey: np.ndarray, template: Template, downsample: int) -> np.ndarray:
    """`fit_to_template` for a crop already normalized: grey uint8 (H, W), dark text on light (e.g. a clean
    target, which must keep its exact grey levels) -> its strip box (rows*f, cols*f, 3) uint8."""
    box_h, box_w = template.box(downsample)
    height, width = grey.shape[:2]
    if is_horizontal(width, height):
        grey = cv2.rotate(grey, cv2.ROTATE_90_CLOCKWISE)
        height, width = width, height
    new_h = min(box_h, max(1, round(height * box_w / width)))
    interpolation = cv2.INTER_AREA if box_w < width else cv2.INTER_CUBIC
    resized = cv2.resize(grey, (box_w, new_h), interpolation=interpolation)
    canvas = np.empty((box_h, box_w, 3), dtype=np.uint8)
    canvas[:] = PAD_RGB
    canvas[:new_h] = resized[:, :, None]
    return canvas


def upright(strip: np.ndarray, horizontal: bool) -> np.ndarray:
    """A decoded strip (H, W, ...) shown as the text stands: a horizontal line turned back a quarter."""
    return cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE) if horizontal else strip


def content_size(width: int, height: int, template: Template, downsample: int) -> tuple[int, int]:
    """(height, width) in pixels of a crop normalized into its strip box; the rest (bottom) is padding."""
    box_h, box_w = template.box(downsample)
    across, along = (height, width) if is_horizontal(width, height) else (width, height)
    return min(box_h, max(1, round(along * box_w / across))), box_w


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
    content = template.cols * min(template.rows, math.ceil(content_size(width, height, template, 1)[0] - 1e-9))
    return 1.0 - content / (max_length - template.rows)
