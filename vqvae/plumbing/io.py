"""File I/O shared by every command: labelled CSVs, images, atomic writes and bad-row reports.

Kept apart from the model files so a model runs in a notebook with no file system.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

import cv2
import numpy as np
import pandas as pd
from PIL import Image

REQUIRED_COLUMNS = ("img_path", "text")

# No image larger than this is decoded: its header is read first, and a larger image (a huge scan, or a
# decompression bomb: a small file whose header claims a huge image) is an ImageTooLargeError, so a reported
# bad row. 40 MP is a 7300x5500 page; text crops are far smaller. The environment variable overrides it (read
# by max_image_pixels, so DataLoader workers and torchrun processes inherit it).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_PIXELS_ENV = "OCR_MAX_IMAGE_PIXELS"


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or unusable (names the path and the reason)."""


class ImageTooLargeError(ImageReadError):
    """An image over the pixel limit (`max_image_pixels`): refused from its header, never decoded."""


def max_image_pixels() -> int:
    """The pixel limit on decoded images: $OCR_MAX_IMAGE_PIXELS if set, else DEFAULT_MAX_IMAGE_PIXELS."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"{MAX_IMAGE_PIXELS_ENV}={raw!r} is not a positive whole number of pixels "
                         f"(e.g. {MAX_IMAGE_PIXELS_ENV}=100000000 for 100 MP); unset it for the default "
                         f"{DEFAULT_MAX_IMAGE_PIXELS:,}")
    return limit


@contextmanager
def _header_only() -> Iterator[None]:
    """Pillow's decompression-bomb check off while `Image.open` reads a header, restored right after.

    Image.open reads only the header, yet refuses an image over twice Pillow's MAX_IMAGE_PIXELS before its
    size is known, so the caller could not name the size or apply its own, configurable limit. Nothing is
    decoded in this scope, and the caller checks the size against max_image_pixels() at once. Scoped, never
    set at import: that would change every other Pillow user in the process (images are read by one thread
    per process here: DataLoader workers are processes). Pixels are decoded by OpenCV, after the check.
    """
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def image_header_size(source: str | os.PathLike | IO[bytes], name: str | None = None) -> tuple[int, int]:
    """(width, height) of an image file or stream from its header alone (no pixels decoded).

    Raises ImageReadError naming the image (`name`, default the path) when the header cannot be read, and
    ImageTooLargeError when the image has more than `max_image_pixels()` pixels.
    """
    name = str(source) if name is None else name
    limit = max_image_pixels()
    try:
        with _header_only(), Image.open(source) as image:
            width, height = image.size
    except Exception as error:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError...)
        raise ImageReadError(f"image {name!r} could not be read ({type(error).__name__}: {error})") from None
    if width * height > limit:
        raise ImageTooLargeError(
            f"image {name!r} is {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} "
            f"(a huge image or a decompression bomb; not decoded). To read it, set the environment variable "
            f"{MAX_IMAGE_PIXELS_ENV} to a larger number of pixels")
    return width, height


def decode_image(data: bytes | np.ndarray, name: str = "<bytes>") -> np.ndarray:
    """The bytes of an image file (PNG, JPEG, ...: bytes or a uint8 array) -> RGB uint8 (H, W, 3), converted
    as `load_image` converts a file, after checking the header against the pixel limit. Raises ImageReadError
    naming `name` if it is empty, too large or cannot be decoded."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if not buffer.size:
        raise ImageReadError(f"image {name!r} is empty (0 bytes)")
    try:
        image_header_size(io.BytesIO(buffer), name)
    except ImageTooLargeError:
        raise
    except ImageReadError:
        raise ImageReadError(f"image {name!r} could not be decoded (corrupt or not an image)") from None
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # a few decoders raise instead of returning None
        raise ImageReadError(f"image {name!r} could not be decoded ({error.err})") from None
    if image is None:
        raise ImageReadError(f"image {name!r} could not be decoded (corrupt or not an image)")
    return to_rgb_uint8(image, name)


def normalize_text(text: str) -> str:
    """NFC, never NFKD: NFKD splits Hangul syllables into jamo."""
    return unicodedata.normalize("NFC", text)


def read_labelled_csv(path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Read a labelled CSV (DESIGN §1): UTF-8, header row, at least `img_path,text`.

    Returns the frame with every column as read (extra columns carried through), `text` NFC-normalized
    and a column `abs_path` holding each image path resolved against the CSV's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset CSV {str(path)!r} does not exist; render one with "
                                f"`python -m scripts.render_text --output DIR` or pass an existing file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 ({error}); re-save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: a labelled CSV needs a header row `img_path,text` "
                         f"and at least one row") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing}; found {list(frame.columns)}. "
                         f"A labelled CSV needs a header with {list(required)}")
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no rows: nothing to process")
    if "text" in frame.columns:
        frame["text"] = frame["text"].map(normalize_text)
    if "img_path" in frame.columns:
        root = path.resolve().parent
        frame["abs_path"] = [str(p if os.path.isabs(p) else root / p) for p in frame["img_path"]]
    return frame


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as RGB uint8 (H, W, 3).

    Grayscale, RGBA (composited on white), palette and 16-bit images are converted. Raises
    ImageReadError naming the file for a missing, unreadable, empty or degenerate (< 2 px) image, and for
    one over the pixel limit (`max_image_pixels`), which is never decoded.
    """
    path = str(path)
    if not os.path.exists(path):
        raise ImageReadError(f"image {path!r} does not exist")
    return decode_image(np.fromfile(path, dtype=np.uint8), path)  # np.fromfile + imdecode: non-ASCII paths work


def to_rgb_uint8(image: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Convert a decoded OpenCV array (gray, BGR, BGRA; uint8/uint16/float) to RGB uint8."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(f"image {name!r} has {image.shape[2]} channels; expected 1, 3 or 4")
    height, width = image.shape[:2]
    if height < 2 or width < 2:
        raise ImageReadError(f"image {name!r} is {width}x{height} pixels; a crop needs at least 2x2")
    return np.ascontiguousarray(image)


def save_image(path: str | os.PathLike, image_rgb: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or grey (H, W) uint8 image atomically; the format follows the suffix (.png, .jpg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", pixels)
    if not ok:
        raise ValueError(f"could not encode an image for {path}")
    with atomic_path(path) as tmp:
        encoded.tofile(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8")


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")


@dataclass
class BadRowReport:
    """Collects rows a job could not process, so none is dropped silently.

    Written as CSV `row,img_path,reason` beside the output (`<output>.bad.csv`).
    """
    rows: list[dict] = field(default_factory=list)

    def add(self, row: int | str, img_path: str, reason: str) -> None:
        self.rows.append({"row": row, "img_path": img_path, "reason": reason})

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, path: str | os.PathLike) -> Path | None:
        """Write the report if any row failed (removing a stale one otherwise); returns its path or None."""
        path = Path(path)
        if not self.rows:
            if path.exists():
                path.unlink()
            return None
        write_csv_atomic(pd.DataFrame(self.rows, columns=["row", "img_path", "reason"]), path)
        return path


def report_path_for(output: str | os.PathLike) -> Path:
    """Where the bad-row report of a job writing `output` goes."""
    return Path(str(output) + ".bad.csv")
