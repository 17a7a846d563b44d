"""Every bad input to encode/decode: it finishes or stops with a message naming the file, row or key."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.test_encode_decode import make_tiny_run, write_crops, write_labels
from vqvae import decode, encode
from vqvae.encoding import encode_images
from vqvae.plumbing.io import ImageReadError


@pytest.fixture
def tiny_run(tmp_path):
    return make_tiny_run(tmp_path / "run")


def run_encode(tiny_run, labels, output, *extra):
    config_path, checkpoint_path, _ = tiny_run
    return encode.main([str(config_path), str(checkpoint_path), "--dataset", str(labels), "--output", str(output),
                        "--num-workers", "0", "--no-progress", *extra])


def test_one_bad_file_among_many_is_reported_and_the_run_finishes(tiny_run, tmp_path, capsys):
    data = tmp_path / "data"
    names = write_crops(data, 30)
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cv2.imwrite(str(data / "thin.png"), np.zeros((40, 1, 3), np.uint8))  # 1 px wide
    cv2.imwrite(str(data / "empty_row.png"), np.zeros((1, 40, 3), np.uint8))  # 1 px high
    # header fine, pixels cut off: fails only when a loader worker decodes it
    (data / "truncated.png").write_bytes((data / names[0]).read_bytes()[:70])
    names = (names[:10] + ["missing.png", "corrupt.png"] + names[10:20] + ["thin.png", "empty_row.png"]
             + names[20:25] + ["truncated.png"] + names[25:])
    labels = write_labels(data, names)
    output = tmp_path / "tokens.csv"
    assert run_encode(tiny_run, labels, output, "--num-workers", "2") == 1
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(frame) == 30 and not {"missing.png", "corrupt.png", "thin.png", "truncated.png"} & set(frame["img_path"])
    report = pd.read_csv(str(output) + ".bad.csv", dtype=str)
    assert report["row"].tolist() == ["10", "11", "22", "23", "29"]
    assert report["img_path"].tolist() == ["missing.png", "corrupt.png", "thin.png", "empty_row.png", "truncated.png"]
    reasons = report["reason"].tolist()
    assert "does not exist" in reasons[0] and "could not be read" in reasons[1]
    assert "1x40" in reasons[2] and "40x1" in reasons[3] and "could not be decoded" in reasons[4]
    assert "5 row(s)" in capsys.readouterr().err
    counts = pd.read_json(str(output) + ".json", typ="series")["counts"]
    assert counts["failed_rows"] == 5 and counts["encoded_images"] == 30
    # --skip-bad: same output and report, exit status 0
    assert run_encode(tiny_run, labels, output, "--skip-bad") == 0
    assert (tmp_path / "tokens.csv.bad.csv").exists()


def test_crops_that_cannot_be_normalized_are_reported_rows(tiny_run, tmp_path):
    """One flat colour (no text to read) and a line far too long for max_length: a reason each, counted,
    and the rest encoded (DESIGN §2)."""
    data = tmp_path / "data"
    names = write_crops(data, 4)
    cv2.imwrite(str(data / "flat.png"), np.full((30, 90, 3), 77, np.uint8))
    cv2.imwrite(str(data / "endless.png"), np.random.default_rng(0).integers(0, 256, (10, 2000, 3), np.uint8))
    labels = write_labels(data, names[:2] + ["flat.png", "endless.png"] + names[2:])
    output = tmp_path / "tokens.csv"
    assert run_encode(tiny_run, labels, output) == 1
    assert len(pd.read_csv(output)) == 4
    report = pd.read_csv(str(output) + ".bad.csv", dtype=str).set_index("img_path")["reason"]
    assert "flat colour" in report["flat.png"]
    assert "200.0 times longer than thick" in report["endless.png"] and "max_length=" in report["endless.png"]
    with pytest.raises(ImageReadError, match=r"images\[0\].*flat colour"):
        encode_images(tiny_run[2], [np.full((30, 90, 3), 77, np.uint8)], 100)


def test_gray_rgba_and_16_bit_images_work(tiny_run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(data / "gray.png"), rng.integers(0, 256, (24, 80), dtype=np.uint8))
    cv2.imwrite(str(data / "rgba.png"), rng.integers(0, 256, (24, 80, 4), dtype=np.uint8))
    cv2.imwrite(str(data / "deep.png"), rng.integers(0, 65536, (24, 80, 3), dtype=np.uint16))
    cv2.imwrite(str(data / "deep_gray.png"), rng.integers(0, 65536, (30, 30), dtype=np.uint16))
    cv2.imwrite(str(data / "photo.jpg"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    names = ["gray.png", "rgba.png", "deep.png", "deep_gray.png", "photo.jpg"]
    output = tmp_path / "tokens.csv"
    assert run_encode(tiny_run, write_labels(data, names), output) == 0
    assert pd.read_csv(output)["img_path"].tolist() == names


def test_in_memory_images_of_any_layout_encode(tiny_run):
    model = tiny_run[2]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 80), dtype=np.uint8), rng.integers(0, 256, (24, 80, 4), dtype=np.uint8),
              rng.integers(0, 256, (24, 80, 3), dtype=np.uint8)]
    grids = encode_images(model, images, 32)
    assert [g.shape for g in grids] == [grids[2].shape] * 3
    with pytest.raises(ImageReadError, match=r"images\[1\] is 1x24"):
        encode_images(model, [images[2], np.zeros((24, 1, 3), np.uint8)], 32)


def test_csv_missing_columns_or_empty_names_the_problem(tiny_run, tmp_path, capsys):
    no_text = tmp_path / "no_text.csv"
    pd.DataFrame({"img_path": ["a.png"], "label": ["x"]}).to_csv(no_text, index=False)
    assert run_encode(tiny_run, no_text, tmp_path / "o.csv") == 2
    err = capsys.readouterr().err
    assert "no_text.csv" in err and "'text'" in err and "label" in err

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run_encode(tiny_run, empty, tmp_path / "o.csv") == 2
    assert "empty.csv is empty" in capsys.readouterr().err

    header_only = tmp_path / "header_only.csv"
    header_only.write_text("img_path,text\n")
    assert run_encode(tiny_run, header_only, tmp_path / "o.csv") == 2
    assert "header_only.csv has a header but no rows" in capsys.readouterr().err

    assert run_encode(tiny_run, tmp_path / "nowhere.csv", tmp_path / "o.csv") == 2
    assert "nowhere.csv" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_missing_config_checkpoint_and_bad_flags(tiny_run, tmp_path, capsys):
    config_path, checkpoint_path, _ = tiny_run
    labels = write_labels(tmp_path, write_crops(tmp_path, 2))
    code = encode.main([str(tmp_path / "nope.yaml"), str(checkpoint_path), "--dataset", str(labels),
                        "--output", str(tmp_path / "o.csv")])
    assert code == 2 and "nope.yaml" in capsys.readouterr().err
    code = encode.main([str(config_path), str(tmp_path / "nope.ckpt"), "--dataset", str(labels),
                        "--output", str(tmp_path / "o.csv")])
    assert code == 2 and "nope.ckpt" in capsys.readouterr().err
    assert run_encode(tiny_run, labels, tmp_path / "o.csv", "--max-length", "1") == 2
    assert "max_length=1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        encode.parse_args([str(config_path), str(checkpoint_path), "--dataset", "x", "--output", "y",
                           "--repeats", "3"])
    assert "--augment" in capsys.readouterr().err


def test_decode_reports_unreadable_token_rows(tiny_run, tmp_path, capsys):
    config_path, checkpoint_path, _ = tiny_run
    tokens = tmp_path / "tokens.csv"
    pd.DataFrame({"img_path": ["a.png", "b.png", "c.png", "d.png"],
                  "visual_tokens": ["1 2 3\t4 5 6", "1 2\t3", "1 99", "7 x"]}).to_csv(tokens, index=False)
    out = tmp_path / "decoded"
    assert decode.main([str(config_path), str(checkpoint_path), "--tokens", str(tokens), "--output", str(out),
                        "--no-progress"]) == 1
    assert len(pd.read_csv(out / "index.csv")) == 1
    report = pd.read_csv(out / "index.csv.bad.csv", dtype=str)
    assert report["row"].tolist() == ["1", "2", "3"]
    assert "ragged" in report["reason"][0] and "[0, 16)" in report["reason"][1] and "integer" in report["reason"][2]
    no_column = tmp_path / "labels.csv"
    pd.DataFrame({"img_path": ["a.png"], "text": ["x"]}).to_csv(no_column, index=False)
    assert decode.main([str(config_path), str(checkpoint_path), "--tokens", str(no_column), "--output",
                        str(out)]) == 2
    assert "visual_tokens" in capsys.readouterr().err
