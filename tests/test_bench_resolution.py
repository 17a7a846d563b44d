"""scripts.bench_resolution: crops scaled down across their line only, and the script runs end to end."""
import json

import cv2
import numpy as np

from scripts.bench_resolution import main, scale_across_line
from tests.fixtures import labelled_crops, recognition_export


def test_scaling_sets_the_shorter_side_keeps_the_aspect_and_never_enlarges():
    wide, tall = np.zeros((40, 160, 3), np.uint8), np.zeros((90, 30, 3), np.uint8)
    assert scale_across_line(wide, 20).shape == (20, 80, 3)
    assert scale_across_line(tall, 15).shape == (45, 15, 3)
    assert scale_across_line(wide, 64) is wide  # already smaller: as it is
    assert scale_across_line(wide, 0) is wide


def test_script_reads_every_height_and_writes_scaled_copies(tmp_path, capsys):
    labels = labelled_crops(tmp_path)
    export = recognition_export(tmp_path / "export")
    out, figures = tmp_path / "scaled", tmp_path / "figures.json"
    assert main([str(labels), "--model", str(export), "--heights", "0", "12",
                 "--output", str(out), "--json", str(figures)]) == 0
    scaled = sorted(out.glob("h12/*/images/*.png"))
    assert len(scaled) == 3 and all(cv2.imread(str(p)).shape[0] == 12 for p in scaled)
    assert all(cv2.imread(str(p)).shape[0] == 30 for p in out.glob("h0/*/images/*.png"))
    assert set(json.loads(figures.read_text())["accuracy"]) == {"0", "12"}
    printed = capsys.readouterr().out
    assert "12 px:" in printed and "3 crops, median 30 px across the line" in printed
