"""gpt.predict and gpt.read on random tiny models: columns, confidences, voting, bad inputs, exit codes."""
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from gpt.predict import main as predict_main
from gpt.recognition import merge_augmented, predict_csv, recognize_grids
from gpt.pretrained import load_pretrained
from gpt.read import main as read_main
from gpt.reading import find_images, read_arrays, read_images
from tests.test_export import MAX_LENGTH, build_export
from vqvae.encoding import encode_paths, encoder_input
from vqvae.plumbing.io import ImageReadError, decode_image
from vqvae.tokens import grid_to_string, write_sidecar

LABELS = ["hello", "world", "한국어", "abc 123", "hello", "abc"]


def write_images(folder: Path, count: int = len(LABELS)) -> list[Path]:
    """`count` PNG crops of varied sizes (wide, tall, square) with random strokes."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(24, 96), (32, 64), (96, 20), (40, 40), (16, 120), (30, 50)]
    paths = []
    for i in range(count):
        height, width = sizes[i % len(sizes)]
        image = np.full((height, width, 3), 255, np.uint8)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            cv2.line(image, (x0, y0), (int(rng.integers(0, width)), int(rng.integers(0, height))),
                     tuple(int(c) for c in rng.integers(0, 200, 3)), 2)
        path = folder / f"crop_{i}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    model_dir = build_export(root / "model")
    pretrained = load_pretrained(model_dir)
    paths = write_images(root / "images")
    grids, report = encode_paths(pretrained.vqvae, [str(p) for p in paths], MAX_LENGTH, num_workers=0,
                                 progress=False)
    assert not len(report)
    frame = pd.DataFrame({"img_path": [p.name for p in paths], "text": LABELS, "source": "unit",
                          "visual_tokens": [grid_to_string(g) for g in grids]})
    tokens_csv = root / "images" / "tokens.csv"
    frame.to_csv(tokens_csv, index=False)
    write_sidecar(tokens_csv, {"fingerprint": pretrained.fingerprint, "num_codes": 16, "downsample": 8,
                               "max_length": MAX_LENGTH})
    return {"root": root, "model_dir": model_dir, "pretrained": pretrained, "paths": paths,
            "tokens_csv": tokens_csv, "frame": frame}


def test_predict_columns_and_confidence(setup, tmp_path):
    output = tmp_path / "pred.csv"
    assert predict_main([str(setup["model_dir"]), str(setup["tokens_csv"]), "--output", str(output),
                         "--no-progress", "--batch-size", "4"]) == 0
    pred = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(pred.columns) == ["img_path", "label", "source", "visual_tokens", "text", "confidence"]
    assert list(pred["label"]) == LABELS and list(pred["img_path"]) == list(setup["frame"]["img_path"])
    confidence = pred["confidence"].astype(float)
    assert ((confidence > 0) & (confidence <= 1)).all()
    charset = set(setup["pretrained"].vocab.chars)
    assert all(set(text) <= charset for text in pred["text"])


def test_predict_agrees_with_read_and_batch_size(setup):
    # float32: bf16 kernels may round differently for different batch sizes.
    from_tokens, _ = predict_csv(setup["pretrained"], str(setup["tokens_csv"]), batch_size=2, precision="float32",
                                 progress=False)
    from_images = read_images(setup["pretrained"], [str(p) for p in setup["paths"]], batch_size=64,
                              precision="float32", progress=False)
    assert [p[0] for p in from_images.predictions] == list(from_tokens["text"])
    np.testing.assert_allclose([p[1] for p in from_images.predictions], from_tokens["confidence"], rtol=1e-5)


def test_reading_in_loader_workers_reads_as_this_process_does(setup):
    """On CPU the workers encode and read each batch with one thread: the same texts and confidences as reading
    everything in this process, whatever the batch size."""
    paths = [str(p) for p in setup["paths"]]
    here = read_images(setup["pretrained"], paths, batch_size=3, num_workers=0, precision="float32", progress=False)
    for batch_size in (2, 64):
        workers = read_images(setup["pretrained"], paths, batch_size=batch_size, num_workers=2, precision="float32",
                              progress=False)
        assert [p[0] for p in workers.predictions] == [p[0] for p in here.predictions]
        np.testing.assert_allclose([p[1] for p in workers.predictions], [p[1] for p in here.predictions], rtol=1e-5)
    assert here.seconds > 0 and here.timing()["images"] == len(paths)


def test_read_arrays_reads_like_read_images(setup):
    """The in-memory path (decoded bytes, no file) gives the files' readings and their code grids."""
    paths = [str(p) for p in setup["paths"]]
    from_files = read_images(setup["pretrained"], paths, precision="float32", progress=False)
    images = [decode_image(Path(p).read_bytes(), p) for p in paths]
    readings = read_arrays(setup["pretrained"], images, batch_size=2, precision="float32")
    assert [r.text for r in readings] == [text for text, _ in from_files.predictions]
    np.testing.assert_allclose([r.confidence for r in readings], [c for _, c in from_files.predictions], rtol=1e-5)
    for reading, image in zip(readings, images):
        rows, cols = reading.grid.shape
        assert encoder_input(image, MAX_LENGTH, 8).shape == (rows * 8, cols * 8, 3)
    with pytest.raises(ImageReadError, match=r"images\[0\] is 1x5"):
        read_arrays(setup["pretrained"], [np.zeros((5, 1, 3), np.uint8)])


def test_votes_read_shifted_copies_and_keep_the_most_confident_text(setup, tmp_path):
    """--votes N: the image as it is plus N-1 seeded augmented copies, merged by summed confidence; a file that
    cannot be read is reported once and never votes."""
    paths = [str(p) for p in setup["paths"]]
    pretrained = setup["pretrained"]
    copies = [encode_paths(pretrained.vqvae, paths, MAX_LENGTH, num_workers=0, progress=False, augment=copy > 0,
                           repeat=copy)[0] for copy in range(3)]
    assert any((a != b).any() if a.shape == b.shape else True for a, b in zip(copies[0], copies[1]))
    ballots = pd.DataFrame([{"img_path": path, "text": text, "confidence": confidence}
                            for grids in copies for path, (text, confidence)
                            in zip(paths, recognize_grids(pretrained, grids, precision="float32", progress=False))])
    expected = merge_augmented(ballots)
    voted = read_images(pretrained, paths + [str(tmp_path / "missing.png")], precision="float32", progress=False,
                        votes=3)
    assert [p[0] for p in voted.predictions[:-1]] == list(expected["text"]) and voted.predictions[-1] is None
    np.testing.assert_allclose([p[1] for p in voted.predictions[:-1]], expected["confidence"], rtol=1e-5)
    assert [row["row"] for row in voted.report.rows] == [len(paths)]
    again = read_images(pretrained, paths, precision="float32", progress=False, votes=3)
    assert again.predictions == voted.predictions[:-1]  # seeded: the same copies every time
    single = read_images(pretrained, paths, precision="float32", progress=False, votes=1)
    assert single.predictions == recognize_grids(pretrained, copies[0], precision="float32", progress=False)
    with pytest.raises(ValueError, match="votes=0"):
        read_images(pretrained, paths, votes=0)


def test_read_refuses_zero_votes(setup, capsys):
    with pytest.raises(SystemExit) as exit_info:
        read_main([str(setup["model_dir"]), str(setup["paths"][0]), "--votes", "0"])
    assert exit_info.value.code == 2 and "--votes 0" in capsys.readouterr().err


def test_fingerprint_mismatch_is_refused(setup, tmp_path):
    other = tmp_path / "tokens.csv"
    setup["frame"].to_csv(other, index=False)
    write_sidecar(other, {"fingerprint": "0123456789abcdef", "num_codes": 16})
    with pytest.raises(ValueError, match=f"'0123456789abcdef'.*'{setup['pretrained'].fingerprint}'"):
        predict_csv(setup["pretrained"], str(other), progress=False)
    assert predict_main([str(setup["model_dir"]), str(other), "--output", str(tmp_path / "p.csv")]) == 2
    assert not (tmp_path / "p.csv").exists()


def test_too_long_grid_is_an_error_or_skipped(setup, tmp_path, capsys):
    bad = setup["frame"].copy()
    bad.loc[1, "visual_tokens"] = grid_to_string(np.zeros((2, MAX_LENGTH), dtype=np.int64))
    bad.loc[3, "visual_tokens"] = "1 2\t3"  # ragged
    bad.loc[4, "visual_tokens"] = "1 2\t3 99"  # code 99 of a 16-code book
    tokens = tmp_path / "tokens.csv"
    bad.to_csv(tokens, index=False)
    write_sidecar(tokens, {"fingerprint": setup["pretrained"].fingerprint, "num_codes": 16})
    output = tmp_path / "pred.csv"
    assert predict_main([str(setup["model_dir"]), str(tokens), "--output", str(output), "--no-progress"]) == 2
    assert "3 row(s)" in capsys.readouterr().err and not output.exists()
    assert predict_main([str(setup["model_dir"]), str(tokens), "--output", str(output), "--no-progress",
                         "--skip-bad"]) == 1
    assert len(pd.read_csv(output)) == len(LABELS) - 3
    report = pd.read_csv(str(output) + ".bad.csv")
    assert list(report["row"]) == [1, 3, 4] and "max_visual_length" in report["reason"][0]
    assert "ragged" in report["reason"][1] and "16 codes" in report["reason"][2]


def test_merge_augmented_votes_by_confidence():
    frame = pd.DataFrame({"img_path": ["a", "a", "a", "b", "c", "c"], "repeat": [0, 1, 2, 0, 0, 1],
                          "label": ["y", "y", "y", "q", "m", "m"], "text": ["x", "y", "y", "q", "m", "n"],
                          "confidence": [0.9, 0.5, 0.5, 0.7, 0.4, 0.6]})
    merged = merge_augmented(frame)
    assert list(merged["img_path"]) == ["a", "b", "c"]
    assert list(merged["text"]) == ["y", "q", "n"]  # two weak votes (1.0) beat one strong (0.9)
    np.testing.assert_allclose(merged["confidence"], [1.0 / 3, 0.7, 0.6 / 2])
    assert list(merged["votes"]) == [2, 1, 1] and list(merged["copies"]) == [3, 1, 2]
    assert list(merged["label"]) == ["y", "q", "m"]


def test_predict_cli_merge_augmented(setup, tmp_path):
    copies = pd.concat([setup["frame"].assign(repeat=r) for r in range(3)]).sort_index(kind="stable")
    tokens = tmp_path / "aug.csv"
    copies.to_csv(tokens, index=False)
    write_sidecar(tokens, {"fingerprint": setup["pretrained"].fingerprint, "num_codes": 16})
    output = tmp_path / "merged.csv"
    assert predict_main([str(setup["model_dir"]), str(tokens), "--output", str(output), "--merge-augmented",
                         "--no-progress"]) == 0
    merged = pd.read_csv(output, keep_default_na=False)
    assert list(merged["img_path"]) == list(setup["frame"]["img_path"])
    assert (merged["copies"] == 3).all() and (merged["votes"] == 3).all()  # identical copies agree


def test_read_folder_with_a_corrupt_file(setup, tmp_path, capsys):
    folder = tmp_path / "crops"
    paths = write_images(folder, 3)
    (folder / "corrupt.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    code = read_main([str(setup["model_dir"]), str(folder), "--no-progress", "--timing"])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.out.strip().split("\n")
    assert sorted(line.split("\t")[0] for line in lines) == sorted(str(p) for p in paths)
    assert all(0 < float(line.split("\t")[2]) <= 1 for line in lines)
    assert "corrupt.png" in captured.err and "1 of 4 image(s) could not be read" in captured.err
    assert re.search(r"read 3 images in [\d.]+ s: [\d.]+ images/s", captured.err)
    output = tmp_path / "read.csv"
    assert read_main([str(setup["model_dir"]), str(folder), "--output", str(output), "--no-progress"]) == 1
    assert len(pd.read_csv(output)) == 3
    assert "corrupt.png" in pd.read_csv(str(output) + ".bad.csv")["img_path"][0]


def test_read_nothing_to_read_is_an_error(setup, tmp_path, capsys):
    with pytest.raises(ValueError, match="no image given"):
        find_images([])
    (tmp_path / "empty").mkdir()
    assert read_main([str(setup["model_dir"]), str(tmp_path / "empty")]) == 2
    assert "no image files" in capsys.readouterr().err


def test_read_refuses_an_incomplete_model_folder(setup, tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")  # a model folder, but no layout.json, charset, VQ-VAE...
    assert read_main([str(tmp_path), str(setup["paths"][0])]) == 2
    assert "lacks" in capsys.readouterr().err


def test_without_a_model_folder_the_shipped_model_reads(setup, monkeypatch):
    from gpt import pretrained

    assert pretrained.model_and_inputs([str(setup["model_dir"]), "a.png"]) == (setup["model_dir"], ["a.png"])
    monkeypatch.setattr(pretrained, "SHIPPED_MODEL", setup["model_dir"])
    assert pretrained.model_and_inputs(["a.png", "b/"]) == (setup["model_dir"], ["a.png", "b/"])
    monkeypatch.setattr(pretrained, "SHIPPED_MODEL", setup["model_dir"] / "missing")
    with pytest.raises(FileNotFoundError, match="make pretrain"):
        pretrained.model_and_inputs(["a.png"])


def test_cached_and_bf16_decoding_read_like_the_uncached_model(setup):
    import torch

    from gpt.decoding import recognize
    from gpt.recognition import image_ids_from_grids, recognize_ids
    from vqvae.tokens import string_to_grid

    pretrained = setup["pretrained"]
    grids = [string_to_grid(s) for s in setup["frame"]["visual_tokens"]]
    image_ids = image_ids_from_grids(pretrained.vocab, grids, pretrained.max_visual_length)
    assert image_ids.shape == (len(grids), pretrained.max_visual_length)
    plain = recognize(pretrained.model, pretrained.vocab, image_ids, pretrained.max_text_length)
    uncached = recognize(pretrained.model, pretrained.vocab, image_ids, pretrained.max_text_length, use_cache=False)
    assert [t for t, _ in plain] == [t for t, _ in uncached]
    np.testing.assert_allclose([c for _, c in plain], [c for _, c in uncached], rtol=1e-5)
    assert not pretrained.model.training
    bf16 = recognize_ids(pretrained, image_ids, precision="bfloat16", progress=False)
    assert all(0 < c <= 1 for _, c in bf16)
    beams = recognize_ids(pretrained, image_ids, num_beams=3, precision="float32", progress=False)
    assert all(c >= p - 1e-6 for (_, c), (_, p) in zip(beams, plain))  # beam search never scores lower
    with pytest.raises(ValueError, match="precision='half'"):
        recognize_ids(pretrained, image_ids, precision="half", progress=False)
    assert torch.equal(image_ids[0, :1], torch.tensor([pretrained.vocab.row_id]))


def test_read_workers_bench_reads_the_same_texts_every_way(setup, tmp_path):
    """scripts.bench_read_workers: a row per repeat, worker count and batch size, each reading every crop."""
    import json

    from scripts import bench_read_workers

    labels = tmp_path / "labels.csv"
    pd.DataFrame({"img_path": [str(p) for p in setup["paths"]], "text": LABELS}).to_csv(labels, index=False)
    out = tmp_path / "rows.json"
    assert bench_read_workers.main([str(labels), "--model", str(setup["model_dir"]), "--workers", "0", "2",
                                    "--batch-sizes", "2", "8", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(row["workers"], row["batch_size"]) for row in rows] == [(0, 2), (0, 8), (2, 2), (2, 8)]
    assert all(row["crops"] == len(LABELS) and row["crops_per_s"] > 0 for row in rows)
    assert len({row["right"] for row in rows}) == 1
    with pytest.raises(SystemExit):
        bench_read_workers.main([str(labels), "--workers", "-1"])


def test_speed_bench_times_each_beam_count(setup, monkeypatch, tmp_path, capsys):
    """scripts.bench_speed: one figure per --num-beams (greedy under the old key), RapidOCR's absent."""
    import json

    from scripts import bench_speed

    monkeypatch.setattr(bench_speed, "time_rapidocr", lambda paths: None)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"img_path": [str(p) for p in setup["paths"]], "text": LABELS}).to_csv(labels, index=False)
    out = tmp_path / "speed.json"
    assert bench_speed.main([str(labels), "--model", str(setup["model_dir"]), "--num-beams", "1", "3",
                             "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["crops"] == len(LABELS)
    assert figures["ours_images_per_s"] > 0 and figures["ours_beams3_images_per_s"] > 0
    assert figures["rapidocr_images_per_s"] is None and figures["ratio_beams3"] is None
    assert bench_speed.main([str(labels), "--model", str(setup["model_dir"]), "--votes", "2", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ours_votes2_images_per_s"] > 0
    for bad in (["--num-beams", "0"], ["--votes", "0"]):
        with pytest.raises(SystemExit):
            bench_speed.main([str(labels), *bad])
