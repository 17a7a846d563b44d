"""gpt.evaluate: per-dataset table and combined row, breakdowns, JSON, per-sample predictions, unreadable images."""
import json

import pandas as pd
import pytest

from gpt.evaluate import breakdown, dataset_names, evaluate, main as evaluate_main
from gpt.metrics import text_metrics
from gpt.pretrained import load_pretrained
from gpt.reading import read_images
from tests.test_export import build_export
from tests.test_predict_read import write_images


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    model_dir = build_export(root / "model")
    pretrained = load_pretrained(model_dir)
    paths = write_images(root / "a", 4) + write_images(root / "b", 3)
    # Labels equal to the model's own readings make an exact-match dataset; "zz" labels make a wrong one.
    # float32 throughout: bf16 kernels may round differently for different batch sizes.
    own = [p[0] for p in read_images(pretrained, [str(p) for p in paths[:4]], precision="float32",
                                     progress=False).predictions]
    pd.DataFrame({"img_path": [p.name for p in paths[:4]], "text": own}).to_csv(root / "a" / "labels.csv", index=False)
    pd.DataFrame({"img_path": [p.name for p in paths[4:]], "text": ["zz"] * 3}).to_csv(root / "b" / "wrong.csv",
                                                                                      index=False)
    return {"root": root, "model_dir": model_dir, "pretrained": pretrained, "own": own}


def test_table_rows_and_combined(setup):
    root = setup["root"]
    table, predictions, reports = evaluate(setup["pretrained"], [str(root / "a" / "labels.csv"),
                                                                 str(root / "b" / "wrong.csv")], precision="float32",
                                         progress=False)
    assert list(table["dataset"]) == ["a", "wrong", "combined"]
    assert list(table["samples"]) == [4, 3, 7] and list(table["failed"]) == [0, 0, 0]
    assert table["accuracy"][0] == 1.0 and table["cer"][0] == 0.0 and table["one_minus_ned"][0] == 1.0
    wrong = predictions["wrong"]
    assert list(wrong["label"]) == ["zz"] * 3
    expected = text_metrics(list(wrong["text"]), list(wrong["label"]))
    assert table["cer"][1] == pytest.approx(expected["cer"])
    assert table["mean_label_length"][1] == 2.0
    pooled = text_metrics(setup["own"] + list(wrong["text"]), setup["own"] + ["zz"] * 3)
    assert table["accuracy"][2] == pytest.approx(pooled["accuracy"])
    assert table["cer"][2] == pytest.approx(pooled["cer"])
    assert 0 < table["mean_confidence"][2] <= 1 and table["images_per_s"][2] > 0
    assert not any(len(r) for r in reports.values())


def test_cli_json_predictions_and_a_missing_image(setup, tmp_path, capsys):
    root = setup["root"]
    broken = tmp_path / "broken.csv"
    pd.DataFrame({"img_path": [str(root / "a" / "crop_0.png"), "missing.png"], "text": [setup["own"][0], "x"]}
                 ).to_csv(broken, index=False)
    out_json, folder = tmp_path / "results.json", tmp_path / "preds"
    code = evaluate_main([str(setup["model_dir"]), str(root / "a" / "labels.csv"), str(broken), "--json",
                          str(out_json), "--predictions", str(folder), "--no-progress", "--precision", "float32"])
    captured = capsys.readouterr()
    assert code == 1
    assert "combined" in captured.out and "accuracy %" in captured.out
    assert "missing.png" in captured.err
    results = json.loads(out_json.read_text())
    assert [r["dataset"] for r in results["results"]] == ["a", "broken"]
    assert results["combined"]["samples"] == 5 and results["combined"]["failed"] == 1
    assert results["results"][1]["accuracy"] == 1.0  # the unreadable image is out of the metrics, but counted
    per_sample = pd.read_csv(folder / "a.csv", keep_default_na=False)
    assert list(per_sample.columns) == ["img_path", "label", "text", "confidence", "correct"]
    assert per_sample["correct"].all()
    assert pd.read_csv(folder / "broken.bad.csv")["img_path"][0] == "missing.png"


def test_ignore_case_flag(setup, tmp_path):
    upper = tmp_path / "upper.csv"
    root = setup["root"]
    pd.DataFrame({"img_path": [str(root / "a" / f"crop_{i}.png") for i in range(4)],
                  "text": [t.upper() for t in setup["own"]]}).to_csv(upper, index=False)
    strict, _, _ = evaluate(setup["pretrained"], [str(upper)], precision="float32", progress=False)
    loose, _, _ = evaluate(setup["pretrained"], [str(upper)], ignore_case=True, precision="float32", progress=False)
    assert loose["accuracy"][0] == 1.0
    if any(t != t.upper() for t in setup["own"]):
        assert strict["accuracy"][0] < 1.0


def test_dataset_names_are_short_and_distinct():
    assert dataset_names(["data/en/labels.csv", "data/ko/labels.csv", "x/test_set.csv", "y/test_set.csv"]) == [
        "en", "ko", "test_set", "test_set#2"]


def test_bad_inputs(setup, tmp_path, capsys):
    assert evaluate_main([str(setup["model_dir"]), str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no dataset given"):
        evaluate(setup["pretrained"], [])


def test_breakdown_by_a_csv_column_and_by_label_length(setup, tmp_path, capsys):
    root = setup["root"]
    fonts = tmp_path / "fonts.csv"
    pd.DataFrame({"img_path": [str(root / "a" / f"crop_{i}.png") for i in range(4)],
                  "text": [setup["own"][0], setup["own"][1], "zz", "zzz"], "font": ["A", "A", "B", "B"]}
                 ).to_csv(fonts, index=False)
    _, predictions, _ = evaluate(setup["pretrained"], [str(fonts)], precision="float32", progress=False)
    by_font = breakdown(predictions, "font")
    assert list(by_font["dataset"]) == ["fonts", "fonts", "combined", "combined"]
    assert list(by_font["font"]) == ["A", "B", "A", "B"] and list(by_font["samples"]) == [2, 2, 2, 2]
    assert by_font["accuracy"][0] == 1.0
    wrong = predictions["fonts"].iloc[2:]
    assert by_font["cer"][1] == pytest.approx(text_metrics(list(wrong["text"]), ["zz", "zzz"])["cer"])
    by_length = breakdown(predictions, "label_length")
    lengths = sorted({len(t) for t in predictions["fonts"]["label"]})
    assert list(by_length["label_length"][:len(lengths)]) == lengths
    assert by_length["samples"][:len(lengths)].sum() == 4
    with pytest.raises(ValueError, match=r"--by colour: .*'font', 'label_length'"):
        breakdown(predictions, "colour")
    out_json = tmp_path / "by.json"
    assert evaluate_main([str(setup["model_dir"]), str(fonts), "--by", "font", "--json", str(out_json),
                          "--no-progress", "--precision", "float32"]) == 0
    assert "by font:" in capsys.readouterr().out
    assert [row["font"] for row in json.loads(out_json.read_text())["by"]["font"]] == ["A", "B", "A", "B"]
    assert evaluate_main([str(setup["model_dir"]), str(fonts), "--by", "colour", "--no-progress"]) == 2
