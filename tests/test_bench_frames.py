"""scripts.bench_frames: readings split by whether the crop's frame was found and cut."""
import cv2
import numpy as np
import pandas as pd
import pytest

from scripts.bench_frames import frame_rows, main
from tests.test_templates import _rgb, _strokes
from vqvae.plumbing.io import save_image


def test_readings_are_split_by_whether_a_frame_was_cut(tmp_path, capsys):
    images = tmp_path / "data" / "heldout_en" / "images"
    images.mkdir(parents=True)
    framed = np.full((60, 240), 255, np.uint8)
    framed[10:50, 20:220] = _strokes(40, 200)
    cv2.rectangle(framed, (16, 6), (223, 53), 0, 3)
    for name, grey in (("a", framed), ("b", framed), ("c", _strokes(40, 200))):
        save_image(images / f"{name}.png", _rgb(grey))
    predictions = tmp_path / "pred"
    predictions.mkdir()
    pd.DataFrame({"img_path": ["images/a.png", "images/b.png", "images/c.png"], "label": "x", "text": "x",
                  "correct": [True, False, True]}).to_csv(predictions / "heldout_en.csv", index=False)
    [row] = frame_rows(predictions, tmp_path / "data")
    assert row == {"set": "heldout_en", "crops": 3, "cut": 2, "cut read %": 50.0, "rest read %": 100.0}
    assert main([str(predictions), str(tmp_path / "data")]) == 0 and "| heldout_en | 3 | 2 |" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no folder heldout_en/"):
        frame_rows(predictions, tmp_path)
