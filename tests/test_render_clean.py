"""scripts/render_clean.sh: the clean crops of the drawer's continuations, rendered and encoded, run for real."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from scripts.fonts import default_font_files
from scripts.pretrain import published_vq_config

ROOT = Path(__file__).resolve().parents[1]
DRAWER_VQVAE = ROOT / "resources/models/ocr-ko-en-draw/vqvae"


def test_clean_crops_are_rendered_unaugmented_without_held_out_words_and_encoded_once(tmp_path):
    pretrain = tmp_path / "pretrain"
    (pretrain / "fonts/train").mkdir(parents=True)
    for font in default_font_files():
        if font.name == "DejaVuSans.ttf" or font.name.startswith("NotoSansCJK"):
            (pretrain / "fonts/train" / font.name).symlink_to(font)
    (pretrain / "data").mkdir()
    (pretrain / "data/heldout_words_all.txt").write_text("the\n있다\n")
    config = published_vq_config(tmp_path, DRAWER_VQVAE, "draw-vqvae.yaml")
    out = tmp_path / "train"
    command = ["bash", "scripts/render_clean.sh", str(out), "12", "3", "0.5", str(config), str(pretrain)]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    settings = json.loads((out / "render.json").read_text())["settings"]
    assert settings["augment"] == 0.0 and settings["syllable_share"] == 0.5 and settings["seed"] == 3
    labels = pd.read_csv(out / "labels.csv", keep_default_na=False, dtype=str)
    tokens = pd.read_csv(out / "tokens.csv", keep_default_na=False, dtype=str)
    assert len(labels) + _failed(out / "labels.csv.bad.csv") == 12
    assert list(tokens["text"]) == list(labels["text"])  # every crop encoded, none dropped
    assert not any(word in text.casefold().split() for text in labels["text"] for word in ("the", "있다"))

    # a second call finds both steps done and rewrites nothing
    stamps = [(out / name).stat().st_mtime_ns for name in ("labels.csv", "tokens.csv")]
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
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
