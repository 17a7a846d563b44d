"""scripts.bench_vq_legibility: the strip and the reconstruction Tesseract reads, shaped like the crop's line."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from scripts.bench_vq_legibility import contact_sheet, derived_versions, load_codec
from tests.fixtures import recognition_export
from tests.test_encode_decode import MAX_LENGTH, make_tiny_run
from vqvae.checkpoint import fingerprint, read_vqvae_dir_config


def crop(width: int, height: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), (30, 40, 200))  # light text on a dark blue ground
    ImageDraw.Draw(image).text((4, height // 3), "hello", fill=(250, 250, 250))
    return np.asarray(image)


def test_strips_and_reconstructions_are_upright_lines_of_one_size(tmp_path):
    export = recognition_export(tmp_path / "export")
    model, max_length = load_codec(export)
    assert max_length == read_vqvae_dir_config(export / "vqvae")["max_length"]
    strips, codes = derived_versions(model, max_length, [crop(80, 20), crop(48, 16)])
    for strip, reconstruction, (width, height) in zip(strips, codes, [(80, 20), (48, 16)]):
        assert strip.shape == reconstruction.shape
        # 4 codes of 8 pixels across the line, scaled up 2x; along it, the crop's aspect (no padding kept).
        assert strip.shape[0] == 64 and strip.shape[1] == pytest.approx(64 * width / height, abs=16)
        assert np.median(strip) > 128  # normalized to dark text on a light ground
    # A crop taller than wide (one syllable) keeps its shape: 4 codes across, shown as it stands.
    (strip,), (reconstruction,) = derived_versions(model, max_length, [crop(20, 30)])
    assert strip.shape == reconstruction.shape and strip.shape[1] == 64 and strip.shape[0] == pytest.approx(96, abs=16)


def test_the_contact_sheet_holds_every_row():
    rows = [(np.zeros((10, 30, 3), np.uint8),) * 3, (np.zeros((20, 20, 3), np.uint8),) * 3]
    sheet = contact_sheet(rows, height=48, gap=6)
    assert sheet.shape[0] == 2 * (48 + 6) + 6 and sheet.shape[1] == 3 * 144 + 4 * 6
    assert (sheet[6:54, 6:150] == 0).all() and (sheet[:6] == 255).all()


def test_a_vqvae_training_run_folder_is_a_codec_too(tmp_path):
    config, checkpoint, model = make_tiny_run(tmp_path / "run", name="config")
    (tmp_path / "run" / "checkpoints").mkdir()
    checkpoint.rename(tmp_path / "run" / "checkpoints" / "last.ckpt")
    loaded, max_length = load_codec(tmp_path / "run")
    assert fingerprint(loaded) == fingerprint(model) and max_length == MAX_LENGTH
