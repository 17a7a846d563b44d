"""GPT-2 model, losses, optimizer groups, LR schedule, save/load, and every GPT config loading."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel

from gpt.config import GPTConfig, ModelConfig, path_list
from gpt.modeling import ACTIVATION, attention_for, build_model, grow_depth, load_gpt2, with_new_codebook
from gpt.task import GPTTask, at_configured_size, no_decay
from gpt.vocab import Vocab
from vqvae.plumbing.config import load_config

V, T = 10, 8
VOCAB = Vocab.build(["hello world"], num_codes=24)
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}
ROOT = Path(__file__).resolve().parents[1]


def task_for(order: str, image_weight: float = 1.0, text_weight: float = 1.0) -> GPTTask:
    torch.manual_seed(0)
    cfg = {"data": {"train": "x", "val": "x"}, "model": TINY, "order": order, "run_dir": "/tmp/unused",
           "loss": {"image_weight": image_weight, "text_weight": text_weight}}
    return GPTTask(cfg, VOCAB, V, T)


def batch_for(order: str) -> dict:
    grids = [np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8, 9, 10]])]
    ids, part = VOCAB.sequences(grids, ["hello", "ow"], order, V, T)
    return {"input_ids": torch.from_numpy(ids).long(), "loss_part": torch.from_numpy(part), "index": torch.arange(2)}


def test_training_on_cpu_switches_to_eager_attention_with_the_same_losses():
    assert attention_for(torch.device("cpu")) == "eager" and attention_for(torch.device("cuda", 0)) == "sdpa"
    task = task_for("image_first")
    task.model.set_attn_implementation("sdpa")
    before = task.losses(batch_for("image_first"))["loss"]
    task.on_fit_start()  # without a trainer the module is on the CPU
    assert task.model.config._attn_implementation == "eager"
    torch.testing.assert_close(task.losses(batch_for("image_first"))["loss"], before)


def test_build_model_sizes():
    model = build_model(TINY, VOCAB, V, T)
    assert model.config.vocab_size == VOCAB.size and model.config.n_positions == V + T
    logits = model(torch.zeros(2, V + T, dtype=torch.long)).logits
    assert logits.shape == (2, V + T, VOCAB.size)
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by model.n_head=4"):
        build_model({**TINY, "n_embd": 30, "n_head": 4}, VOCAB, V, T)


@pytest.mark.parametrize("order", ["image_first", "text_first"])
def test_losses_count_exactly_the_intended_targets(order):
    """Recompute both losses from the ids alone: text targets are <s>/chars/</s> (never <pad>), image
    targets are <row>/codes and the first <vpad> of each row."""
    task, batch = task_for(order), batch_for(order)
    ids, mask, positions = batch["input_ids"], None, None
    if order == "image_first":  # recognition trims the padding after the image (Vocab.trim_image_padding)
        ids, positions, mask = VOCAB.trim_image_padding(ids, V)
        positions = positions.expand(ids.shape[0], -1)
    with torch.no_grad():
        out = task.losses(batch)
        logits = task.model(ids, attention_mask=mask, position_ids=positions).logits[:, :-1]
    token_loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(2, -1)
    targets = ids[:, 1:]
    is_text = (targets <= VOCAB.eos_id) | ((targets >= VOCAB.char_offset) & (targets < VOCAB.row_id))
    is_image = (targets == VOCAB.row_id) | VOCAB.is_code(targets)
    first_vpad = (targets == VOCAB.vpad_id) & torch.cat(
        [torch.ones(2, 1, dtype=torch.bool), targets[:, :-1] != VOCAB.vpad_id], dim=1)
    is_image |= first_vpad
    torch.testing.assert_close(out["text_loss"], token_loss[is_text].mean())
    torch.testing.assert_close(out["image_loss"], token_loss[is_image].mean())
    torch.testing.assert_close(out["loss"], out["text_loss"] + out["image_loss"])


def test_pad_targets_never_change_the_loss():
    """In recognition order the text <pad>s end the sequence, so replacing them by other ids changes only
    the targets at those positions (causal attention): the losses must not move."""
    task, batch = task_for("image_first"), batch_for("image_first")
    ids = batch["input_ids"]
    assert (ids == VOCAB.pad_id).sum() > 0
    changed = {**batch, "input_ids": torch.where(ids == VOCAB.pad_id, VOCAB.char_id("h"), ids)}
    with torch.no_grad():
        before, after = task.losses(batch), task.losses(changed)
    for key in ("loss", "image_loss", "text_loss"):
        torch.testing.assert_close(before[key], after[key])


def test_loss_weights():
    batch = batch_for("image_first")
    with torch.no_grad():
        out = task_for("image_first", image_weight=0.25, text_weight=2.0).losses(batch)
    torch.testing.assert_close(out["loss"], 0.25 * out["image_loss"] + 2.0 * out["text_loss"])


def test_no_decay_on_biases_and_layernorm():
    model = build_model(TINY, VOCAB, V, T)
    plain = {name for name, p in model.named_parameters() if no_decay(name, p)}
    assert "transformer.h.0.ln_1.weight" in plain and "transformer.h.0.attn.c_attn.bias" in plain
    assert "transformer.h.0.attn.c_attn.weight" not in plain and "transformer.wte.weight" not in plain


def test_save_pretrained_round_trip(tmp_path):
    model = build_model(TINY, VOCAB, V, T).eval()
    model.save_pretrained(tmp_path)
    loaded = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = batch_for("image_first")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, loaded(ids).logits)


def test_an_export_with_the_unfused_activation_loads_fused_and_computes_the_same(tmp_path):
    model = build_model(TINY, VOCAB, V, T).eval()
    assert model.config.activation_function == ACTIVATION
    model.config.activation_function = "gelu_new"  # as exports before 2026-12-04 name it
    model.save_pretrained(tmp_path)
    unfused = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    fused = load_gpt2(tmp_path).eval()
    assert fused.config.activation_function == ACTIVATION
    assert type(fused.transformer.h[0].mlp.act) is not type(unfused.transformer.h[0].mlp.act)
    ids = batch_for("image_first")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(fused(ids).logits, unfused(ids).logits)
    model.config.activation_function = "relu"  # another function is never swapped
    model.save_pretrained(tmp_path)
    assert load_gpt2(tmp_path).config.activation_function == "relu"


def test_model_positions_must_cover_layout():
    small = build_model(TINY, VOCAB, 4, 4)
    with pytest.raises(ValueError, match="n_positions=8 but the layout needs 18"):
        GPTTask({"data": {"train": "x", "val": "x"}, "run_dir": "x"}, VOCAB, V, T, model=small)


@pytest.mark.parametrize("name", ["gpt2-base.yaml", "gpt2-demo.yaml", "gpt2-bench.yaml", "tiny/gpt2.yaml"])
def test_configs_load(name):
    cfg = load_config(GPTConfig, ROOT / "config" / name, ["data.train=a.csv,b.csv", "data.val=[c.csv]",
                                                          "run_dir=/tmp/x"])
    assert path_list(cfg.data.train) == ["a.csv", "b.csv"] and path_list(cfg.data.val) == ["c.csv"]
    assert cfg.order == "image_first" and cfg.model.n_embd % cfg.model.n_head == 0


def test_unknown_config_key_fails():
    with pytest.raises(ValueError, match="modle"):
        load_config(GPTConfig, ROOT / "config" / "tiny" / "gpt2.yaml", ["modle.n_layer=3"])


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build_model({**TINY, "gradient_checkpointing": checkpointing}, VOCAB, V, T).train()
        assert model.is_gradient_checkpointing == checkpointing
        ids = batch_for("image_first")["input_ids"]
        model(ids, use_cache=False).logits.float().square().mean().backward()
        grads.append(model.transformer.h[0].attn.c_attn.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("image_weight,text_weight", [(0.0, 1.0), (1.0, 0.0), (0.25, 2.0)])
def test_weighted_only_losses_match_the_full_ones_and_their_gradients(image_weight, text_weight):
    """Training computes the LM head only where a weighted loss looks: the same loss and gradients."""
    task, batch = task_for("image_first", image_weight, text_weight), batch_for("image_first")
    full = task.losses(batch)
    full["loss"].backward()
    expected = task.model.transformer.wte.weight.grad.clone()
    task.model.zero_grad()
    fast = task.losses(batch, weighted_only=True)
    fast["loss"].backward()
    torch.testing.assert_close(fast["loss"], full["loss"])
    torch.testing.assert_close(task.model.transformer.wte.weight.grad, expected)
    assert ("image_loss" in fast) == bool(image_weight) and ("text_loss" in fast) == bool(text_weight)


def test_a_grown_model_computes_the_same_and_its_new_blocks_learn():
    torch.manual_seed(0)
    model = build_model({**TINY, "n_layer": 2}, VOCAB, V, T).eval()
    grown = grow_depth(model, 5)
    ids = torch.from_numpy(batch_for("image_first")["input_ids"].numpy())
    assert len(grown.transformer.h) == 5 and grown.config.n_layer == 5
    assert torch.allclose(model(ids).logits, grown(ids).logits, atol=1e-6)
    # Old blocks 0 and 1 sit at 0 and 3; copies of block 0 at 1 and 2 (2 extra for the first), of block 1 at 4.
    assert torch.equal(grown.transformer.h[3].mlp.c_fc.weight, model.transformer.h[1].mlp.c_fc.weight)
    assert torch.equal(grown.transformer.h[2].attn.c_attn.weight, model.transformer.h[0].attn.c_attn.weight)
    new = [grown.transformer.h[i] for i in (1, 2, 4)]
    assert all(not block.attn.c_proj.weight.any() and not block.mlp.c_proj.weight.any() for block in new)
    grown(ids, labels=ids).loss.backward()
    assert all(block.mlp.c_proj.weight.grad.abs().sum() > 0 for block in new)
    with pytest.raises(ValueError, match="n_layer=1 is below the model's 2 layers"):
        grow_depth(model, 1)


def test_a_model_continued_from_an_export_may_only_grow_deeper():
    model = build_model({**TINY, "n_layer": 2}, VOCAB, V, T)
    assert len(at_configured_size(model, ModelConfig(**{**TINY, "n_layer": 3}), Path("init")).transformer.h) == 3
    assert at_configured_size(model, ModelConfig(**{**TINY, "n_layer": 2}), Path("init")) is model
    with pytest.raises(ValueError, match="only model.n_layer may grow"):
        at_configured_size(model, ModelConfig(**{**TINY, "n_embd": 32}), Path("init"))


def test_a_model_moved_to_a_new_codebook_keeps_its_text_and_draws_its_code_embeddings_anew():
    torch.manual_seed(0)
    model = build_model(TINY, VOCAB, V, T)
    before = model.get_input_embeddings().weight.detach().clone()
    new = Vocab(VOCAB.chars, num_codes=200)  # a larger codebook moves <vertical> and the size
    moved = with_new_codebook(model, VOCAB, new)
    after = moved.get_input_embeddings().weight
    assert after.shape[0] == new.size > VOCAB.size and moved.config.vocab_size == new.size
    assert torch.equal(after[:new.code_offset], before[:VOCAB.code_offset])
    assert torch.equal(after[new.vertical_id], before[VOCAB.vertical_id])
    assert moved.lm_head.weight.data_ptr() == after.data_ptr()  # still tied
    codes = after[new.code_offset:new.code_end]
    assert not torch.equal(codes[:VOCAB.num_codes], before[VOCAB.code_offset:VOCAB.code_end])
    assert 0.01 < codes.std().item() < 0.03  # Hugging Face's initializer_range, 0.02
    ids = torch.from_numpy(new.sequences([np.array([[150, 199]])], ["hello"], "image_first", V, T)[0])
    assert moved(ids).logits.shape[-1] == new.size
    with pytest.raises(ValueError, match="only the codebook may change"):
        with_new_codebook(moved, new, Vocab(("a",), num_codes=200))


def test_training_from_an_export_on_tokens_of_another_vqvae_starts_its_code_embeddings_anew(tmp_path):
    from gpt.task import prepare_training
    from tests.fixtures import recognition_export, token_csv

    init = recognition_export(tmp_path / "init")
    exported = GPT2LMHeadModel.from_pretrained(init).get_input_embeddings().weight.detach()
    old = Vocab.load(init / "charset.json")

    def prepared(name: str, **tokens) -> GPTTask:
        train = token_csv(tmp_path / f"{name}-train.csv", init, 8, **tokens)
        val = token_csv(tmp_path / f"{name}-val.csv", init, 4, seed=1, **tokens)
        cfg = load_config(GPTConfig, ROOT / "config" / "tiny" / "gpt2.yaml",
                          [f"init_from={init}", f"data.train={train}", f"data.val={val}", f"run_dir={tmp_path / name}"])
        return prepare_training(cfg)[0]

    same = prepared("same").model.get_input_embeddings().weight
    assert torch.equal(same, exported)  # the export's own VQ-VAE: every embedding carries over
    task = prepared("new", fingerprint="feedfacecafe0000", num_codes=100)
    assert task.vocab.num_codes == 100 and task.vocab.chars == old.chars
    moved = task.model.get_input_embeddings().weight
    assert moved.shape[0] == task.vocab.size and torch.equal(moved[:old.code_offset], exported[:old.code_offset])


def test_a_longer_image_part_moves_the_text_positions_with_the_text():
    from gpt.modeling import with_image_positions

    torch.manual_seed(0)
    model = build_model({"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}, VOCAB, V, T)
    old = model.transformer.wpe.weight.detach().clone()
    model = with_image_positions(model, V, V + 6)
    new = model.transformer.wpe.weight
    assert model.config.n_positions == V + 6 + T and new.shape == (V + 6 + T, 16)
    assert torch.equal(new[:V].detach(), old[:V]) and torch.equal(new[V + 6:].detach(), old[V:])
    ids = torch.randint(0, VOCAB.size, (2, V + 6 + T))
    model(input_ids=ids, labels=ids).loss.backward()  # the whole table is used and learns
    assert new.grad is not None and bool(new.grad[V:V + 6].abs().sum() > 0)
    small = build_model({"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}, VOCAB, V, T)
    shrunk = with_image_positions(small, V, V - 4)
    assert shrunk.config.n_positions == V - 4 + T


def test_a_drawing_model_keeps_its_text_positions_first_for_a_longer_image_part():
    from gpt.modeling import with_image_positions

    torch.manual_seed(0)
    model = build_model({"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}, VOCAB, V, T)
    old = model.transformer.wpe.weight.detach().clone()
    new = with_image_positions(model, V, V + 6, image_first=False).transformer.wpe.weight.detach()
    assert new.shape == (T + V + 6, 16)
    assert torch.equal(new[:T + V], old)  # the text, then the image part's old positions, where they were
    assert not torch.equal(new[T + V:], old[-6:])
    shrunk = with_image_positions(build_model({"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}, VOCAB,
                                              V, T), V, V - 4, image_first=False).transformer.wpe.weight.detach()
    assert shrunk.shape == (T + V - 4, 16)
