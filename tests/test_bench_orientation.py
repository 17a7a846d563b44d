"""scripts.bench_orientation: only crops in the band are read, as they are and padded into horizontal lines."""
import cv2
import numpy as np
import pandas as pd

import gpt.reading
from scripts.bench_orientation import as_horizontal, main
from tests.fixtures import recognition_export


def test_as_horizontal_pads_a_tall_crop_with_its_edge_into_a_wide_one():
    image = np.zeros((30, 20, 3), np.uint8)
    image[:, -1] = 200  # the right edge, which the padding repeats
    wide = as_horizontal(image)
    assert wide.shape == (30, 31, 3) and (wide[:, 20:] == 200).all() and (wide[:, :20] == image).all()


def test_script_reads_only_the_band_both_ways(tmp_path, capsys, monkeypatch):
    sizes = {"tall.png": (60, 40), "wide.png": (30, 90), "thin.png": (90, 30)}  # (h, w): 0.67 in, 3 and 0.33 out
    for name, (height, width) in sizes.items():
        image = np.full((height, width, 3), 230, np.uint8)
        image[8:height - 8, 6:width - 6] = 20
        cv2.imwrite(str(tmp_path / name), image)
    pd.DataFrame({"img_path": list(sizes), "text": ["ab"] * 3}).to_csv(tmp_path / "labels.csv", index=False)
    export = recognition_export(tmp_path / "export")
    shapes = []
    read = gpt.reading.read_arrays
    monkeypatch.setattr(gpt.reading, "read_arrays", lambda model, images, *args:
                        shapes.append([image.shape[:2] for image in images]) or read(model, images))
    assert main([str(tmp_path / "labels.csv"), "--model", str(export)]) == 0
    assert shapes == [[(60, 40)], [(60, 61)]]
    assert "1 of its 3 crops  as vertical " in capsys.readouterr().out
