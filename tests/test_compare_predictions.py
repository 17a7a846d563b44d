"""scripts.compare_predictions: two models' readings of the same crops, crop by crop."""
import pandas as pd
import pytest

from scripts.compare_predictions import compare, main, read_pair


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
