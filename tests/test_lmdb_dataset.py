"""lmdb_dataset to-csv / from-csv on LMDBs and CSVs built here, bad samples included."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pandas as pd
import pytest

from scripts.lmdb_dataset import lmdb_to_csv, main
from vqvae.plumbing.io import load_image


def random_rgb(seed: int, width: int = 24, height: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode(image: np.ndarray, suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def write_lmdb(path: Path, entries: dict[bytes, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    env.close()
    return path


def benchmark_lmdb(path: Path) -> Path:
    """8 samples: 2 good (PNG, JPEG with an NFD Korean label), then one of each bad case."""
    png, jpg = encode(random_rgb(0), ".png"), encode(random_rgb(1), ".jpg")
    return write_lmdb(path, {
        b"num-samples": b"8",
        b"image-000000001": png, b"label-000000001": b"Hello",
        b"image-000000002": jpg, b"label-000000002": unicodedata.normalize("NFD", "간판").encode(),
        b"image-000000003": b"\x89PNG\r\n\x1a\nbroken", b"label-000000003": b"corrupt",
        b"image-000000004": png, b"label-000000004": b"caf\xe9",          # Latin-1, not UTF-8
        b"label-000000005": b"no image",
        b"image-000000006": png,                                           # no label
        b"image-000000007": png, b"label-000000007": b"  ",
        b"image-000000008": png, b"label-000000008": "끝".encode(),
    })


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_to_csv_counts_images_and_report(tmp_path, capsys):
    source = benchmark_lmdb(tmp_path / "bench")
    out = tmp_path / "out"
    assert main(["to-csv", str(source), "--output", str(out)]) == 1

    rows = read_csv(out / "labels.csv")
    assert list(rows["text"]) == ["Hello", "간판", "끝"]
    assert list(rows["lmdb_index"]) == ["1", "2", "8"] and set(rows["lmdb_source"]) == {"bench"}
    assert list(rows["img_path"]) == ["images/bench/image-000000001.png", "images/bench/image-000000002.jpg",
                                      "images/bench/image-000000008.png"]
    env = lmdb.open(str(source), readonly=True, lock=False)
    with env.begin() as txn:   # the stored bytes are written as they are
        assert (out / rows["img_path"][1]).read_bytes() == txn.get(b"image-000000002")
    env.close()
    assert load_image(out / rows["img_path"][0]).shape == (12, 24, 3)

    report = read_csv(out / "labels.csv.bad.csv")
    assert report["reason"].str.split(":").str[0].tolist() == [
        "unreadable_image", "label_not_utf8", "missing_image", "missing_label", "empty_label"]
    assert report["row"].tolist() == ["bench#3", "bench#4", "bench#5", "bench#6", "bench#7"]
    assert "kept 3 samples" in capsys.readouterr().out


def test_to_csv_is_idempotent(tmp_path):
    source = benchmark_lmdb(tmp_path / "bench")
    out = tmp_path / "out"
    lmdb_to_csv([source], out)
    first = (out / "labels.csv").read_bytes()
    lmdb_to_csv([source], out)
    assert (out / "labels.csv").read_bytes() == first
    assert len(list((out / "images" / "bench").iterdir())) == 3   # overwritten, no temp files


def test_empty_lmdb_and_missing_num_samples(tmp_path):
    root = tmp_path / "evaluation"
    write_lmdb(root / "empty", {b"num-samples": b"0"})
    png = encode(random_rgb(2), ".png")
    write_lmdb(root / "no_count", {b"image-000000001": png, b"label-000000001": b"a",
                                   b"image-000000002": png, b"label-000000002": b"b"})
    out = tmp_path / "out"
    assert main(["to-csv", str(root), "--output", str(out)]) == 1     # the empty LMDB is an error
    rows = read_csv(out / "labels.csv")
    assert list(rows["text"]) == ["a", "b"] and set(rows["lmdb_source"]) == {"no_count"}
    assert read_csv(out / "labels.csv.bad.csv")["reason"].str.startswith("empty_lmdb").tolist() == [True]

    only_empty = tmp_path / "only_empty"
    summary = lmdb_to_csv([root / "empty"], only_empty)
    assert summary.kept == 0 and summary.exit_code == 1
    assert read_csv(only_empty / "labels.csv").columns.tolist()[:2] == ["img_path", "text"]


def make_csv(root: Path) -> Path:
    """A labelled CSV with PNG, JPEG and BMP images, an extra column and a subfolder path."""
    images = {"a.png": random_rgb(3), "sub/b.jpg": random_rgb(4), "c.bmp": random_rgb(5, 7, 30)}
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(encode(image, Path(name).suffix))
    frame = pd.DataFrame({"img_path": list(images), "text": ["abc, \"q\"", "한국어", "세로"],
                          "orientation": ["horizontal", "horizontal", "vertical"]})
    frame.to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def test_round_trip_csv_lmdb_csv(tmp_path):
    csv_path = make_csv(tmp_path / "data")
    db, back = tmp_path / "db", tmp_path / "back"
    assert main(["from-csv", str(csv_path), "--output", str(db)]) == 0
    env = lmdb.open(str(db), readonly=True, lock=False)
    with env.begin() as txn:    # the standard keys other tools read
        assert txn.get(b"num-samples") == b"3"
        assert txn.get(b"label-000000002").decode("utf-8") == "한국어"
        assert txn.get(b"image-000000001") == (tmp_path / "data" / "a.png").read_bytes()
        assert txn.get(b"image-000000003").startswith(b"\x89PNG")   # BMP stored as PNG
    env.close()
    assert "reencoded_png (kept)" in (tmp_path / "db.bad.csv").read_text()   # listed, yet exit 0

    assert main(["to-csv", str(db), "--output", str(back)]) == 0
    original, restored = read_csv(csv_path), read_csv(back / "labels.csv")
    assert list(restored["text"]) == list(original["text"])
    assert list(restored["orientation"]) == list(original["orientation"])
    for before, after in zip(original["img_path"], restored["img_path"]):
        np.testing.assert_array_equal(load_image(back / after), load_image(tmp_path / "data" / before))


def test_from_csv_bad_rows_and_rerun(tmp_path):
    csv_path = make_csv(tmp_path / "data")
    (tmp_path / "data" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    frame = read_csv(csv_path)
    frame.loc[len(frame)] = ["missing.png", "x", "horizontal"]
    frame.loc[len(frame)] = ["corrupt.png", "y", "horizontal"]
    frame.to_csv(csv_path, index=False)
    db = tmp_path / "db"
    for _ in range(2):   # a re-run replaces the LMDB: same samples, nothing duplicated or left behind
        assert main(["from-csv", str(csv_path), "--output", str(db), "--no-meta"]) == 1
        env = lmdb.open(str(db), readonly=True, lock=False)
        with env.begin() as txn:
            assert txn.get(b"num-samples") == b"3" and txn.get(b"image-000000004") is None
            assert txn.get(b"meta-000000001") is None
        env.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "db", "db.bad.csv"]
    reasons = read_csv(tmp_path / "db.bad.csv")["reason"].str.split(":").str[0].tolist()
    assert reasons == ["reencoded_png (kept)", "missing_image", "unreadable_image"]


def test_from_csv_refuses_to_replace_other_folders(tmp_path, capsys):
    csv_path = make_csv(tmp_path / "data")
    assert main(["from-csv", str(csv_path), "--output", str(tmp_path / "data")]) == 2
    assert "not an LMDB folder" in capsys.readouterr().err
    assert (tmp_path / "data" / "a.png").exists()
    assert main(["to-csv", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["from-csv", "--help"])
    assert exit_info.value.code == 0 and "meta-%09d" in capsys.readouterr().out
