"""scripts.bench_polarity: the two readings compared crop by crop, and the script runs end to end."""
import numpy as np
import pandas as pd
import pytest

import vqvae.templates as templates
from scripts.bench_polarity import compare, main
from tests.fixtures import labelled_crops, recognition_export


def test_compare_keeps_the_more_confident_reading_per_crop():
    paths = ["a.png", "b.png", "c.png", "d.png"]
    as_is = pd.DataFrame({"img_path": paths, "confidence": [0.9, 0.2, 0.5, 0.1],
                          "correct": [True, False, False, False]})
    flipped = pd.DataFrame({"img_path": paths, "confidence": [0.1, 0.8, 0.5, 0.3],
                            "correct": [False, True, True, False]})
    row = compare({"set": as_is}, {"set": flipped}).loc["set"]
    assert row.crops == 4 and row.as_is == 25.0 and row.other == 50.0 and row.either == 75.0
    # a: as is (right); b: flipped (right); c: a tie keeps as is (wrong); d: flipped (wrong)
    assert row.more_confident == 50.0 and row.other_kept == 2
    with pytest.raises(ValueError, match="different crops"):
        compare({"set": as_is}, {"set": flipped.iloc[::-1]})


def test_script_reads_every_set_both_ways(tmp_path, capsys, monkeypatch):
    labels = labelled_crops(tmp_path)
    export = recognition_export(tmp_path / "export")
    seen = []  # the median grey of every normalized crop the encoder gets, in order
    monkeypatch.setattr("vqvae.encoding.default_num_workers", lambda device: 0)  # fit in this process, seen here
    fit = templates.fit_grey_to_template
    monkeypatch.setattr(templates, "fit_grey_to_template",
                        lambda grey, *args: seen.append(np.median(grey)) or fit(grey, *args))
    assert main([str(labels), "--model", str(export)]) == 0
    assert len(seen) == 6 and min(seen[:3]) > 127 and max(seen[3:]) < 128  # as is: light ground; then flipped
    assert " 3 crops  as is " in capsys.readouterr().out
