"""scripts.compare_predictions: two models' readings of the same crops, crop by crop."""
import numpy as np
import pandas as pd
import pytest

from scripts.compare_predictions import compare, differing_sheet, main, read_pair


def write_predictions(folder, name, correct):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"img_path": [f"images/{i}.png" for i in range(len(correct))], "label": "x", "text": "x",
                  "confidence": 0.5, "correct": correct}).to_csv(folder / f"{name}.csv", index=False)


def test_only_the_crops_one_model_reads_weigh_in_the_sign_test(tmp_path, capsys):
    write_predictions(tmp_path / "A", "heldout_en", [True, True, False, False, True])
    write_predictions(tmp_path / "B", "heldout_en", [True, False, True, True, True])
    write_predictions(tmp_path / "A", "real_en", [False, False, False])
    write_predictions(tmp_path / "B", "real_en", [True, True, True])
    rows = {row["set"]: row for row in compare(read_pair(tmp_path / "A", tmp_path / "B"))}
    assert rows["heldout_en"]["only A"] == 1 and rows["heldout_en"]["only B"] == 2
    assert rows["heldout_en"]["A reads"] == 3 and rows["heldout_en"]["B reads"] == 4
    assert rows["heldout_en"]["sign test p"] == 1.0
    assert rows["real_en"]["sign test p"] == pytest.approx(0.25)  # 3 of 3 one way: 2 / 2^3
    assert rows["all"]["crops"] == 8 and rows["all"]["only B"] == 5 and "held-out pooled" not in rows
    assert main([str(tmp_path / "A"), str(tmp_path / "B"), "--json", str(tmp_path / "c.json")]) == 0
    assert "| real_en | 3 |" in capsys.readouterr().out and (tmp_path / "c.json").is_file()


def test_folders_of_different_crops_are_refused(tmp_path):
    write_predictions(tmp_path / "A", "heldout_en", [True, False])
    write_predictions(tmp_path / "B", "heldout_en", [True, False, True])
    with pytest.raises(ValueError, match="list different crops"):
        read_pair(tmp_path / "A", tmp_path / "B")
    with pytest.raises(FileNotFoundError, match="no prediction CSVs"):
        read_pair(tmp_path / "empty", tmp_path / "B")


def write_drawings(folder, read_back, tesseract, prompts=("학교", "OPEN 24H", "hello")):
    folder.mkdir(parents=True, exist_ok=True)
    groups = ["ko_horizontal", "phrase", "en"][:len(prompts)]
    pd.DataFrame({"prompt": prompts, "group": groups, "length": 2, "path": "best/x.png", "read_back": read_back,
                  "any_exact": False, "tesseract": tesseract}).to_csv(folder / "prompts.csv", index=False)


def test_two_drawing_models_are_compared_judge_by_judge_spaces_ignored(tmp_path):
    write_drawings(tmp_path / "A", ["학교", "OPEN 24H", "hallo"], ["학고", "", "hello"])
    write_drawings(tmp_path / "B", ["학고", "OPEN24H", "hello"], ["학교", "OPEN 24H", "hello"])
    rows = {row["set"]: row for row in compare(read_pair(tmp_path / "A", tmp_path / "B"), drawings=True)}
    assert rows["recognizer: all prompts"]["A reads"] == 2 and rows["recognizer: all prompts"]["B reads"] == 2
    assert rows["recognizer_ko_horizontal"]["only A"] == 1 and rows["recognizer_en"]["only B"] == 1
    assert rows["tesseract: all prompts"]["only B"] == 2 and rows["tesseract: all prompts"]["only A"] == 0
    assert "all" not in rows  # the two judges' verdicts on the same drawings are not pooled
    write_drawings(tmp_path / "C", ["학교", "hello"], ["", ""], prompts=("학교", "hello"))
    with pytest.raises(ValueError, match="different prompts"):
        read_pair(tmp_path / "A", tmp_path / "C")


def test_the_sheet_shows_the_crops_only_one_model_reads(tmp_path):
    from vqvae.plumbing.io import load_image, save_image

    write_predictions(tmp_path / "A", "heldout_en", [True, True, False, True])
    write_predictions(tmp_path / "B", "heldout_en", [True, False, True, True])
    crops = tmp_path / "data" / "heldout_en" / "images"
    crops.mkdir(parents=True)
    for i in range(4):
        save_image(crops / f"{i}.png", np.full((20, 60, 3), 40 * i, np.uint8))
    sheet = differing_sheet(read_pair(tmp_path / "A", tmp_path / "B"), [tmp_path / "elsewhere", tmp_path / "data"])
    one_tile = differing_sheet({"heldout_en": tuple(pd.read_csv(tmp_path / r / "heldout_en.csv").iloc[:2]
                                                    for r in "AB")}, [tmp_path / "data"])
    assert sheet.shape[1] > one_tile.shape[1]  # two crops differ: two tiles side by side, one in the first two rows
    assert main([str(tmp_path / "A"), str(tmp_path / "B"), "--sheet", str(tmp_path / "s.png"),
                 "--images", str(tmp_path / "data")]) == 0
    assert load_image(tmp_path / "s.png").shape == sheet.shape
    with pytest.raises(FileNotFoundError, match="no folder heldout_en/"):
        differing_sheet(read_pair(tmp_path / "A", tmp_path / "B"), [tmp_path / "elsewhere"])
