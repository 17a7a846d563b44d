"""Moving a GPT onto another VQ-VAE's codes by translation (gpt.code_translation, gpt.recode, gpt.train)."""
from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2LMHeadModel

from gpt.code_translation import colocated_codes, translated_embeddings
from gpt.pretrained import load_pretrained
from gpt.vocab import Vocab
from tests.fixtures import recognition_export
from tests.test_export import MAX_LENGTH
from vqvae.encoding import encode_paths
from vqvae.tokens import grid_to_string, write_sidecar


def test_a_new_code_starts_as_the_mean_of_the_old_codes_found_where_it_is():
    old = torch.tensor([[1.0, 0.0], [0.0, 1.0], [4.0, 4.0]])
    pairs = colocated_codes([np.array([[0, 0, 1]]), np.array([[2]]), None, np.array([[1, 1]])],
                            [np.array([[0, 0, 0]]), np.array([[2]]), np.array([[1]]), np.array([[3], [3]])])
    assert pairs.tolist() == [[0, 0], [0, 0], [0, 1], [2, 2]]  # a failed crop and another shape pair nothing
    codes, seen = translated_embeddings(old, pairs, num_new_codes=4)
    assert torch.allclose(codes[0], torch.tensor([2 / 3, 1 / 3])) and torch.equal(codes[2], old[2])
    assert seen.tolist() == [True, False, True, False] and not codes[1].any()
    with pytest.raises(ValueError, match="outside the codebooks"):
        translated_embeddings(old, np.array([[0, 3]]), num_new_codes=4)


def crops(folder: Path, count: int = 12) -> Path:
    """A labelled CSV of random grey crops of a few sizes."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shape = [(24, 80), (32, 64), (20, 120)][i % 3]
        cv2.imwrite(str(folder / f"crop{i}.png"), rng.integers(0, 256, shape, dtype=np.uint8))
    pd.DataFrame({"img_path": [f"crop{i}.png" for i in range(count)], "text": ["hello"] * count}).to_csv(
        folder / "labels.csv", index=False)
    return folder / "labels.csv"


def code_rows(model: GPT2LMHeadModel, vocab: Vocab) -> torch.Tensor:
    return model.get_input_embeddings().weight.detach()[vocab.code_offset:vocab.code_end]


def test_an_export_recoded_onto_its_own_vqvae_keeps_every_code_embedding(tmp_path):
    from gpt.recode import main

    init = recognition_export(tmp_path / "init")
    assert main([str(init), "--vqvae-of", str(init), "--crops", str(crops(tmp_path / "crops")),
                 "--output", str(tmp_path / "recoded")]) == 0
    before, after = load_pretrained(init), load_pretrained(tmp_path / "recoded")
    assert after.fingerprint == before.fingerprint and after.vocab == before.vocab
    # The same codes (gpt.recode.shares_codes): nothing is paired, so codes the crops never show stay too.
    assert torch.equal(code_rows(before.model, before.vocab), code_rows(after.model, after.vocab))
    assert torch.equal(after.model.get_input_embeddings().weight, before.model.get_input_embeddings().weight)
    assert main([str(init), "--vqvae-of", str(init), "--crops", str(tmp_path / "crops" / "labels.csv"),
                 "--output", str(tmp_path / "x"), "--num-crops", "0"]) == 2


def test_training_from_an_export_on_another_vqvaes_tokens_translates_the_codes_its_crops_show(tmp_path):
    from gpt.config import GPTConfig
    from gpt.task import prepare_training
    from vqvae.plumbing.config import load_config
    from vqvae.plumbing.io import read_labelled_csv

    init = recognition_export(tmp_path / "init")
    export = load_pretrained(init, load_tokenizer=False)
    labels = crops(tmp_path / "crops")
    frame = read_labelled_csv(labels)
    grids, _ = encode_paths(export.vqvae, list(frame["abs_path"]), MAX_LENGTH, num_workers=0, progress=False)
    train = tmp_path / "crops" / "tokens.csv"
    frame.drop(columns="abs_path").assign(visual_tokens=[grid_to_string(g) for g in grids]).to_csv(train, index=False)
    # The same codes under another VQ-VAE's name: translation must find each code's own embedding again.
    write_sidecar(train, {"fingerprint": "feedfacecafe0000", "num_codes": export.vocab.num_codes, "downsample": 8,
                          "max_length": MAX_LENGTH, "command": "test"})
    cfg = load_config(GPTConfig, Path(__file__).parents[1] / "config" / "tiny" / "gpt2.yaml",
                      [f"init_from={init}", f"data.train={train}", f"data.val={train}", f"run_dir={tmp_path / 'run'}"])
    task = prepare_training(cfg)[0]
    seen = sorted({int(code) for grid in grids for code in grid.ravel()})
    moved, exported = code_rows(task.model, task.vocab), code_rows(export.model, export.vocab)
    assert torch.equal(moved[seen], exported[seen])
    unseen = [code for code in range(export.vocab.num_codes) if code not in seen]
    assert not torch.equal(moved[unseen], exported[unseen])


def test_training_on_its_own_vqvae_at_another_strip_thickness_keeps_every_code_embedding(tmp_path):
    """Tokens of the export's VQ-VAE restriped to 6 codes across (vqvae.restrip) are the same codes: gpt.train
    starts from the export's code embeddings as they are, unseen codes included, where translation could pair
    nothing (the grids differ in shape) and would draw them all anew."""
    from gpt.config import GPTConfig
    from gpt.task import prepare_training
    from vqvae.checkpoint import fingerprint
    from vqvae.plumbing.config import load_config
    from vqvae.plumbing.io import read_labelled_csv

    init = recognition_export(tmp_path / "init")
    export = load_pretrained(init, load_tokenizer=False)
    thick = copy.copy(export.vqvae)
    thick.line_codes = 6
    labels = crops(tmp_path / "crops")
    frame = read_labelled_csv(labels)
    grids, _ = encode_paths(thick, list(frame["abs_path"]), MAX_LENGTH, num_workers=0, progress=False)
    assert {g.shape[1] for g in grids if g is not None} == {6}
    train = tmp_path / "crops" / "tokens.csv"
    frame.drop(columns="abs_path").assign(visual_tokens=[grid_to_string(g) for g in grids]).to_csv(train, index=False)
    write_sidecar(train, {"fingerprint": fingerprint(thick), "num_codes": export.vocab.num_codes, "downsample": 8,
                          "line_codes": 6, "max_length": MAX_LENGTH, "command": "test"})
    cfg = load_config(GPTConfig, Path(__file__).parents[1] / "config" / "tiny" / "gpt2.yaml",
                      [f"init_from={init}", f"data.train={train}", f"data.val={train}", f"run_dir={tmp_path / 'run'}"])
    task = prepare_training(cfg)[0]
    assert torch.equal(code_rows(task.model, task.vocab), code_rows(export.model, export.vocab))
    # Longer strips need a longer image part: the text's position embeddings move with the text.
    write_sidecar(train, {"fingerprint": fingerprint(thick), "num_codes": export.vocab.num_codes, "downsample": 8,
                          "line_codes": 6, "max_length": MAX_LENGTH + 50, "command": "test"})
    cfg = load_config(GPTConfig, Path(__file__).parents[1] / "config" / "tiny" / "gpt2.yaml",
                      [f"init_from={init}", f"data.train={train}", f"data.val={train}", f"run_dir={tmp_path / 'run2'}"])
    task = prepare_training(cfg)[0]
    old, new = export.model.transformer.wpe.weight.detach(), task.model.transformer.wpe.weight.detach()
    visual, text = export.max_visual_length, export.max_text_length
    assert new.shape[0] == task.model.config.n_positions == visual + 50 + text
    assert torch.equal(new[:visual], old[:visual]) and torch.equal(new[visual + 50:], old[visual:])
    assert code_rows(task.model, task.vocab).shape == code_rows(export.model, export.vocab).shape


def test_a_drawing_model_recoded_onto_its_vqvae_on_thicker_strips_keeps_every_code_and_its_text_positions(tmp_path):
    """`make pretrain-draw` after the recognizer moved to 6-code strips of the same VQ-VAE (vqvae.restrip): gpt.recode
    pairs nothing (the grids differ in shape); every code embedding is kept, the image part grows to the new
    max_length and a text-first model's text positions stay first."""
    import dataclasses

    from gpt.export import write_export
    from gpt.modeling import with_image_positions
    from gpt.recode import main
    from tests.fixtures import text_to_image_export
    from tests.test_export import MAX_TEXT_LENGTH, TINY_VQVAE

    drawer = load_pretrained(text_to_image_export(tmp_path / "draw"), load_tokenizer=False)
    recognizer = load_pretrained(recognition_export(tmp_path / "init"), load_tokenizer=False)
    thick = copy.copy(recognizer.vqvae)
    thick.line_codes = 6
    longer = MAX_LENGTH + 50
    write_export(tmp_path / "thick", with_image_positions(recognizer.model, MAX_LENGTH, longer), recognizer.vocab,
                 "image_first", longer, MAX_TEXT_LENGTH,
                 thick, dataclasses.replace(TINY_VQVAE, line_codes=6), longer, {"global_step": 0})
    assert main([str(tmp_path / "draw"), "--vqvae-of", str(tmp_path / "thick"), "--crops",
                 str(crops(tmp_path / "crops")), "--output", str(tmp_path / "recoded")]) == 0
    recoded = load_pretrained(tmp_path / "recoded", load_tokenizer=False)
    assert recoded.fingerprint == load_pretrained(tmp_path / "thick", load_tokenizer=False).fingerprint
    assert recoded.order == "text_first" and recoded.max_visual_length == longer
    assert torch.equal(recoded.model.get_input_embeddings().weight, drawer.model.get_input_embeddings().weight)
    old, new = drawer.model.transformer.wpe.weight.detach(), recoded.model.transformer.wpe.weight.detach()
    assert new.shape[0] == old.shape[0] + 50 and torch.equal(new[:old.shape[0]], old)
