"""gt_to_csv on ground-truth files written here: tab, ICDAR and bad lines."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from scripts.gt_to_csv import LineFormatError, gt_to_csv, main, parse_line
from vqvae.plumbing.io import read_labelled_csv


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((8, 20, 3), 200, np.uint8))


@pytest.mark.parametrize("line, expected", [
    ("a.png\tHello, world", ("a.png", "Hello, world")),
    ("a.png\t\"quoted\"\tand tab", ("a.png", "\"quoted\"\tand tab")),
    ('word_1.png, "Genaxis Theatre"', ("word_1.png", "Genaxis Theatre")),
    ('word_2.png, "say \\"hi\\", then go"', ("word_2.png", 'say "hi", then go')),
    ('word_3.png,"a ""b"" c"', ("word_3.png", 'a "b" c')),
    ('word_4.png, "back\\\\slash"', ("word_4.png", "back\\slash")),
    ("word_5.png, PROPER", ("word_5.png", "PROPER")),
    ("word_6.png  two words", ("word_6.png", "two words")),
])
def test_parse_line_formats(line, expected):
    assert parse_line(line) == expected


def test_parse_line_errors():
    with pytest.raises(LineFormatError, match="no separator"):
        parse_line("lonely.png")
    with pytest.raises(LineFormatError, match="a tab"):
        parse_line('a.png, "text"', "tab")


def make_gt(root: Path) -> Path:
    """images/ beside the GT file, plus every kind of bad line."""
    for name in ("a.png", "b.png", "c d.png", "sub/e.png"):
        write_image(root / "images" / name)
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    nfd = unicodedata.normalize("NFD", "한국")
    lines = [
        "\ufeffimages/a.png\tHello, world".encode(),      # BOM + tab
        f'images/b.png, "{nfd}, \\"ok\\""'.encode(),     # ICDAR, NFD text with a comma and quotes
        b"images/c d.png\tspace in path",
        b"images\\sub\\e.png, plain",                       # Windows separators
        b"",                                                # blank: ignored
        b"images/missing.png\tgone",
        b"images/a.png\tHello, world",                     # duplicate (expected)
        b"images/a.png\tanother text",                     # conflicting label
        b"images/bad.png\tcaf\xe9",                        # not UTF-8
        b"justapath",                                       # unparsable
        b"images/b.png\t",                                  # empty text (checked before duplicates)
        b"images/corrupt.png\tbroken",
    ]
    gt = root / "gt.txt"
    gt.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return gt


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_converts_and_reports(tmp_path, capsys):
    gt = make_gt(tmp_path / "icdar")
    out = tmp_path / "csvs" / "test.csv"      # another folder: paths must be rewritten
    assert main([str(gt), "--output", str(out)]) == 1

    frame = read_labelled_csv(out)            # the project's reader resolves every image
    assert list(frame["text"]) == ["Hello, world", '한국, "ok"', "space in path", "plain", "broken"]
    assert frame["img_path"][0] == "../icdar/images/a.png"
    assert all(os.path.isfile(p) for p in frame["abs_path"])
    report = read(Path(str(out) + ".bad.csv"))
    assert report["reason"].str.split(":").str[0].tolist() == [
        "missing_image", "duplicate", "conflicting_label", "not_decodable", "unparsable_line", "empty_text"]
    assert report["row"].tolist() == [f"{gt}:{n}" for n in (6, 7, 8, 9, 10, 11)]
    printed = capsys.readouterr().out
    assert "kept 5 rows" in printed and "skipped 6 (5 for errors)" in printed


def test_verify_image_root_absolute_and_rerun(tmp_path):
    gt = make_gt(tmp_path / "icdar")
    moved = tmp_path / "elsewhere" / "gt.txt"
    moved.parent.mkdir()
    moved.write_bytes(gt.read_bytes())
    out = tmp_path / "out.csv"
    summary = gt_to_csv([moved], out, image_root=str(tmp_path / "icdar"), absolute=True, verify=True)
    assert summary.kept == 4 and summary.skipped["unreadable_image"] == 1
    frame = read(out)
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in frame["img_path"])
    first = out.read_bytes()
    gt_to_csv([moved], out, image_root=str(tmp_path / "icdar"), absolute=True, verify=True)
    assert out.read_bytes() == first          # re-run: same rows, none duplicated


def test_several_files_and_encoding(tmp_path):
    write_image(tmp_path / "one" / "x.png")
    write_image(tmp_path / "two" / "x.png")    # same name, another folder: a different image
    (tmp_path / "one" / "gt.txt").write_text("x.png\t하나\n", encoding="utf-8")
    (tmp_path / "two" / "gt.txt").write_bytes("x.png\t둘\n".encode("cp949"))
    out = tmp_path / "all.csv"
    assert main([str(tmp_path / "one" / "gt.txt"), str(tmp_path / "two" / "gt.txt"),
                 "--output", str(out)]) == 1       # the cp949 line is not UTF-8
    assert main([str(tmp_path / "two" / "gt.txt"), "--output", str(out), "--encoding", "cp949"]) == 0
    assert read(out).to_dict("records") == [{"img_path": "two/x.png", "text": "둘"}]
    assert not Path(str(out) + ".bad.csv").exists()   # the stale report of the failed run is removed


def test_bad_arguments(tmp_path, capsys):
    assert main([str(tmp_path / "none.txt"), "--output", str(tmp_path / "o.csv")]) == 2
    assert "none.txt" in capsys.readouterr().err
    (tmp_path / "gt.txt").write_text("a.png\tx\n", encoding="utf-8")
    assert main([str(tmp_path / "gt.txt"), "--output", str(tmp_path / "o.csv"), "--encoding", "nope"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "ICDAR" in capsys.readouterr().out
