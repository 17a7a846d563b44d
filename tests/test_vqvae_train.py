"""Training wiring: the CLI end to end on a tiny rendered dataset, resume, schedule, sample grids."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw, ImageFont

from vqvae.checkpoint import init_weights
from vqvae.config import load_vqvae_config
from vqvae.losses import vqvae_loss_terms
from vqvae.plumbing.io import load_image
from vqvae.plumbing.trainer import metrics_files
from vqvae.task import VQVAEDataModule, VQVAETask, sample_grid
from vqvae.train import main

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "config" / "tiny" / "vqvae.yaml"
WORDS = ["alpha", "beta", "gamma", "delta", "OCR", "text", "VQ", "model", "token", "image", "Seoul", "hello"]


def render_words(root: Path, canvas: tuple[int, int] | None = None) -> Path:
    """A dozen black-on-white DejaVu words as a labelled CSV (rendered here: no other script needed).
    Each image is cropped to its word, or drawn on a fixed `canvas` (width, height) when given."""
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 20)
    rows = []
    for i, word in enumerate(WORDS):
        left, top, right, bottom = font.getbbox(word)
        image = Image.new("RGB", canvas or (right - left + 8, bottom - top + 8), (255, 255, 255))
        ImageDraw.Draw(image).text((4 - left, 4 - top), word, font=font, fill=(0, 0, 0))
        image.save(root / f"{i:02d}.png")
        rows.append({"img_path": f"{i:02d}.png", "text": word})
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["img_path", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "labels.csv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Words cropped tight: several aspect ratios, so several templates."""
    return render_words(tmp_path_factory.mktemp("words"))


@pytest.fixture(scope="module")
def uniform_dataset(tmp_path_factory) -> Path:
    """Words on one 96x24 canvas: one template, so batches of 6 make epochs of exactly 2 steps."""
    return render_words(tmp_path_factory.mktemp("uniform"), canvas=(96, 24))


def tiny_args(dataset: Path, run_dir: Path, *extra: str) -> list[str]:
    return [str(TINY_CONFIG), f"data.train={dataset}", f"data.val={dataset}", f"run_dir={run_dir}", *extra]


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "key=value" in capsys.readouterr().out


def test_cli_trains_and_writes_run_folder(dataset, tmp_path):
    run_dir = tmp_path / "run"
    assert main(tiny_args(dataset, run_dir, "trainer.max_steps=2", "trainer.val_check_interval=2")) == 0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "checkpoints" / "best.ckpt").is_file()
    saved = load_vqvae_config(run_dir / "config.yaml")
    assert saved.data.train == str(dataset) and saved.model.num_codes == 16
    grid = load_image(run_dir / "samples" / "step_000002.png")
    assert grid.shape[0] > 16 and grid.shape[1] > 16
    header = (run_dir / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss", "val/psnr", "val/codebook_usage", "val/perplexity"} <= set(header)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["hyper_parameters"]["cfg"]["model"] == checkpoint["model_config"]
    assert checkpoint["model_config"]["num_codes"] == 16 and checkpoint["global_step"] == 2
    task = VQVAETask.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    state = {k[len("model."):]: v for k, v in checkpoint["state_dict"].items()}
    for key, value in task.model.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_resume_continues_where_it_stopped(uniform_dataset, tmp_path):
    run_dir, common = tmp_path / "run", ["data.batch_size=6", "trainer.val_check_interval=2"]
    assert main(tiny_args(uniform_dataset, run_dir, "trainer.max_steps=2", *common)) == 0
    first = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert main(tiny_args(uniform_dataset, run_dir, "trainer.max_steps=4", *common)) == 0  # resume_from=auto
    second = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert first["global_step"] == 2 and second["global_step"] == 4
    # Optimiser and schedule carried on (a fresh start would count 2 Adam steps, not 4) ...
    adam_steps = {int(state["step"]) for state in second["optimizer_states"][0]["state"].values()}
    assert adam_steps == {4} and second["lr_schedulers"][0]["last_epoch"] == 4
    # ... the second run trained only steps 2 and 3 (a fresh start would also log steps 0 and 1) ...
    with open(run_dir / "logs" / "metrics.csv", encoding="utf-8") as f:
        steps = {int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss")}
    assert steps == {2, 3}, steps
    # ... and the first call's rows are kept beside them (Lightning's CSVLogger would have deleted them).
    assert [path.name for path in metrics_files(run_dir)] == ["metrics.1.csv", "metrics.csv"]
    with open(run_dir / "logs" / "metrics.1.csv", encoding="utf-8") as f:
        assert {int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss")} == {0, 1}
    # ... and the weights moved on from the first run's.
    key = "model.encoder.layers.0.weight"
    assert not torch.equal(first["state_dict"][key], second["state_dict"][key])


def test_unknown_key_fails_naming_it(dataset, tmp_path, capsys):
    assert main(tiny_args(dataset, tmp_path / "run", "model.num_cods=8")) == 2
    assert "num_cods" in capsys.readouterr().err


def test_missing_dataset_fails_naming_it(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    assert main([str(TINY_CONFIG), f"data.train={missing}", f"data.val={missing}", f"run_dir={tmp_path}"]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_fast_dev_run_wiring(dataset, tmp_path):
    cfg = load_vqvae_config(TINY_CONFIG, [f"data.train={dataset}", f"data.val={dataset}", f"run_dir={tmp_path}"])
    task = VQVAETask(cfg)
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", use_distributed_sampler=False, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(task, datamodule=VQVAEDataModule(cfg))
    assert trainer.state.finished and "val/codebook_usage" in trainer.callback_metrics


def test_training_batches_have_the_encode_shapes(dataset, tmp_path):
    """The loader feeds template boxes: every batch one shape, divisible by f, of at most L tokens."""
    cfg = load_vqvae_config(TINY_CONFIG, [f"data.train={dataset}", f"data.val={dataset}", f"run_dir={tmp_path}"])
    datamodule = VQVAEDataModule(cfg)
    datamodule.setup("fit")
    f, max_length = cfg.model.downsample, cfg.data.max_length
    for images, _ in datamodule.train_dataloader():
        height, width = images.shape[-2:]
        assert height % f == 0 and width % f == 0
        rows, cols = height // f, width // f
        assert rows * (cols + 1) <= max_length
        assert -1 <= images.min() and images.max() <= 1


def test_sample_grid_pads_mixed_shapes():
    originals = [np.zeros((8, 40, 3), np.uint8), np.zeros((16, 24, 3), np.uint8), np.zeros((24, 8, 3), np.uint8)]
    recons = [np.full_like(o, 200) for o in originals]
    grid = sample_grid(originals, recons, gap=2)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[0] >= 2 * 24 + 2 and grid.shape[1] >= 40
    assert (grid == 200).any() and (grid == 0).any()
    with pytest.raises(ValueError, match="equally many"):
        sample_grid(originals, recons[:2])


def test_a_clean_target_run_learns_its_targets_from_a_given_start(dataset, tmp_path, capsys):
    """data.clean_target reconstructs the target_path images, not the crops; init_from starts a new run from
    another run's weights; a CSV without targets is refused with the fix named."""
    assert main(tiny_args(dataset, tmp_path / "plain", "data.clean_target=true")) == 2
    assert "--clean-targets" in capsys.readouterr().err
    frame = pd.read_csv(dataset)
    paired = tmp_path / "paired.csv"
    frame.assign(img_path=[str(dataset.parent / p) for p in frame["img_path"]],
                 target_path=[str(dataset.parent / p) for p in frame["img_path"]]).to_csv(paired, index=False)
    source = tmp_path / "source"
    assert main(tiny_args(dataset, source, "trainer.max_steps=2")) == 0
    run = tmp_path / "clean"
    assert main(tiny_args(paired, run, "data.clean_target=true", f"init_from={source / 'checkpoints' / 'last.ckpt'}",
                          "trainer.max_steps=1", "optim.lr=1e-6")) == 0
    started = torch.load(source / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    ended = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    key = "model.encoder.layers.0.weight"
    torch.testing.assert_close(ended[key], started[key], atol=1e-4, rtol=0)  # one step at 1e-6 from the source
    assert not torch.allclose(VQVAETask(load_vqvae_config(run / "config.yaml")).state_dict()[key], started[key])

    cfg = load_vqvae_config(TINY_CONFIG, [f"data.train={dataset}", f"data.val={dataset}", f"run_dir={tmp_path}"])
    task = VQVAETask(cfg).eval()
    images = torch.rand(2, 3, 32, 64) * 2 - 1
    batch = (images, torch.arange(2), -images)
    with torch.no_grad():
        out, terms, target = task._step(batch)
        _, own, _ = task._step(batch[:2])
    assert target is batch[2]
    expected = vqvae_loss_terms(out, -images, cfg.loss.reconstruction, cfg.loss.edge_weight)
    torch.testing.assert_close(terms.total, expected.total)
    assert not torch.allclose(terms.total, own.total)  # without targets it reconstructs the images

    other = load_vqvae_config(TINY_CONFIG, [f"data.train={dataset}", f"data.val={dataset}", f"run_dir={tmp_path}",
                                            "model.hidden_channels=8"])
    with pytest.raises(ValueError, match="another architecture"):
        init_weights(VQVAETask(other).model, source / "checkpoints" / "last.ckpt")
