"""scripts.pretrain_draw's clean crops, rendered and encoded for real, and the pair of its runs side by side."""
import json
import os
import subprocess
from pathlib import Path

import pandas as pd

from scripts.fonts import default_font_files
from scripts.pipeline import Pipeline
from scripts.pretrain import published_vq_config
from scripts.pretrain_draw import render_clean

ROOT = Path(__file__).resolve().parents[1]
DRAWER_VQVAE = ROOT / "resources/models/ocr-ko-en-draw/vqvae"


def test_clean_crops_are_rendered_unaugmented_without_held_out_words_and_encoded_once(tmp_path):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for font in default_font_files():
        if font.name == "DejaVuSans.ttf" or font.name.startswith("NotoSansCJK"):
            (fonts / font.name).symlink_to(font)
    held_out = tmp_path / "heldout_words_all.txt"
    held_out.write_text("the\n있다\n")
    vq_args = (published_vq_config(tmp_path, DRAWER_VQVAE, "draw-vqvae.yaml"), DRAWER_VQVAE)
    out = tmp_path / "data" / "train"
    pipe = Pipeline(tmp_path, resume=True)
    assert render_clean(pipe, out, 12, 3, 0.5, fonts, held_out, vq_args) == out / "tokens.csv"

    settings = json.loads((out / "render.json").read_text())["settings"]
    assert settings["augment"] == 0.0 and settings["syllable_share"] == 0.5 and settings["seed"] == 3
    labels = pd.read_csv(out / "labels.csv", keep_default_na=False, dtype=str)
    tokens = pd.read_csv(out / "tokens.csv", keep_default_na=False, dtype=str)
    assert len(labels) + _failed(out / "labels.csv.bad.csv") == 12
    assert list(tokens["text"]) == list(labels["text"])  # every crop encoded, none dropped
    assert not any(word in text.casefold().split() for text in labels["text"] for word in ("the", "있다"))

    # a second call (a resumed run) finds both steps done and rewrites nothing
    stamps = [(out / name).stat().st_mtime_ns for name in ("labels.csv", "tokens.csv")]
    render_clean(Pipeline(tmp_path, resume=True), out, 12, 3, 0.5, fonts, held_out, vq_args)
    assert [(out / name).stat().st_mtime_ns for name in ("labels.csv", "tokens.csv")] == stamps


def _failed(bad_csv: Path) -> int:
    return len(pd.read_csv(bad_csv)) if bad_csv.exists() else 0


def test_a_pair_whose_arm_fails_stops_before_averaging_and_says_so(tmp_path):
    # PYTHON=false: each arm's first step fails at once, so no training runs
    env = {**os.environ, "PYTHON": "false"}
    command = ["bash", "scripts/paired_draw_clean.sh", str(tmp_path / "pair"), "0.2", "0.6", "1", "10", "3"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "an arm failed" in done.stderr and str(tmp_path / "pair" / "A.log") in done.stderr
    assert not (tmp_path / "pair" / "soup").exists()
