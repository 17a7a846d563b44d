"""Encoder distillation (`vqvae.train` with distill_from): a narrower encoder learns the teacher's codes."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.test_vqvae_train import render_words, tiny_args
from vqvae.checkpoint import load_vqvae_dir
from vqvae.encode import main as encode_main
from vqvae.encoding import encode_paths
from vqvae.plumbing.io import read_labelled_csv
from vqvae.tokens import string_to_grid
from vqvae.train import main as train_main


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> tuple[Path, Path]:
    """(a tiny trained VQ-VAE folder, its token CSV of a dozen words)."""
    root = tmp_path_factory.mktemp("teacher")
    labels = render_words(root)
    run_dir = root / "run"
    assert train_main(tiny_args(labels, run_dir, "trainer.max_steps=6", "trainer.val_check_interval=6")) == 0
    tokens = root / "tokens.csv"
    assert encode_main([str(run_dir / "config.yaml"), str(run_dir / "checkpoints" / "last.ckpt"), "--dataset",
                        str(labels), "--output", str(tokens), "--num-workers", "0", "--no-progress"]) == 0
    return run_dir / "vqvae", tokens


def agreement(student_dir: Path, tokens: Path) -> float:
    """Share of code cells where the distilled VQ-VAE picks the teacher's code."""
    frame = read_labelled_csv(tokens)
    student = load_vqvae_dir(student_dir)
    grids, _ = encode_paths(student, list(frame["abs_path"]), 100, num_workers=0, progress=False)
    same = sum(int((grid == string_to_grid(text)).sum()) for grid, text in zip(grids, frame["visual_tokens"]))
    return same / sum(grid.size for grid in grids)


def distil(teacher_dir: Path, tokens: Path, run_dir: Path, steps: int, *extra: str) -> int:
    return train_main(tiny_args(tokens, run_dir, f"distill_from={teacher_dir}", "model.encoder_channels=2",
                                f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps}",
                                "optim.lr=1.0e-2", *extra))


def test_distilled_encoder_learns_the_teachers_codes_and_keeps_its_codebook(teacher, tmp_path):
    teacher_dir, tokens = teacher
    assert distil(teacher_dir, tokens, tmp_path / "start", 1, "optim.lr=1.0e-9") == 0
    assert distil(teacher_dir, tokens, tmp_path / "trained", 60) == 0
    before, after = agreement(tmp_path / "start" / "vqvae", tokens), agreement(tmp_path / "trained" / "vqvae", tokens)
    assert after > before + 0.2, (before, after)  # measured: 0.07 at the start, 0.35 after 60 steps
    student, original = load_vqvae_dir(tmp_path / "trained" / "vqvae"), load_vqvae_dir(teacher_dir)
    for name, value in original.state_dict().items():
        if not name.startswith("encoder."):
            assert torch.equal(student.state_dict()[name], value), name  # same codes, same pictures
    assert sum(p.numel() for p in student.encoder.parameters()) < sum(p.numel() for p in original.encoder.parameters())
    # init_from goes on from a distilled encoder (a step at a negligible rate keeps what it learned)
    assert distil(teacher_dir, tokens, tmp_path / "again", 1, "optim.lr=1.0e-9",
                  f"init_from={tmp_path / 'trained' / 'vqvae'}") == 0
    assert agreement(tmp_path / "again" / "vqvae", tokens) == pytest.approx(after, abs=0.02)
    header = (tmp_path / "trained" / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/agreement", "val/agreement", "val/loss"} <= set(header)
    assert list((tmp_path / "trained" / "samples").glob("step_*.png"))


def test_distillation_names_what_is_missing_or_foreign(teacher, tmp_path, capsys):
    teacher_dir, tokens = teacher
    assert train_main(tiny_args(tokens, tmp_path / "a", f"distill_from={teacher_dir}")) == 2
    assert "model.encoder_channels" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    pd.read_csv(tokens, dtype=str, keep_default_na=False).to_csv(other, index=False)
    other.with_name("other.csv.json").write_text('{"fingerprint": "0000000000000000", "max_length": 100}')
    assert distil(teacher_dir, other, tmp_path / "b", 1) == 2
    assert "0000000000000000" in capsys.readouterr().err  # tokens of another VQ-VAE, named


def distilled_copy(export: Path, folder: Path) -> None:
    """A VQ-VAE folder with `export`'s codebook and decoder and an untrained encoder 2 channels wide."""
    import dataclasses

    from vqvae.checkpoint import build_model_config, read_vqvae_dir_config, save_vqvae_dir
    from vqvae.modeling import VQVAE

    saved = read_vqvae_dir_config(export / "vqvae")
    config = dataclasses.replace(build_model_config(saved["model"], "test"), encoder_channels=2)
    distilled = VQVAE(config)
    kept = {k: v for k, v in load_vqvae_dir(export / "vqvae").state_dict().items() if not k.startswith("encoder.")}
    distilled.load_state_dict(kept, strict=False)
    save_vqvae_dir(distilled, config, folder, meta={"max_length": saved["max_length"]})


def test_an_export_moved_onto_its_vqvae_with_a_distilled_encoder_keeps_its_gpt_as_it_is(tmp_path):
    from gpt.pretrained import load_pretrained
    from gpt.recode import main as recode_main
    from tests.fixtures import recognition_export
    from vqvae.checkpoint import build_model_config, read_vqvae_dir_config, save_vqvae_dir
    from vqvae.modeling import VQVAE

    export = recognition_export(tmp_path / "export")
    saved = read_vqvae_dir_config(export / "vqvae")
    config = build_model_config(saved["model"], "test")
    distilled_copy(export, tmp_path / "fast")
    assert recode_main([str(export), "--vqvae-of", str(tmp_path / "fast"), "--output", str(tmp_path / "moved"),
                        "--vqvae-bf16"]) == 0
    source, moved = load_pretrained(export), load_pretrained(tmp_path / "moved")
    assert moved.fingerprint != source.fingerprint and moved.vqvae.encoder.layers[0].out_channels == 2
    for name, value in source.model.state_dict().items():
        assert torch.equal(moved.model.state_dict()[name], value), name
    from safetensors.torch import load_file
    assert {t.dtype for t in load_file(str(tmp_path / "moved" / "vqvae" / "model.safetensors")).values()
            if t.is_floating_point()} == {torch.bfloat16}  # --vqvae-bf16
    other = VQVAE(config)  # random codebook: other codes, which only --crops can pair
    save_vqvae_dir(other, config, tmp_path / "other", meta={"max_length": saved["max_length"]})
    assert recode_main([str(export), "--vqvae-of", str(tmp_path / "other"), "--output", str(tmp_path / "x")]) == 2


def test_training_from_an_export_on_tokens_of_its_distilled_vqvae_keeps_its_code_embeddings(tmp_path):
    """gpt.train's move onto a token CSV's codes: a sidecar naming a VQ-VAE with the export's codebook and decoder
    keeps the model as it is; one whose VQ-VAE is gone (or changed since) goes on to translate the codes."""
    from gpt.pretrained import load_pretrained
    from gpt.recode import recode_for_tokens
    from tests.fixtures import recognition_export
    from vqvae.checkpoint import fingerprint
    from vqvae.tokens import write_sidecar

    export = recognition_export(tmp_path / "export")
    distilled_copy(export, tmp_path / "fast")
    pretrained = load_pretrained(export, load_tokenizer=False)
    tokens = tmp_path / "tokens.csv"
    pd.DataFrame({"img_path": ["missing.png"], "text": ["a"], "visual_tokens": ["1 2"]}).to_csv(tokens, index=False)
    meta = {"fingerprint": fingerprint(load_vqvae_dir(tmp_path / "fast")), "checkpoint": str(tmp_path / "fast")}
    write_sidecar(tokens, meta)
    model, vocab = recode_for_tokens(pretrained.model, pretrained.vocab, export, tokens, pretrained.vocab.num_codes)
    assert model is pretrained.model and vocab is pretrained.vocab
    for changed in ({"fingerprint": "0123456789abcdef"}, {"checkpoint": str(tmp_path / "gone")}):
        write_sidecar(tokens, {**meta, **changed})
        with pytest.raises((FileNotFoundError, ValueError)):  # translation needs the CSV's crops, missing here
            recode_for_tokens(pretrained.model, pretrained.vocab, export, tokens, pretrained.vocab.num_codes)


def test_a_distilled_encoder_is_published_with_the_published_gpt_and_counts_going_on(tmp_path, monkeypatch):
    import json

    from gpt.pretrained import load_pretrained
    from scripts import publish_continuation, publish_distilled
    from tests.fixtures import recognition_export

    published = recognition_export(tmp_path / "published")
    (published / "metrics.json").write_text(json.dumps({"held_out_score": 0.5, "chunk": 42, "steps": 100,
                                                        "cpu_hours": 1.0, "distinct_crops": 10, "vq_steps": 5}))
    run = tmp_path / "distill"
    distilled_copy(published, run / "vqvae")
    (run / "checkpoints").mkdir()
    torch.save({"global_step": 7, "callbacks": {"Timer": {"time_elapsed": {"train": 1800.0}}}},
               run / "checkpoints" / "last.ckpt")
    from scripts.pretrain import TEST_SETS

    scores = dict.fromkeys(TEST_SETS, 0.6)
    evaluation = {"results": [{"dataset": name, "samples": 3, "accuracy": accuracy, "one_minus_ned": 0.8, "cer": 0.1}
                              for name, accuracy in scores.items()]}
    monkeypatch.setattr(publish_distilled, "PUBLISHED", published)
    monkeypatch.setattr(publish_continuation, "judge", lambda export, pretrain, real, published: (evaluation, 0.55))
    assert publish_distilled.main([str(run), "--cores", "2", "--history", "distilled"]) == 0
    metrics = json.loads((published / "metrics.json").read_text())
    assert metrics["held_out_score"] == pytest.approx(0.6) and metrics["steps"] == 100 and metrics["chunk"] == 42
    assert metrics["vq_steps"] == 12 and metrics["cpu_hours"] == pytest.approx(2.0)  # 0.5 h x 2 cores added
    assert load_pretrained(published).vqvae.encoder.layers[0].out_channels == 2
    assert "this version: distilled" in (published / "README.md").read_text()
