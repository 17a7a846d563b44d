"""The GPT token layout (DESIGN §3): the one place that turns texts and code grids into token ids.

Ids, in order::

    0 <s>   1 </s>   2 <pad>   3 <unk>          text specials
    4 .. 4+C-1                                  the C charset characters (sorted by code point)
    4+C <row>   5+C <vpad>                      image specials
    code_offset = 6+C .. code_offset+K-1        the K VQ-VAE codes
    code_offset+K <vertical>                    orientation mark of a drawing prompt
    .. size-1                                   unused tail: size is rounded up to a multiple of 64
                                                (tensor-core friendly); never produced, masked in decoding

A sequence is an image part (``max_visual_length`` ids: per grid row ``<row>`` then its codes, then
``<vpad>`` up to the length) and a text part (``max_text_length`` ids: ``<s>``, characters, ``</s>``,
``<pad>``...), image first for recognition and text first for the reverse (generation) model. A text-first
text part of vertical text starts with ``<vertical>`` in place of ``<s>``: every crop is a strip read along its
rows (DESIGN §2), so a reader needs no orientation, but a drawer must be told whether to draw upright glyphs
stacked (vertical) or a horizontal line turned a quarter.

Nothing else in the project computes an id: everything goes through `Vocab`.
"""
from __future__ import annotations

import json
import logging
import os
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

BOS, EOS, PAD, UNK, ROW, VPAD = "<s>", "</s>", "<pad>", "<unk>", "<row>", "<vpad>"
VERTICAL = "<vertical>"
TEXT_SPECIALS = (BOS, EOS, PAD, UNK)
CHARSET_VERSION = 1
SIZE_MULTIPLE = 64

# What `Vocab.sequence` marks each position with: which loss counts the token there as a
# next-token target (the token at position t is predicted from positions < t).
PART_IGNORE, PART_IMAGE, PART_TEXT = 0, 1, 2

ORDERS = ("image_first", "text_first")


class LabelTooLong(ValueError):
    """A label with more characters than the text part holds (max_text_length - 2)."""


class GridTooLong(ValueError):
    """A code grid needing more tokens (rows * (cols + 1)) than the image part holds."""


def code_token(code: int) -> str:
    """The string form of visual code `code` (for tokenizers and tables), e.g. `<c123>`."""
    return f"<c{code}>"


@dataclass(frozen=True)
class Vocab:
    """Token ids for one charset and one VQ-VAE codebook size. Build with `Vocab.build`, persist with
    `save`/`load` (charset.json)."""

    chars: tuple[str, ...]
    num_codes: int

    bos_id = 0
    eos_id = 1
    pad_id = 2
    unk_id = 3
    char_offset = len(TEXT_SPECIALS)
    bos_token, eos_token, pad_token, unk_token, row_token, vpad_token = BOS, EOS, PAD, UNK, ROW, VPAD

    def __post_init__(self) -> None:
        if self.num_codes < 1:
            raise ValueError(f"num_codes={self.num_codes}: the VQ-VAE codebook must have at least one code")
        bad = [c for c in self.chars if len(c) != 1]
        if bad:
            raise ValueError(f"charset entries must be single characters, got {bad[:5]!r}")
        if len(set(self.chars)) != len(self.chars):
            duplicated = sorted(c for c, n in Counter(self.chars).items() if n > 1)
            raise ValueError(f"charset has duplicated characters {duplicated[:10]!r}")

    # ------------------------------------------------------------------ construction and persistence
    @classmethod
    def build(cls, texts: Iterable[str], num_codes: int, base_charset: str | None = None) -> "Vocab":
        """The vocab of every character in `texts` (NFC) plus those of `base_charset` (a string of
        characters), sorted by code point so the same data always gives the same ids."""
        chars: set[str] = set(unicodedata.normalize("NFC", base_charset or ""))
        for text in texts:
            chars.update(unicodedata.normalize("NFC", text))
        return cls(tuple(sorted(chars)), int(num_codes))

    def to_dict(self) -> dict:
        """What charset.json and checkpoints store: enough to rebuild identical ids."""
        return {"version": CHARSET_VERSION, "chars": list(self.chars), "num_codes": self.num_codes,
                "size": self.size}

    @classmethod
    def from_dict(cls, data: dict, where: str = "<dict>") -> "Vocab":
        if data.get("version") != CHARSET_VERSION:
            raise ValueError(f"{where} has charset version {data.get('version')!r}; this code reads "
                             f"version {CHARSET_VERSION}. Retrain or convert the charset")
        try:
            vocab = cls(tuple(data["chars"]), int(data["num_codes"]))
        except KeyError as error:
            raise ValueError(f"{where} lacks the key {error}; a charset needs 'chars' and 'num_codes'") from None
        if "size" in data and int(data["size"]) != vocab.size:
            raise ValueError(f"{where} says size={data['size']} but its chars and num_codes give {vocab.size}; "
                             f"the file was edited by hand or written by another layout")
        return vocab

    def save(self, path: str | os.PathLike) -> None:
        """Write charset.json atomically."""
        from vqvae.plumbing.io import write_json_atomic  # file I/O lives in vqvae.plumbing.io

        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"charset file {str(path)!r} does not exist; it is written by "
                                    f"`python -m gpt.train` into the run folder and by gpt.export")
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f), str(path))

    # ------------------------------------------------------------------ layout
    @property
    def num_chars(self) -> int:
        return len(self.chars)

    @property
    def row_id(self) -> int:
        return self.char_offset + self.num_chars

    @property
    def vpad_id(self) -> int:
        return self.row_id + 1

    @property
    def code_offset(self) -> int:
        # Codes follow the text ids and the two image specials: [text | <row> | <vpad> | codes], so a
        # code id can never collide with a character id.
        return self.vpad_id + 1

    @property
    def code_end(self) -> int:
        """One past the last code id."""
        return self.code_offset + self.num_codes

    @property
    def vertical_id(self) -> int:
        # After the codes, so that adding it kept every earlier id (and the shipped models' weights) in place.
        return self.code_end

    @property
    def num_used(self) -> int:
        """Ids that can occur; ids in [num_used, size) are the unused tail."""
        return self.vertical_id + 1

    @property
    def size(self) -> int:
        return -(-self.num_used // SIZE_MULTIPLE) * SIZE_MULTIPLE

    # Aliases some callers use: the charset and the count of ids before rounding up.
    @property
    def charset(self) -> tuple[str, ...]:
        return self.chars

    @property
    def num_tokens(self) -> int:
        return self.num_used

    def char_id(self, char: str) -> int:
        """The id of one charset character; KeyError naming it if it is not in the charset."""
        try:
            return self._char_to_id[char]
        except KeyError:
            raise KeyError(f"character {char!r} is not in the charset ({self.num_chars} characters)") from None

    def code_id(self, code: int) -> int:
        """The id of visual code `code` in [0, num_codes)."""
        if not 0 <= code < self.num_codes:
            raise ValueError(f"code {code} is outside the codebook [0, {self.num_codes})")
        return self.code_offset + int(code)

    @cached_property
    def _char_to_id(self) -> dict[str, int]:
        return {c: i + self.char_offset for i, c in enumerate(self.chars)}

    @cached_property
    def text_token_ids(self) -> torch.Tensor:
        """(C+1,) int64: the ids recognition may output after <s>: every character and </s>
        (not <unk>, <pad>, image ids or the unused tail)."""
        return torch.cat([torch.tensor([self.eos_id]),
                          torch.arange(self.char_offset, self.char_offset + self.num_chars)])

    @cached_property
    def image_token_ids(self) -> torch.Tensor:
        """(K+2,) int64: the ids an image part may hold: <row>, <vpad> and every code."""
        return torch.arange(self.row_id, self.code_end)

    def tokens(self) -> list[str]:
        """The string of every id, index = id (length `size`), e.g. to build a tokenizer: specials,
        single characters, <row>, <vpad>, <code_k>, <vertical>, then <unused_i> for the tail."""
        return [*TEXT_SPECIALS, *self.chars, ROW, VPAD, *(code_token(k) for k in range(self.num_codes)), VERTICAL,
                *(f"<unused_{i}>" for i in range(self.size - self.num_used))]

    def is_code(self, ids: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Elementwise: is this id a visual code."""
        return (ids >= self.code_offset) & (ids < self.code_end)

    # ------------------------------------------------------------------ text
    def encode_text(self, text: str) -> tuple[list[int], int]:
        """Character ids of `text` (NFC; no specials) and how many characters became <unk>."""
        lookup, unk = self._char_to_id, self.unk_id
        ids = [lookup.get(c, unk) for c in unicodedata.normalize("NFC", text)]
        return ids, ids.count(unk)

    def decode_text(self, ids: Iterable[int]) -> str:
        """Characters of `ids` up to the first </s>; other specials, image ids and unused ids are skipped."""
        out = []
        for i in (int(i) for i in ids):
            if i == self.eos_id:
                break
            if self.char_offset <= i < self.row_id:
                out.append(self.chars[i - self.char_offset])
        return "".join(out)

    def text_part(self, text: str, max_text_length: int, vertical: bool = False) -> list[int]:
        """<s> chars </s> <pad>... of exactly `max_text_length` ids (<vertical> in place of <s> for a
        drawing prompt of vertical text); LabelTooLong if the text has more than max_text_length - 2
        characters."""
        ids, _ = self.encode_text(text)
        if len(ids) > max_text_length - 2:
            raise LabelTooLong(f"label {text[:40]!r} has {len(ids)} characters but max_text_length="
                               f"{max_text_length} holds {max_text_length - 2} (2 go to <s> and </s>); "
                               f"raise data.max_text_length or set data.skip_too_long=true")
        start = self.vertical_id if vertical else self.bos_id
        return [start, *ids, self.eos_id] + [self.pad_id] * (max_text_length - 2 - len(ids))

    # ------------------------------------------------------------------ image
    def _check_grid(self, grid: np.ndarray) -> np.ndarray:
        grid = np.asarray(grid)
        if grid.ndim != 2:
            raise ValueError(f"a code grid must be a non-empty 2-D integer array, got {grid.dtype} {grid.shape}")
        return self._check_codes(grid).astype(np.int64)

    def _check_codes(self, grids: np.ndarray) -> np.ndarray:
        """`grids` (any shape) itself, after checking that it is non-empty and holds codes of this codebook."""
        if grids.size == 0 or not np.issubdtype(grids.dtype, np.integer):
            raise ValueError(f"a code grid must be a non-empty 2-D integer array, got {grids.dtype} {grids.shape}")
        low, high = int(grids.min()), int(grids.max())
        if low < 0 or high >= self.num_codes:
            raise ValueError(f"code grid holds codes in [{low}, {high}] but the codebook has {self.num_codes} "
                             f"codes; the tokens come from another VQ-VAE than this model's")
        return grids

    def image_prefix(self, grid: np.ndarray) -> list[int]:
        """Per row <row> then the row's code ids; no <vpad> (rows * (cols + 1) ids)."""
        grid = self._check_grid(grid)
        rows = np.concatenate([np.full((grid.shape[0], 1), self.row_id), grid + self.code_offset], axis=1)
        return rows.reshape(-1).tolist()

    def image_part(self, grid: np.ndarray, max_visual_length: int) -> list[int]:
        """`image_prefix` padded with <vpad> to `max_visual_length` ids; GridTooLong if it does not fit."""
        ids = self.image_prefix(grid)
        if len(ids) > max_visual_length:
            rows, cols = np.asarray(grid).shape
            raise GridTooLong(f"a {rows}x{cols} code grid needs {len(ids)} tokens (one <row> per row) but "
                              f"max_visual_length={max_visual_length}; set data.max_visual_length >= the "
                              f"encoder's max_length or set data.skip_too_long=true")
        return ids + [self.vpad_id] * (max_visual_length - len(ids))

    # ------------------------------------------------------------------ sequences
    def sequence(self, grid: np.ndarray, text: str, order: str, max_visual_length: int,
                 max_text_length: int) -> tuple[np.ndarray, np.ndarray]:
        """One training sequence: ids (L,) int32 and part (L,) int8, L = max_visual_length + max_text_length.

        ``part[t]`` says which loss counts ids[t] as a next-token target: PART_IMAGE, PART_TEXT or
        PART_IGNORE. Ignored: text <pad> (never counts), every <vpad> after the first, and ids[0].
        The first <vpad> counts because it is the end-of-image signal a generator must learn; the rest
        are a fixed run of padding whose loss would be near zero and only dilute the image loss.
        """
        ids, part = self.sequences([grid], [text], order, max_visual_length, max_text_length)
        return ids[0], part[0]

    def sequences(self, grids: Sequence[np.ndarray], texts: Sequence[str], order: str, max_visual_length: int,
                  max_text_length: int, vertical: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`sequence` for many rows at once: ids (N, L) int32 and part (N, L) int8. Grids of one shape
        are laid out together (one numpy op per shape, not per row). `vertical` (N,) marks the text part of
        text-first rows of vertical text with <vertical> (ignored for image_first: a reader needs no
        orientation). Raises LabelTooLong/GridTooLong naming the row index; filter rows first to skip
        them instead."""
        if order not in ORDERS:
            raise ValueError(f"order={order!r} is not one of {ORDERS}")
        if len(grids) != len(texts):
            raise ValueError(f"{len(grids)} grids but {len(texts)} texts")
        num = len(texts)
        # One int32 array written in place (every text row is written below): int64 parts joined by np.concatenate
        # doubled gpt.train's peak while building its data (scripts/bench_data_memory.py: 3 617 MB, now 1 756).
        ids = np.empty((num, max_visual_length + max_text_length), dtype=np.int32)
        part = np.empty(ids.shape, dtype=np.int8)
        image_first = order == "image_first"
        image = slice(0, max_visual_length) if image_first else slice(max_text_length, None)
        text = slice(max_visual_length, None) if image_first else slice(0, max_text_length)
        image_ids, image_part = ids[:, image], part[:, image]
        image_ids.fill(self.vpad_id)
        image_part.fill(PART_IGNORE)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, grid in enumerate(grids):
            by_shape.setdefault(np.shape(grid), []).append(index)
        for shape, indices in by_shape.items():
            if len(shape) != 2 or 0 in shape:
                raise ValueError(f"row {indices[0]}: a code grid must be a non-empty 2-D array, got shape {shape}")
            rows, cols = shape
            length = rows * (cols + 1)
            if length > max_visual_length:
                try:
                    self.image_part(np.zeros(shape, dtype=np.int64), max_visual_length)
                except GridTooLong as error:
                    raise GridTooLong(f"row {indices[0]}: {error}") from None
            stacked = np.stack([np.asarray(grids[i]) for i in indices])
            try:
                self._check_codes(stacked)
            except ValueError as error:
                raise ValueError(f"rows with {rows}x{cols} grids (first: row {indices[0]}): {error}") from None
            laid = np.empty((len(indices), rows, cols + 1), dtype=np.int32)
            laid[:, :, 0] = self.row_id
            laid[:, :, 1:] = stacked
            laid[:, :, 1:] += self.code_offset
            image_ids[indices, :length] = laid.reshape(len(indices), length)
            image_part[indices, :length] = PART_IMAGE
            if length < max_visual_length:
                image_part[indices, length] = PART_IMAGE  # the first <vpad>: end of image

        text_ids = ids[:, text]
        for index, label in enumerate(texts):
            try:
                text_ids[index] = self.text_part(label, max_text_length)
            except LabelTooLong as error:
                raise LabelTooLong(f"row {index}: {error}") from None
        if order == "text_first" and vertical is not None:
            if len(vertical) != num:
                raise ValueError(f"{num} texts but {len(vertical)} orientation flags")
            text_ids[np.asarray(vertical, dtype=bool), 0] = self.vertical_id
        # <s>, the characters and </s> count; <pad> never does.
        part[:, text] = np.where(text_ids == self.pad_id, PART_IGNORE, PART_TEXT)
        part[:, 0] = PART_IGNORE  # nothing predicts the first token
        return ids, part

    def trim_image_padding(self, ids: torch.Tensor,
                           max_visual_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Recognition (image_first) ids (B, L) -> (ids without the <vpad> columns every row holds after its
        image, (n,) position ids of the kept columns, (B, n) attention mask: 0 on the <vpad> left).

        The text keeps its positions (from max_visual_length on) and no token attends to padding, so a row
        reads exactly as it would alone or untrimmed, whatever else is in the batch; the longest image keeps
        its first <vpad> (the end-of-image target). Short crops then cost only their own tokens."""
        content = int((ids[:, :max_visual_length] != self.vpad_id).sum(dim=1).max()) if ids.shape[0] else 0
        keep = min(content + 1, max_visual_length)
        positions = torch.cat([torch.arange(keep), torch.arange(max_visual_length, ids.shape[1])]).to(ids.device)
        kept = ids[:, positions]
        return kept, positions, (kept != self.vpad_id).long()

    def split(self, ids: np.ndarray, order: str, max_visual_length: int,
              max_text_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(..., L) sequence ids -> (image part (..., V), text part (..., T))."""
        if order == "image_first":
            return ids[..., :max_visual_length], ids[..., max_visual_length:max_visual_length + max_text_length]
        if order == "text_first":
            return ids[..., max_text_length:max_text_length + max_visual_length], ids[..., :max_text_length]
        raise ValueError(f"order={order!r} is not one of {ORDERS}")

    # ------------------------------------------------------------------ generated image parts
    def parse_grid(self, ids: Iterable[int]) -> tuple[np.ndarray, list[str]]:
        """Generated image-part ids -> (rows, cols) int64 grid of codes in [0, num_codes), plus notes on
        every repair made (empty list when the ids were well formed).

        <row> starts a row and the first <vpad> ends the image. Rows are made rectangular at the most
        frequent row width (ties: the wider): longer rows are cut, shorter ones padded by repeating their
        last code. Text ids and unused ids are skipped and reported. ValueError if no code is found.
        """
        rows: list[list[int]] = []
        notes: list[str] = []
        stray: Counter[str] = Counter()
        for position, i in enumerate(int(i) for i in ids):
            if i == self.vpad_id:
                break
            if i == self.row_id:
                rows.append([])
            elif self.code_offset <= i < self.code_end:
                if not rows:
                    notes.append(f"codes before the first <row> at position {position}: started a row")
                    rows.append([])
                rows[-1].append(i - self.code_offset)
            elif 0 <= i < self.row_id:
                stray["text id"] += 1
            else:
                stray["out-of-range id"] += 1
        for kind, count in sorted(stray.items()):
            notes.append(f"ignored {count} {kind}(s) inside the image part")
        empty = sum(1 for row in rows if not row)
        if empty:
            notes.append(f"dropped {empty} empty row(s)")
            rows = [row for row in rows if row]
        if not rows:
            raise ValueError("the generated image part holds no visual code; nothing to decode "
                             "(the model ended the image at once: sample again or check the prompt)")
        widths = Counter(len(row) for row in rows)
        width = max(widths, key=lambda w: (widths[w], w))
        fixed = []
        for index, row in enumerate(rows):
            if len(row) > width:
                notes.append(f"row {index}: cut from {len(row)} to {width} codes")
                row = row[:width]
            elif len(row) < width:
                notes.append(f"row {index}: padded from {len(row)} to {width} codes by repeating its last code")
                row = row + [row[-1]] * (width - len(row))
            fixed.append(row)
        return np.array(fixed, dtype=np.int64), notes
