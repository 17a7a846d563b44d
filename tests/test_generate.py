"""Text-to-image generation: sampling (mask, KV cache, seeds), grid parsing and decoding, the CLI (PNGs,
rerank, legibility, unconditional self-captions) on a tiny random VQ-VAE + GPT exported by gpt.export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gpt.export import write_export
from gpt.generate import (Generated, PromptError, check_prompts, crop_padding, decode_candidates, main,
                          make_sheet)
from gpt.legibility import prompt_log_likelihood, read_back
from gpt.modeling import build_model
from gpt.sampling import SamplingConfig, candidate_uniforms, filter_logits, pick_tokens, sample_image_parts
from gpt.vocab import Vocab
from vqvae.config import ModelConfig
from vqvae.modeling import VQVAE
from vqvae.templates import PAD_RGB

V, T, F = 32, 12, 8  # max_visual_length (= the VQ-VAE's max_length), max_text_length, downsampling
CHARS = "abcdefg 한"
VOCAB = Vocab.build([CHARS], num_codes=16)
VQ_CFG = ModelConfig(num_codes=16, code_dim=4, downsample=F, hidden_channels=4, channel_multipliers=[1, 1, 2, 2],
                     num_res_blocks=1, norm_groups=4)
GPT_CFG = {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0}


def tiny_vqvae(seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    return VQVAE(VQ_CFG).eval()


def tiny_gpt(seed: int = 1):
    torch.manual_seed(seed)
    return build_model(GPT_CFG, VOCAB, V, T).eval()


def make_export(folder: Path, order: str, vqvae: VQVAE, seed: int = 1) -> Path:
    """A complete export folder (the gpt.export format) of a random tiny GPT."""
    return write_export(folder, tiny_gpt(seed), VOCAB, order, V, T, vqvae, VQ_CFG, max_length=V)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    vqvae = tiny_vqvae()
    return {"text_first": make_export(root / "t2i", "text_first", vqvae),
            "image_first": make_export(root / "ocr", "image_first", vqvae, seed=2)}


# ------------------------------------------------------------------------------------------ layout, sampling
def test_reverse_layout_round_trip():
    grid = np.arange(14).reshape(2, 7) % 16
    ids, part = VOCAB.sequence(grid, "ab 한", "text_first", V, T)
    image_ids, text_ids = VOCAB.split(ids, "text_first", V, T)
    assert ids[0] == VOCAB.bos_id and len(ids) == V + T
    assert VOCAB.decode_text(text_ids[1:]) == "ab 한"
    parsed, repairs = VOCAB.parse_grid(image_ids)
    np.testing.assert_array_equal(parsed, grid)
    assert repairs == []


def test_sampling_layout_mask_and_seed():
    model, prompts = tiny_gpt(), torch.tensor([VOCAB.text_part("ab", T)] * 6)
    out = sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(seed=3))
    ids = out.image_ids
    assert ids.shape == (6, V) and (ids[:, 0] == VOCAB.row_id).all()
    assert VOCAB.is_code(ids).logical_or(ids == VOCAB.row_id).logical_or(ids == VOCAB.vpad_id).all()
    for row in ids.tolist():
        if VOCAB.vpad_id in row:  # after the first <vpad>: padding only
            assert set(row[row.index(VOCAB.vpad_id):]) == {VOCAB.vpad_id}
        after_row = [b for a, b in zip(row, row[1:]) if a == VOCAB.row_id]
        assert all(VOCAB.code_offset <= b for b in after_row), "a <row> must be followed by a code"
        assert row[-1] != VOCAB.row_id
    again = sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(seed=3))
    torch.testing.assert_close(again.image_ids, ids)
    # Row i's stream does not depend on the batch it is sampled in.
    uniforms = candidate_uniforms(6, V, 3)
    halves = [sample_image_parts(model, VOCAB, prompts[s:s + 3], V, SamplingConfig(seed=3),
                                 uniforms=uniforms[s:s + 3]).image_ids for s in (0, 3)]
    torch.testing.assert_close(torch.cat(halves), ids)
    other = sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(seed=4)).image_ids
    assert not torch.equal(other, ids)
    assert model.training is False


def test_greedy_with_cache_matches_full_forward():
    model = tiny_gpt()
    prompts = torch.tensor([VOCAB.text_part("ab", T), VOCAB.text_part("g한", T)])
    ids = sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(temperature=0)).image_ids
    logits = model(input_ids=torch.cat([prompts, ids], 1)).logits[:, T:T + V - 1]  # predicts ids[:, 1:]
    allowed = VOCAB.image_token_ids
    for b in range(2):
        for t in range(V - 1):
            if ids[b, t] == VOCAB.vpad_id:
                break
            candidates = allowed if ids[b, t] != VOCAB.row_id else allowed[VOCAB.is_code(allowed)]
            if t == V - 2:
                candidates = candidates[candidates != VOCAB.row_id]
            best = candidates[logits[b, t, candidates].argmax()]
            assert ids[b, t + 1] == best, (b, t)


def test_filter_logits_and_pick_tokens():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, float("-inf")]])
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = filter_logits(logits, top_p=0.7)  # softmax ~ [.64, .24, .09, .03]: the top two reach 0.7
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()
    logprobs = torch.tensor([[float("-inf"), 0.5, float("-inf"), 0.5, float("-inf")]]).log()
    picks = pick_tokens(logprobs.repeat(5, 1), torch.tensor([0.0, 0.3, 0.49, 0.51, 0.9999]))
    assert picks.tolist() == [1, 1, 1, 3, 3]


def test_guidance_runs_and_needs_the_unconditional_prompt():
    model, prompts = tiny_gpt(), torch.tensor([VOCAB.text_part("ab", T)] * 2)
    with pytest.raises(ValueError, match="uncond_prompt_ids"):
        sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(guidance_scale=2.0))
    uncond = torch.tensor([VOCAB.text_part("", T)])
    out = sample_image_parts(model, VOCAB, prompts, V, SamplingConfig(guidance_scale=2.0), uncond_prompt_ids=uncond)
    assert out.image_ids.shape == (2, V) and torch.isfinite(out.logprob).all()


# ------------------------------------------------------------------------------------------ parsing, decoding
def test_decode_candidates_well_formed_ragged_empty_overlong():
    row, vpad, code = VOCAB.row_id, VOCAB.vpad_id, VOCAB.code_offset
    well = [row, code, code + 1, row, code + 2, code + 3] + [vpad] * (V - 6)
    ragged = [row, code, code, code, row, code] + [vpad] * (V - 6)
    empty = [row] + [vpad] * (V - 1)
    overlong = [row] + [code + 5] * (V - 1)  # never ends: the whole part is one row
    items = [Generated(0, "ab", k, np.array(ids), 0.0) for k, ids in enumerate([well, ragged, empty, overlong])]
    decode_candidates(items, VOCAB, tiny_vqvae(), crop=False, progress=False)
    assert items[0].grid.shape == (2, 2) and items[0].repairs == [] and items[0].image.shape == (2 * F, 2 * F, 3)
    assert items[1].grid.shape == (2, 3) and any("padded" in r for r in items[1].repairs)
    assert items[2].image is None and "no visual code" in items[2].error
    assert items[3].grid.shape == (1, V - 1) and items[3].image.shape == (F, (V - 1) * F, 3)


def test_crop_padding_removes_template_padding_only():
    image = np.full((3 * F, 6 * F, 3), PAD_RGB, dtype=np.uint8)
    image[:2 * F - 3, :4 * F - 5] = 10  # content spans 2 code rows and 4 code columns
    assert crop_padding(image, F).shape == (2 * F, 4 * F, 3)
    assert crop_padding(np.full((F, 2 * F, 3), PAD_RGB, np.uint8), F).shape == (F, F, 3)  # keeps one code


def test_check_prompts_names_unknown_characters():
    assert check_prompts(["ab"], VOCAB, T) == ["ab"]
    with pytest.raises(PromptError, match=r"'x' \(U\+0078.*'z'"):
        check_prompts(["ab", "xz"], VOCAB, T)
    with pytest.raises(PromptError, match="longer than"):
        check_prompts(["a" * T], VOCAB, T)


def test_log_likelihood_of_the_read_back_equals_its_confidence():
    model = tiny_gpt(2)
    rng = np.random.default_rng(0)
    image_ids = torch.tensor([VOCAB.image_part(rng.integers(0, 16, (2, 7)), V) for _ in range(3)])
    readings = read_back(model, VOCAB, image_ids, T)
    scores = prompt_log_likelihood(model, VOCAB, image_ids, [text for text, _ in readings], T, batch_size=2)
    for (text, confidence), score in zip(readings, scores.tolist()):
        if len(text) < T - 2:  # a read-back cut at the length limit had </s> forced
            assert score == pytest.approx(np.log(confidence), abs=1e-4)
    assert prompt_log_likelihood(model, VOCAB, image_ids[:1], ["xyz"], T)[0] == float("-inf")


# ------------------------------------------------------------------------------------------ CLI
def _run(*argv: str) -> int:
    return main([*map(str, argv), "--no-progress", "--device", "cpu"])


def test_generate_cli_pngs_rerank_twice_identical(exports, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out, batch in zip(outs, (4, 3)):  # a different batch size must not change the images
        assert _run(exports["text_first"], "ab", "g 한", "--output", out, "--num-candidates", 3, "--seed", 7,
                    "--batch-size", batch, "--top-k", 8, "--rerank-with", exports["image_first"]) == 0
    frames = [pd.read_csv(out / "results.csv", keep_default_na=False) for out in outs]
    pd.testing.assert_frame_equal(*frames)
    frame = frames[0]
    assert len(frame) == 6 and frame.groupby("prompt")["is_best"].sum().tolist() == [1, 1]
    assert set(frame["rank"]) == {0, 1, 2}
    for path, rows, cols in zip(frame["path"], frame["rows"], frame["cols"]):
        first, second = (outs[0] / path).read_bytes(), (outs[1] / path).read_bytes()
        assert first == second
        from vqvae.io import load_image

        image = load_image(outs[0] / path)
        assert image.shape[0] % F == 0 and image.shape[1] % F == 0
        assert image.shape[0] <= int(rows) * F and image.shape[1] <= int(cols) * F
    for folder in {Path(p).parent for p in frame["path"]}:
        assert (outs[0] / folder / "best.png").is_file() and (outs[0] / folder / "sheet.png").is_file()
    records = json.loads((outs[0] / "results.json").read_text(encoding="utf-8"))
    assert len(records) == 6 and isinstance(records[0]["repairs"], list)


def test_unknown_prompt_characters_fail_before_any_work(exports, tmp_path, capsys):
    assert _run(exports["text_first"], "ab", "xyz", "--output", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "'x'" in error and "'y'" in error and "'z'" in error and "charset" in error
    assert not (tmp_path / "out").exists()
    assert _run(exports["image_first"], "ab", "--output", tmp_path / "out") == 2  # a recognition model
    assert "text-to-image" in capsys.readouterr().err


def test_unconditional_with_self_captions(exports, tmp_path):
    out = tmp_path / "free"
    assert _run(exports["image_first"], "--unconditional", 3, "--output", out, "--seed", 1) == 0
    frame = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert len(frame) == 3 and "caption" in frame.columns
    assert all((out / p).is_file() for p in frame["path"]) and (out / "unconditional" / "sheet.png").is_file()
    assert all(0 < c <= 1 for c in frame["confidence"])
    assert _run(exports["text_first"], "--unconditional", 2, "--output", tmp_path / "x") == 2


def test_evaluate_writes_legibility(exports, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ab\n\ncafe\n", encoding="utf-8")
    out = tmp_path / "eval"
    assert _run(exports["text_first"], "--prompts-file", prompts, "--evaluate", "--rerank-with",
                exports["image_first"], "--output", out, "--num-candidates", 2) == 0
    summary = json.loads((out / "legibility.json").read_text(encoding="utf-8"))
    assert summary["num_prompts"] == 2 and 0.0 <= summary["recognizer"]["exact_rate"] <= 1.0
    assert "available" in summary["tesseract"]
    if not summary["tesseract"]["available"]:
        assert summary["tesseract"]["reason"]


def test_sheet_has_room_for_every_tile():
    images = [np.zeros((F, 4 * F, 3), np.uint8), np.zeros((4 * F, F, 3), np.uint8)]
    sheet = make_sheet(images, ["ab", "한"], tile_height=64, tile_width=128, columns=2)
    assert sheet.shape[1] >= 2 * 128 and sheet.shape[0] >= 64
