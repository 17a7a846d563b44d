"""The pixel limit on every decoded image: an image over it, or a decompression bomb, is refused from its
header (never decoded) and reported as a bad row by the encoding and reading commands."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import vqvae.plumbing.io
from gpt.read import main as read_main
from tests.test_bad_inputs_vqvae import run_encode
from tests.test_encode_decode import make_tiny_run, write_crops, write_labels
from tests.test_export import build_export
from vqvae.data import read_image_size
from vqvae.plumbing.io import (DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV, ImageReadError, ImageTooLargeError,
                      decode_image, load_image, max_image_pixels)

SIDE = 20_000  # 400 MP claimed: 10x the default limit, 4.5x Pillow's own default


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb(path: Path, side: int = SIDE) -> Path:
    """A valid, all-black 1-bit grayscale PNG of side x side pixels: ~50 MB of rows that zlib packs into
    ~50 KB; decoded to 8 bits it would take side^2 bytes (400 MB)."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # width, height, depth 1, gray
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
                     + png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = write_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")
    assert path.stat().st_size < 200_000
    return path


@pytest.fixture
def never_decoded(monkeypatch, bomb):
    """cv2.imdecode as before, except that it fails the test if handed the bomb's bytes."""
    size, decode = bomb.stat().st_size, cv2.imdecode

    def guarded(buffer, flags):
        assert len(buffer) != size, "the decompression bomb reached the decoder"
        return decode(buffer, flags)

    monkeypatch.setattr(vqvae.plumbing.io.cv2, "imdecode", guarded)


def test_bomb_is_refused_from_its_header(bomb, never_decoded, monkeypatch):
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)
    for read in (load_image, read_image_size, lambda path: decode_image(path.read_bytes(), str(path))):
        with pytest.raises(ImageTooLargeError) as error:
            read(bomb)
        message = str(error.value)
        assert f"{SIDE}x{SIDE}" in message and f"{DEFAULT_MAX_IMAGE_PIXELS:,}" in message
        assert MAX_IMAGE_PIXELS_ENV in message and "bomb.png" in message
    assert isinstance(error.value, ImageReadError)  # so every job reports it as a bad row


def test_limit_comes_from_the_environment(bomb, tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "500_000_000")
    assert read_image_size(str(bomb)) == (SIDE, SIDE)  # the header only: nothing is decoded
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((20, 30, 3), np.uint8))
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "500")
    with pytest.raises(ImageTooLargeError, match=r"30x20 = 600 pixels, over the limit of 500"):
        load_image(small)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_IMAGE_PIXELS_ENV}='lots'"):
        max_image_pixels()


def test_pillow_keeps_its_own_guard(bomb):
    """Importing the project no longer switches Pillow's guard off, and reading a header leaves it as it was."""
    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    with pytest.raises(ImageTooLargeError):
        read_image_size(str(bomb))
    assert Image.MAX_IMAGE_PIXELS == before


def test_encode_reports_the_bomb_as_a_bad_row(bomb, never_decoded, tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)
    data = tmp_path / "data"
    names = write_crops(data, 4)
    (data / "bomb.png").write_bytes(bomb.read_bytes())
    labels = write_labels(data, names[:2] + ["bomb.png"] + names[2:])
    output = tmp_path / "tokens.csv"
    assert run_encode(make_tiny_run(tmp_path / "run"), labels, output) == 1
    assert pd.read_csv(output)["img_path"].tolist() == names
    report = pd.read_csv(str(output) + ".bad.csv")
    assert report["row"].tolist() == [2] and report["img_path"].tolist() == ["bomb.png"]
    assert f"{SIDE}x{SIDE}" in report["reason"][0] and MAX_IMAGE_PIXELS_ENV in report["reason"][0]


def test_read_reports_the_bomb_as_a_bad_row(bomb, never_decoded, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)
    folder = tmp_path / "crops"
    write_crops(folder, 2)
    (folder / "bomb.png").write_bytes(bomb.read_bytes())
    output = tmp_path / "read.csv"
    model_dir = build_export(tmp_path / "model")
    assert read_main([str(model_dir), str(folder), "--output", str(output), "--no-progress",
                      "--num-workers", "0"]) == 1
    assert len(pd.read_csv(output)) == 2
    report = pd.read_csv(str(output) + ".bad.csv")
    assert report["img_path"].str.endswith("bomb.png").tolist() == [True]
    assert f"{SIDE}x{SIDE}" in report["reason"][0]
    assert "1 of 3 image(s) could not be read" in capsys.readouterr().err
