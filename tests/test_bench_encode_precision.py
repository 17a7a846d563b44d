"""scripts.bench_encode_precision: its float32 encoding is the library's, and the script runs end to end."""
import cv2
import numpy as np
import pandas as pd

from gpt.pretrained import load_pretrained
from tests.fixtures import recognition_export
from vqvae.encoding import encode_paths


def crops(directory, count=6):
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        image = np.full((20 + 4 * index, 40 + 16 * index, 3), 230, np.uint8)
        image[6:14, 4:30] = rng.integers(0, 80, (8, 26, 3))
        cv2.imwrite(str(directory / f"{index}.png"), image)
        rows.append({"img_path": f"{index}.png", "text": "abc"})
    pd.DataFrame(rows).to_csv(directory / "labels.csv", index=False)
    return directory / "labels.csv"


def test_float32_codes_are_the_library_codes_and_the_script_reports(tmp_path, capsys):
    from scripts.bench_encode_precision import main

    export = recognition_export(tmp_path / "export")
    labels = crops(tmp_path)
    assert main([str(labels), "--model", str(export), "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 crops encoded" in out and "read from float32 codes: exact" in out and "read from bf16" in out
    pretrained = load_pretrained(export, load_tokenizer=False)
    library, _ = encode_paths(pretrained.vqvae, [str(tmp_path / f"{i}.png") for i in range(6)], pretrained.max_length,
                              num_workers=0, progress=False)
    from scripts.bench_encode_precision import encode, template_batches
    from vqvae.data import CropDataset

    vqvae = pretrained.vqvae
    dataset = CropDataset([str(tmp_path / f"{i}.png") for i in range(6)], pretrained.max_length, vqvae.downsample,
                          progress=False, line_codes=vqvae.line_codes)
    batches = template_batches(dataset)
    grids, _ = encode(vqvae, batches, 6, bf16=False)
    assert all(np.array_equal(a, b) for a, b in zip(grids, library))
