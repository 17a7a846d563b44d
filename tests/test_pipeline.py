"""scripts.pipeline: which steps a resumed run skips and which it runs again."""
from __future__ import annotations

import json

from scripts.pipeline import Pipeline


def test_resume_skips_the_same_command_and_reruns_a_changed_one_or_its_dependents(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"a": 1}))
    first = Pipeline(tmp_path / "out", resume=True)
    first.run("load", "json.tool", data)
    first.run("check", "json.tool", data, after=["load"])
    assert first.ran == {"load", "check"}

    again = Pipeline(tmp_path / "out", resume=True)
    again.run("load", "json.tool", data)
    again.run("check", "json.tool", data, after=["load"])
    assert again.ran == set()  # same commands, nothing upstream ran: both skipped
    assert again.timings.keys() == {"load", "check"}

    changed = Pipeline(tmp_path / "out", resume=True)
    changed.run("load", "json.tool", "--indent", "2", data)  # e.g. a larger time budget
    changed.run("check", "json.tool", data, after=["load"])
    assert changed.ran == {"load", "check"}  # its input changed, so the dependent step runs too


def test_a_marker_without_a_command_counts_as_done(tmp_path):
    """Markers written before commands were recorded hold the seconds only; a resume must not redo hours."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "train.done").write_text("687.0")
    pipe = Pipeline(tmp_path, resume=True)
    assert pipe.run("train", "json.tool", "missing.json") == 0
    assert pipe.ran == set() and pipe.timings["train"] == 687.0


def test_csv_rows_counts_data_rows_without_headers(tmp_path):
    from scripts.pipeline import csv_rows

    (tmp_path / "a.csv").write_text("img_path,text\na.png,x\nb.png,y\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("img_path,text\nc.png,z\n", encoding="utf-8")
    assert csv_rows([tmp_path / "a.csv", tmp_path / "b.csv"]) == 3
    assert csv_rows([]) == 0
