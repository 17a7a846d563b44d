"""Font discovery and glyph coverage for the text renderer.

A rendered image is only as good as its label: a character the font lacks would be drawn as a
blank or a box while the label still names it. So every font's character map (fontTools `cmap`) is
read once, and the renderer only draws a text with a font whose cmap has every one of its characters
and whose glyphs for them are not empty (`Font.draws`).

Defaults (DESIGN §7) are fonts that pip installs: DejaVu from matplotlib (Latin) and Noto Sans CJK
from the `cvttf-notosanscjk-*` packages (Hangul, and Latin too).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")

# Files under matplotlib/mpl-data/fonts/ttf used by default (Latin).
DEFAULT_DEJAVU = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
# pip packages each holding one Noto Sans CJK .otf (Hangul + Latin).
DEFAULT_NOTO_PACKAGES = ("cvttf_NotoSansCJK_Regular", "cvttf_NotoSansCJK_Bold", "cvttf_NotoSansCJK_Light")

# Fonts whose cmap claims characters they do not really draw, so a coverage check would pass and the
# image be wrong: LastResort maps every code point to a placeholder glyph ("this is a Hangul character");
# the BaKoMa Computer Modern fonts (cmr10, cmsy10, ...) map ASCII code points to TeX-encoded glyphs
# (cmsy10 draws math symbols for "abc"). matplotlib ships both beside DejaVu. Skipped in folders,
# refused as files.
UNRELIABLE_CMAP_FONTS = re.compile(r"^(LastResort.*|cm(b|ex|mi|r|ss|sy|ti|tt)10)\.(ttf|otf)$", re.IGNORECASE)

# Lowercase letters whose capital has another shape in any design with a lowercase. A design that draws them as
# capitals (all-caps and small-caps faces: Bebas Neue, Bungee, Cinzel, Permanent Marker) draws "open" as OPEN.
# Outlines are compared cut to their ink and scaled to one square: the median overlap (intersection over union) of
# these six pairs is 0.84 to 1.0 in the 5 such designs among the 500 faces of make pretrain's fonts that have them,
# at most 0.73 in the rest (heavy and condensed faces), so CASE_MATCH splits them.
CASE_LETTERS = "aegqrt"
CASE_MATCH = 0.8


class FontCoverageError(ValueError):
    """No available font covers some characters that must be rendered."""


@dataclass(frozen=True)
class Font:
    """One font face and the code points its cmap maps to a glyph.

    `index` is the face inside a collection (.ttc); 0 for plain font files. `name` is what the
    `font` column of a rendered dataset records (file name, plus `#index` for a collection face).
    """
    path: str
    index: int
    name: str
    codepoints: frozenset[int] = field(repr=False)

    def covers(self, text: str) -> bool:
        """True if every character of `text` (spaces included) is in this font's cmap."""
        return all(ord(char) in self.codepoints for char in text)

    def draws(self, text: str) -> bool:
        """covers(text), and every non-space character's glyph has ink: some fonts map characters they
        lack to an empty glyph, which would render as a silent gap."""
        return self.covers(text) and all(_has_ink(self.path, self.index, char) for char in set(text)
                                         if not char.isspace())

    def capitals_only(self) -> bool:
        """True if the font draws most lowercase Latin letters as capitals (or has none): a text drawn in it must be
        labelled in upper case, since its picture is."""
        return _draws_capitals(self.path, self.index)

    def missing(self, text: str) -> list[str]:
        """The distinct characters of `text` this font lacks or draws empty, in first-seen order."""
        return [char for char in dict.fromkeys(text) if ord(char) not in self.codepoints
                or not (char.isspace() or _has_ink(self.path, self.index, char))]


@lru_cache(maxsize=64)
def _probe_font(path: str, index: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, 32, index=index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=None)
def _has_ink(path: str, index: int, char: str) -> bool:
    return _probe_font(path, index).getmask(char).getbbox() is not None


def _ink_shape(font: ImageFont.FreeTypeFont, char: str, side: int = 48) -> np.ndarray | None:
    """A glyph's ink cut to its bounding box and scaled to side x side (bool), or None when it has no ink."""
    size = font.size
    image = Image.new("L", (3 * size, 3 * size), 0)
    ImageDraw.Draw(image).text((size, 2 * size), char, font=font, fill=255, anchor="ls")
    box = image.getbbox()
    if box is None:
        return None
    return np.asarray(image.crop(box).resize((side, side), Image.Resampling.BOX)) > 127


@lru_cache(maxsize=None)
def _draws_capitals(path: str, index: int) -> bool:
    font = ImageFont.truetype(path, 96, index=index, layout_engine=ImageFont.Layout.BASIC)
    overlaps = []
    for letter in CASE_LETTERS:
        lower, upper = _ink_shape(font, letter), _ink_shape(font, letter.upper())
        if lower is not None and upper is not None:  # a letter the font lacks is never drawn in it
            overlaps.append((lower & upper).sum() / (lower | upper).sum())
    return bool(overlaps) and float(np.median(overlaps)) >= CASE_MATCH


def default_font_files() -> list[Path]:
    """The default font files: DejaVu Sans/Sans Bold/Serif/Sans Mono and Noto Sans CJK Regular/Bold/Light.

    Raises FileNotFoundError naming the missing package when a default font is not installed.
    """
    files: list[Path] = []
    mpl_spec = importlib.util.find_spec("matplotlib")
    if mpl_spec is None or mpl_spec.origin is None:
        raise FileNotFoundError("the default DejaVu fonts come with matplotlib, which is not installed; "
                                "`pip install matplotlib` or pass --fonts FILES_OR_DIRS")
    ttf_dir = Path(mpl_spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    files += [ttf_dir / name for name in DEFAULT_DEJAVU]
    for package in DEFAULT_NOTO_PACKAGES:
        spec = importlib.util.find_spec(package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        found = sorted(p for folder in folders for p in Path(folder).iterdir() if p.suffix.lower() in FONT_SUFFIXES)
        if not found:
            raise FileNotFoundError(
                f"default font package {package!r} is not installed (it provides Noto Sans CJK for Hangul); "
                f"`pip install {package.lower().replace('_', '-')}==1.0` or pass --fonts FILES_OR_DIRS")
        files += found
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"default font files {missing} do not exist; reinstall matplotlib or pass --fonts")
    return files


def find_font_files(specs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand font files and folders (searched recursively for .ttf/.otf/.ttc/.otc) into sorted font files.

    Folder results are sorted so the font list, and so a seeded dataset, does not depend on the order the
    file system lists them. Raises FileNotFoundError for a path that does not exist or a folder with no fonts.
    """
    files: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            if UNRELIABLE_CMAP_FONTS.match(path.name):
                raise ValueError(f"font {str(path)!r} maps characters to glyphs that are not those characters "
                                 f"(a placeholder or TeX-encoded font), so its images would be mislabelled; "
                                 f"pass a Unicode text font instead")
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FONT_SUFFIXES
                           and not UNRELIABLE_CMAP_FONTS.match(p.name))
            if not found:
                raise FileNotFoundError(f"font folder {str(path)!r} holds no {'/'.join(FONT_SUFFIXES)} files")
            files += found
        else:
            raise FileNotFoundError(f"font path {str(path)!r} does not exist; pass font files or folders to --fonts")
    return list(dict.fromkeys(files))  # drop duplicates, keep order


@lru_cache(maxsize=64)
def _load_faces(path: str) -> tuple[Font, ...]:
    try:
        if path.lower().endswith((".ttc", ".otc")):
            collection = TTCollection(path, lazy=True)
            faces = list(collection.fonts)
        else:
            faces = [TTFont(path, lazy=True)]
    except Exception as error:  # fontTools raises many types for a corrupt file
        raise ValueError(f"font file {path!r} could not be read ({type(error).__name__}: {error}); "
                         f"pass a valid .ttf/.otf/.ttc") from None
    fonts = []
    for index, face in enumerate(faces):
        cmap = face.getBestCmap() or {}
        name = Path(path).name + (f"#{index}" if len(faces) > 1 else "")
        fonts.append(Font(path=str(path), index=index, name=name, codepoints=frozenset(cmap)))
    return tuple(fonts)


def load_fonts(specs: Sequence[str | os.PathLike] | None = None) -> list[Font]:
    """Fonts (every face of every file) for `specs` (files or folders), or the defaults when None/empty.

    A font whose cmap is empty is skipped with a warning; raises ValueError if nothing usable remains.
    """
    files = find_font_files(specs) if specs else default_font_files()
    fonts: list[Font] = []
    for file in files:
        for font in _load_faces(str(file)):
            if font.codepoints:
                fonts.append(font)
            else:
                logger.warning("font %s has no Unicode character map; skipped", font.name)
    if not fonts:
        raise ValueError(f"none of the font files {[str(f) for f in files]} has a Unicode character map")
    return fonts


def fonts_covering(fonts: Iterable[Font], text: str) -> list[Font]:
    """The fonts that draw every character of `text` (Font.draws)."""
    return [font for font in fonts if font.draws(text)]


def check_coverage(fonts: Sequence[Font], text: str) -> list[Font]:
    """Like fonts_covering, but raises FontCoverageError naming the characters no single font covers."""
    covering = fonts_covering(fonts, text)
    if not covering:
        best = min(fonts, key=lambda font: len(font.missing(text)))
        raise FontCoverageError(
            f"no font covers every character of {text!r}: the closest, {best.name}, lacks "
            f"{best.missing(text)!r}; add a font that has them (e.g. Noto Sans CJK for Hangul) with --fonts")
    return covering
