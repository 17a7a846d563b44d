"""Resuming a run: an interrupted and resumed VQ-VAE or GPT run trains exactly as an uninterrupted one (same
batches, augmentations, learning rates and dead-code restarts, so the same weights), and a time budget
becomes a step count once, kept by the checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import gpt.train as gpt_train
import vqvae.train as train
from tests.test_gpt_train import TINY, WORDS, random_tokens
from tests.test_vqvae_train import render_words, tiny_args
from vqvae.plumbing.trainer import build_trainer

MAX_STEPS = 9  # 4 batches an epoch (12 crops of several templates, batch 4): two full epochs and one step


class Recorder(pl.Callback):
    """Records what each training step saw; with `stop_at` interrupts the run there (as a kill would,
    but after last.ckpt is written at that step)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.steps = stop_at, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if isinstance(batch, dict):  # a GPT batch: token ids of the rows `index`
            rows, pixels = batch["index"], float(batch["input_ids"].sum())
        else:
            images, rows = batch
            pixels = float(images.sum())
        self.steps.append({"step": trainer.global_step, "rows": rows.tolist(), "pixels": pixels,
                           "lr": trainer.optimizers[0].param_groups[0]["lr"]})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.stop_at is not None and trainer.global_step >= self.stop_at:
            trainer.should_stop = True


def run(monkeypatch, dataset: Path, run_dir: Path, *overrides: str, stop_at: int | None = None) -> Recorder:
    recorder = Recorder(stop_at)
    monkeypatch.setattr(train, "build_trainer", lambda *a, **k: build_trainer(*a, callbacks=[recorder], **k))
    assert train.main(tiny_args(dataset, run_dir, "data.augment=true", *overrides)) == 0
    return recorder


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return render_words(tmp_path_factory.mktemp("words"))


@pytest.fixture(scope="module")
def straight(dataset, tmp_path_factory) -> tuple[Recorder, dict]:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder = run(monkeypatch, dataset, run_dir, f"trainer.max_steps={MAX_STEPS}")
    return recorder, checkpoint(run_dir)


@pytest.mark.parametrize("stop_at", [4, 6], ids=["at-epoch-end", "mid-epoch"])
def test_resumed_run_ends_with_the_same_weights(straight, dataset, tmp_path, monkeypatch, stop_at):
    run_dir, args = tmp_path / "run", [f"trainer.max_steps={MAX_STEPS}"]
    first = run(monkeypatch, dataset, run_dir, *args, stop_at=stop_at)
    assert checkpoint(run_dir)["global_step"] == stop_at
    second = run(monkeypatch, dataset, run_dir, *args)  # resume_from=auto
    expected, resumed = straight[0].steps, first.steps + second.steps
    # The sampler's epoch and position came back: same rows, same augmented pixels, same rates.
    assert [s["step"] for s in resumed] == list(range(MAX_STEPS))
    assert [s["rows"] for s in resumed] == [s["rows"] for s in expected]
    assert [s["pixels"] for s in resumed] == [s["pixels"] for s in expected]
    assert [s["lr"] for s in resumed] == [s["lr"] for s in expected]
    # Same weights, codebook and dead-code counters. Tolerance 1e-6 absolute: the same float32 CPU ops
    # in the same order give equal bits here; the margin only allows a backend that reorders a reduction.
    final, reference = checkpoint(run_dir), straight[1]
    assert final["global_step"] == MAX_STEPS
    assert final["state_dict"].keys() == reference["state_dict"].keys()
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(final["state_dict"][name], value, rtol=0, atol=1e-6, msg=name)


def budget_state(ckpt: dict) -> dict:
    (state,) = [value for key, value in ckpt["callbacks"].items() if key.startswith("StepBudget")]
    return state


def test_time_budget_becomes_steps_once_and_a_resume_keeps_them(dataset, tmp_path, monkeypatch):
    """max_time turns into a step count at the end of warmup (at least MEASURE_STEPS = 10 steps here) on
    rank 0; the checkpoint keeps it, and a resume with the same budget goes on with it, not a new
    measurement. Here max_steps (14) binds, so the budget is known in advance."""
    run_dir, args = tmp_path / "run", ["trainer.max_time=00:00:10:00", "trainer.max_steps=14",
                                       "trainer.val_check_interval=100"]
    first = run(monkeypatch, dataset, run_dir, *args, stop_at=12)
    state = budget_state(checkpoint(run_dir))
    assert state == {"max_time": "00:00:10:00", "max_steps": 14, "budget": 14, "measured_at": 10, "decay_from": 10}
    lrs = [s["lr"] for s in first.steps]
    assert lrs[2:11] == [pytest.approx(3e-3)] * 9  # the peak rate until the budget is known ...
    assert lrs[11] < lrs[10]  # ... then the cosine toward step 14
    # A resumed run takes the step count from the checkpoint: make it 13 and it stops there, at the floor.
    ckpt = checkpoint(run_dir)
    budget_state(ckpt)["budget"] = 13
    torch.save(ckpt, run_dir / "checkpoints" / "last.ckpt")
    second = run(monkeypatch, dataset, run_dir, *args)
    assert [s["step"] for s in second.steps] == [12]
    final = checkpoint(run_dir)
    assert final["global_step"] == 13 and budget_state(final)["budget"] == 13
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(3e-4)  # lr * min_lr_ratio


def test_a_longer_budget_extends_the_cosine_it_began_not_a_new_one(dataset, tmp_path, monkeypatch):
    """A resume under a larger budget keeps the old curve while it measures (as many steps as a fresh run: 10 here),
    then ends the cosine that began at the first measurement (step 10) at the new count: no warm restart at the peak."""
    from vqvae.plumbing.optim import lr_multiplier

    run_dir = tmp_path / "run"
    run(monkeypatch, dataset, run_dir, "trainer.max_time=00:00:10:00", "trainer.max_steps=14",
        "trainer.val_check_interval=100", stop_at=12)
    longer = run(monkeypatch, dataset, run_dir, "trainer.max_time=00:00:10:00", "trainer.max_steps=40",
                 "trainer.val_check_interval=100")
    lrs = {s["step"]: s["lr"] for s in longer.steps}
    assert [lrs[step] for step in range(14, 23)] == [pytest.approx(3e-4)] * 9  # the old curve's floor while measuring
    state = budget_state(checkpoint(run_dir))
    assert (state["budget"], state["measured_at"], state["decay_from"]) == (40, 22, 10)
    for step in (24, 30, 39):  # the tiny config: 2 warmup steps, peak 3e-3, floor 0.1 of it
        assert lrs[step] == pytest.approx(3e-3 * lr_multiplier(step, 2, 0.1, 10, 40))
    assert max(lrs[step] for step in range(23, 40)) < 0.7 * 3e-3  # never back at the peak (3e-3)


def test_a_changed_budget_is_measured_anew():
    from vqvae.plumbing.trainer import StepBudget

    saved = {"max_time": "00:00:10:00", "max_steps": 14, "budget": 14, "measured_at": 10}
    same, longer = StepBudget("00:00:10:00", 14), StepBudget("00:00:20:00", 14)
    same.load_state_dict(saved)
    longer.load_state_dict(saved)
    assert same.budget == 14 and longer.budget is None
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        StepBudget("ten minutes")


GPT_STEPS = 10  # 32 rows in batches of 8 grouped by length: 4 batches an epoch, two epochs and a half


def run_gpt(monkeypatch, data: tuple[str, str], run_dir: Path, stop_at: int | None = None) -> Recorder:
    recorder = Recorder(stop_at)
    monkeypatch.setattr(gpt_train, "build_trainer", lambda *a, **k: build_trainer(*a, callbacks=[recorder], **k))
    train_csv, val_csv = data
    assert gpt_train.main([TINY, f"data.train={train_csv}", f"data.val={val_csv}", f"run_dir={run_dir}",
                           "data.batch_size=8", f"trainer.max_steps={GPT_STEPS}", "trainer.val_check_interval=100",
                           "model.dropout=0.1", "validation.num_decode_samples=0"]) == 0
    return recorder


def test_resumed_gpt_run_ends_with_the_same_weights(tmp_path, monkeypatch):
    """The GPT's length-grouped batch sampler resumes mid-epoch: same rows, rates and dropout per step."""
    data = (random_tokens(tmp_path / "train.csv", WORDS * 2), random_tokens(tmp_path / "val.csv", WORDS[:8], seed=1))
    straight = run_gpt(monkeypatch, data, tmp_path / "straight")
    first = run_gpt(monkeypatch, data, tmp_path / "run", stop_at=6)  # mid-epoch 2
    assert checkpoint(tmp_path / "run")["global_step"] == 6
    second = run_gpt(monkeypatch, data, tmp_path / "run")
    resumed = first.steps + second.steps
    assert [s["step"] for s in resumed] == list(range(GPT_STEPS))
    assert [s["rows"] for s in resumed] == [s["rows"] for s in straight.steps]
    assert [s["lr"] for s in resumed] == [s["lr"] for s in straight.steps]
    final, reference = checkpoint(tmp_path / "run"), checkpoint(tmp_path / "straight")
    for name, value in reference["state_dict"].items():  # tolerance as for the VQ-VAE above
        torch.testing.assert_close(final["state_dict"][name], value, rtol=0, atol=1e-6, msg=name)
