"""prepare_aihub on a small AIHub-style fixture built here, bad cases included."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from scripts.convert_common import distinct_names
from scripts.prepare_aihub import AihubOptions, crop_box, main, prepare_aihub
from vqvae.plumbing.io import load_image


def gradient(width: int, height: int) -> np.ndarray:
    """RGB uint8 whose pixel (y, x) encodes its position, so a crop shows where it came from."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, (xs + ys) % 256], axis=-1).astype(np.uint8)


def write_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def make_category(root: Path, name: str = "signs") -> tuple[Path, Path]:
    """JSON_DIR, IMAGE_DIR of one category with every kind of good and bad annotation."""
    json_dir, image_dir = root / name, root / f"{name}-images"
    write_rgb(image_dir / "wide.png", gradient(100, 60))
    write_rgb(image_dir / "sub" / "tall.png", gradient(40, 200))    # found by base name
    (image_dir / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    nfd = unicodedata.normalize("NFD", "한글")
    data = {
        "images": [
            {"id": 1, "file_name": "wide.png", "width": 100, "height": 60},
            {"id": 2, "file_name": "gone.png", "width": 50, "height": 50},
            {"id": 3, "file_name": "corrupt.jpg", "width": 50, "height": 50},
            {"id": 4, "file_name": "tall.png", "width": 40, "height": 200},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [10, 10, 30, 20], "text": "안녕"},       # kept
            {"id": 11, "image_id": 1, "bbox": [0, 0, 5, 5], "text": "xxx"},           # illegible
            {"id": 12, "image_id": 1, "bbox": None, "text": "abc"},                   # null box
            {"id": 13, "image_id": 1, "bbox": [90, 50, 20, 20], "text": "끝"},        # clipped to 10x10
            {"id": 14, "image_id": 1, "bbox": [200, 200, 10, 10], "text": "밖"},      # outside
            {"id": 15, "image_id": 2, "bbox": [0, 0, 10, 10], "text": "없음"},        # missing image
            {"id": 16, "image_id": 3, "bbox": [0, 0, 10, 10], "text": "깨짐"},        # corrupt image
            {"id": 17, "image_id": 4, "bbox": [5, 10, 20, 150], "text": nfd},         # vertical, NFD text
        ],
    }
    json_dir.mkdir(parents=True)
    (json_dir / "part1.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return json_dir, image_dir


def read_rows(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)


def report(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "labels.csv.bad.csv", dtype=str, keep_default_na=False)


def test_crops_counts_and_report(tmp_path, capsys):
    json_dir, image_dir = make_category(tmp_path / "data")
    out = tmp_path / "out"
    assert main([str(json_dir), str(image_dir), "--output", str(out)]) == 1   # errors were skipped

    rows = read_rows(out)
    assert list(rows["text"]) == ["안녕", "끝", "한글"]
    assert unicodedata.is_normalized("NFC", rows["text"][2])
    assert list(rows["orientation"]) == ["horizontal", "horizontal", "vertical"]
    assert list(rows["bbox"]) == ["10 10 30 20", "90 50 10 10", "5 10 20 150"]
    assert set(rows["category"]) == {"signs"} and set(rows["source"]) == {"signs/part1.json"}
    source = gradient(100, 60)
    for path, (x, y, w, h) in zip(rows["img_path"][:2], [(10, 10, 30, 20), (90, 50, 10, 10)]):
        crop = load_image(out / path)
        assert crop.shape == (h, w, 3)
        np.testing.assert_array_equal(crop, source[y:y + h, x:x + w])
    assert load_image(out / rows["img_path"][2]).shape == (150, 20, 3)

    reasons = report(out)["reason"].str.split(":").str[0].tolist()
    assert sorted(reasons) == sorted(["illegible", "null_bbox", "clipped (kept)", "bbox_outside_image",
                                      "missing_image", "unreadable_image"])
    printed = capsys.readouterr().out
    assert "kept 3 crops" in printed and "skipped 5 (4 for errors)" in printed
    assert "illegible" in printed and "(expected)" in printed


def test_rerun_is_idempotent(tmp_path):
    json_dir, image_dir = make_category(tmp_path / "data")
    out = tmp_path / "out"
    main([str(json_dir), str(image_dir), "--output", str(out)])
    first_csv = (out / "labels.csv").read_bytes()
    first_files = sorted(p.relative_to(out) for p in (out / "images").rglob("*"))
    main(["--pair", str(json_dir), str(image_dir), "--output", str(out)])
    assert (out / "labels.csv").read_bytes() == first_csv
    assert sorted(p.relative_to(out) for p in (out / "images").rglob("*")) == first_files
    assert len(first_files) == 4  # the category folder and 3 crops, no temp files left


def test_out_of_bounds_skip_and_duplicate_pair(tmp_path):
    json_dir, image_dir = make_category(tmp_path / "data")
    out = tmp_path / "out"
    summary = prepare_aihub([(json_dir, image_dir), (json_dir, image_dir)], out,
                            AihubOptions(out_of_bounds="skip"))
    assert summary.kept == 2 and len(read_rows(out)) == 2
    assert summary.skipped["bbox_out_of_bounds"] == 1
    assert sum(summary.skipped.values()) == 6      # the pair given twice is processed once
    assert not any(row["reason"].startswith("clipped") for row in summary.report.rows)

    (tmp_path / "other-images").mkdir()   # one JSON folder with two image folders: crops made once
    summary = prepare_aihub([(json_dir, image_dir), (json_dir, tmp_path / "other-images")], out)
    assert summary.kept == 3 and summary.skipped["duplicate"] == 6 and summary.exit_code == 1
    assert "duplicate" not in summary.error_reasons


def test_only_expected_skips_exit_zero(tmp_path):
    json_dir, image_dir = tmp_path / "j", tmp_path / "i"
    write_rgb(image_dir / "a.png", gradient(30, 30))
    json_dir.mkdir()
    (json_dir / "a.json").write_text(json.dumps({
        "images": [{"id": 0, "file_name": "a.png", "width": 30, "height": 30}],
        "annotations": [{"image_id": 0, "bbox": [0, 0, 10, 10], "text": "ok"},
                        {"image_id": 0, "bbox": [0, 0, 10, 10], "text": " xxx "}]}), encoding="utf-8")
    out = tmp_path / "out"
    assert main([str(json_dir), str(image_dir), "--output", str(out)]) == 0
    assert list(read_rows(out)["text"]) == ["ok"]


def test_several_categories_workers_and_merge(tmp_path):
    data = tmp_path / "data"
    pairs = [make_category(data, "signs"), make_category(data, "books")]
    (pairs[1][0] / "broken.json").write_text("{not json", encoding="utf-8")
    (pairs[1][0] / "legacy.json").write_bytes('{"images": [], "annotations": [], "x": "간판"}'.encode("cp949"))
    out_serial, out_parallel = tmp_path / "serial", tmp_path / "parallel"
    serial = prepare_aihub(pairs, out_serial)
    parallel = prepare_aihub(pairs, out_parallel, AihubOptions(workers=2))
    assert serial.kept == parallel.kept == 6 and serial.skipped == parallel.skipped
    assert serial.skipped["bad_json"] == 2       # not JSON; not UTF-8
    assert (out_serial / "labels.csv").read_bytes() == (out_parallel / "labels.csv").read_bytes()
    rows = read_rows(out_serial)
    assert rows["category"].tolist() == ["signs"] * 3 + ["books"] * 3  # pairs kept in the order given
    assert rows["img_path"].is_unique

    # --merge: re-processing one category replaces its rows and keeps the other category's
    assert main([str(pairs[0][0]), str(pairs[0][1]), "--output", str(out_serial), "--merge"]) == 1
    merged = read_rows(out_serial)
    assert sorted(merged["category"]) == ["books"] * 3 + ["signs"] * 3
    assert main([str(pairs[0][0]), str(pairs[0][1]), "--output", str(out_serial)]) == 1
    assert set(read_rows(out_serial)["category"]) == {"signs"}


def test_same_folder_names_get_distinct_categories():
    assert distinct_names([Path("/d/signs/label"), Path("/d/books/label")]) == ["signs-label", "books-label"]
    assert distinct_names([Path("/d/signs")]) == ["signs"]
    assert distinct_names([Path("/d/signs"), Path("/d/signs")]) == ["signs", "signs"]


def test_crop_box_rules():
    assert crop_box((1.2, 2.7, 10.0, 5.0), 100, 50, "clip") == ((1, 2, 12, 8), "", "")
    assert crop_box((-0.3, 0, 10, 10), 100, 50, "skip")[1] == ""          # rounding overhang is tolerated
    assert crop_box((-5, 0, 10, 10), 100, 50, "clip")[:2] == ((0, 0, 5, 10), "clipped")
    assert crop_box((99, 0, 10, 10), 100, 50, "clip")[1] == "bbox_too_small"
    assert crop_box((100, 0, 10, 10), 100, 50, "clip")[1] == "bbox_outside_image"


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--output", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "pairs" in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--pair" in capsys.readouterr().out
