"""gpt.generate / gpt.sampling / gpt.legibility on random tiny exports: grid handling of generations, seeds,
prompt errors, unconditional self-captions, reranking and legibility.json."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gpt.generate import main as generate_main, write_outputs
from gpt.drawing import RERANK_READINGS, Generated, PromptError, check_prompts, decode_candidates, spells
from gpt.legibility import legibility_summary, tesseract_status
from gpt.pretrained import load_pretrained
from gpt.sampling import SamplingConfig, filter_logits, pick_tokens, sample_image_parts
from tests.fixtures import recognition_export, text_to_image_export
from tests.test_export import MAX_LENGTH, MAX_TEXT_LENGTH


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    recognizer = recognition_export(root / "recognition")
    generator = text_to_image_export(root / "t2i")
    return {"root": root, "recognizer": recognizer, "generator": generator,
            "loaded": load_pretrained(generator, load_tokenizer=False)}


def image_ids(vocab, tokens: list) -> np.ndarray:
    """An image part from a compact spec: "R" = <row>, "V" = <vpad>, "t" = a text id, ints = codes;
    <vpad>-padded to MAX_LENGTH."""
    ids = [vocab.row_id if t == "R" else vocab.vpad_id if t == "V" else vocab.char_offset if t == "t"
           else vocab.code_id(t) for t in tokens]
    return np.array(ids + [vocab.vpad_id] * (MAX_LENGTH - len(ids)), dtype=np.int64)


def test_grid_handling_of_generations(models):
    pretrained = models["loaded"]
    vocab = pretrained.vocab
    cases = {
        "well_formed": ["R", 1, 2, 3, "R", 4, 5, 6, "V", 9, 9],  # codes after <vpad> are ignored
        "ragged": ["R", 1, 2, 3, "R", 4, "R", 7, 8, 9, 10, "t", "R", 5, 6, 7],  # most rows are 3 wide
        "empty": ["R", "R", "V"],
        "overlong": ["R"] + [5] * (MAX_LENGTH - 1),  # never ended: the whole part is one row
    }
    items = [Generated(0, "ab", index, image_ids(vocab, spec), -1.0) for index, spec in enumerate(cases.values())]
    decode_candidates(items, vocab, pretrained.vqvae, crop=False, progress=False)
    well, ragged, empty, overlong = items
    np.testing.assert_array_equal(well.grid, [[1, 2, 3], [4, 5, 6]])
    assert well.repairs == [] and well.image.shape == (16, 24, 3)
    np.testing.assert_array_equal(ragged.grid, [[1, 2, 3], [4, 4, 4], [7, 8, 9], [5, 6, 7]])
    assert any("padded from 1 to 3" in r for r in ragged.repairs)
    assert any("cut from 4 to 3" in r for r in ragged.repairs)
    assert any("text id" in r for r in ragged.repairs)
    assert ragged.image.shape == (32, 24, 3)
    assert empty.image is None and "no visual code" in empty.error
    assert overlong.grid.shape == (1, MAX_LENGTH - 1) and overlong.image.shape == (8, 8 * (MAX_LENGTH - 1), 3)
    # The undecodable candidate is reported in results.csv.bad.csv, the others written.
    out = models["root"] / "grid_out"
    report = write_outputs(items, out, unconditional=False, progress=False)
    assert len(report) == 1
    bad = pd.read_csv(out / "results.csv.bad.csv")
    assert len(bad) == 1 and "no visual code" in bad["reason"][0] and bad["img_path"][0].endswith("candidate_02.png")
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert len(results) == 4 and results["path"].tolist()[2] == ""
    assert Image.open(out / results["path"][1]).size == (24, 32)  # (width, height)


def test_sampling_filters_and_seeds(models):
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    top2 = filter_logits(logits, top_k=2)
    assert torch.isinf(top2).sum(1).tolist() == [2, 2] and top2[0, 3] == 3.0
    # Probabilities 0.64, 0.24, 0.09, 0.03: the first alone stays under 0.7, the first two reach it.
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).sum(1).tolist() == [2, 2]
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).sum(1).tolist() == [1, 1]
    logprobs = torch.log(torch.tensor([[0.0, 0.5, 0.0, 0.5]] * 3))
    assert pick_tokens(logprobs, torch.tensor([0.0, 0.49, 0.9999])).tolist() == [1, 1, 3]

    pretrained = models["loaded"]
    vocab = pretrained.vocab
    prompts = torch.tensor([vocab.text_part("hello", MAX_TEXT_LENGTH)] * 3)
    greedy = sample_image_parts(pretrained.model, vocab, prompts, MAX_LENGTH, SamplingConfig(temperature=0))
    assert (greedy.image_ids == greedy.image_ids[0]).all()  # same prompt, greedy: same image
    sampled = [sample_image_parts(pretrained.model, vocab, prompts, MAX_LENGTH, SamplingConfig(seed=s)).image_ids
               for s in (1, 1, 2)]
    assert torch.equal(sampled[0], sampled[1]) and not torch.equal(sampled[0], sampled[2])
    for ids in sampled:
        assert (ids[:, 0] == vocab.row_id).all() and bool(vocab.is_code(ids).any())
        assert ((ids >= vocab.row_id) & (ids < vocab.num_used)).all()  # only image ids are drawn
        ended = (ids == vocab.vpad_id).int().cumsum(1) > 0
        assert (ids[ended] == vocab.vpad_id).all()  # nothing after the first <vpad>
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)


def test_a_reading_spells_the_prompt_as_reading_is_scored():
    # Spaces ignored, as every exact figure of the project: the rerank must not put a drawing that reads
    # "OPEN24H" behind one that reads "OPEN 2 4H" for the prompt "OPEN 24H"; case and characters still count.
    assert spells("OPEN24H", "OPEN 24H") and spells("40 % 할인", "40% 할인")
    assert not spells("open 24h", "OPEN 24H") and not spells("40% 할안", "40% 할인")


def test_unknown_prompt_characters_are_named(models, tmp_path, capsys):
    vocab = models["loaded"].vocab
    with pytest.raises(PromptError, match=r"'Z' \(U\+005A.*'€' \(U\+20AC"):
        check_prompts(["hello", "aZ€"], vocab, MAX_TEXT_LENGTH)
    with pytest.raises(PromptError, match="longer than"):
        check_prompts(["hello world abc"], vocab, MAX_TEXT_LENGTH)
    status = generate_main([str(models["generator"]), "hello", "héllo", "--output", str(tmp_path / "out"),
                            "--no-progress"])
    assert status == 2
    err = capsys.readouterr().err
    assert "'é' (U+00E9, prompt 1)" in err and "charset" in err
    assert not (tmp_path / "out").exists()  # checked before any sampling


def test_characters_never_drawn_are_refused_before_any_work(models, tmp_path, capsys):
    vocab = models["loaded"].vocab
    with pytest.raises(PromptError, match=r"never came in the training.*'o' \(U\+006F, prompt 0, 1\)"):
        check_prompts(["hello", "ok", "abc"], vocab, MAX_TEXT_LENGTH, undrawn=frozenset("oz"))
    assert check_prompts(["abc"], vocab, MAX_TEXT_LENGTH, undrawn=frozenset("oz")) == ["abc"]
    copy = tmp_path / "t2i"
    shutil.copytree(models["generator"], copy)
    layout = json.loads((copy / "layout.json").read_text(encoding="utf-8"))
    (copy / "layout.json").write_text(json.dumps({**layout, "undrawn_chars": "o"}), encoding="utf-8")
    assert load_pretrained(copy, load_tokenizer=False).undrawn_chars == {"o"}
    status = generate_main([str(copy), "abc", "hello", "--output", str(tmp_path / "out"), "--no-progress"])
    assert status == 2
    assert "'o' (U+006F, prompt 1)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unconditional_samples_with_self_captions(models, tmp_path):
    out = tmp_path / "free"
    status = generate_main([str(models["recognizer"]), "--unconditional", "3", "--output", str(out),
                            "--seed", "1", "--no-progress"])
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert status == (1 if (out / "results.csv.bad.csv").is_file() else 0)
    assert len(results) == 3 and "caption" in results.columns and "prompt" not in results.columns
    written = results[results["path"] != ""]
    assert len(written) >= 1 and (out / "unconditional" / "sheet.png").is_file()
    for path in written["path"]:
        assert Image.open(out / path).mode == "RGB"
    assert ((results["confidence"] > 0) & (results["confidence"] <= 1)).all()  # every sample was read back
    saved = json.loads((out / "results.json").read_text())
    assert [row["caption"] for row in saved] == results["caption"].tolist()
    # A text-first model cannot sample image-first; a recognition model cannot take prompts.
    assert generate_main([str(models["generator"]), "--unconditional", "2", "--output", str(tmp_path / "x")]) == 2
    assert generate_main([str(models["recognizer"]), "hello", "--output", str(tmp_path / "y")]) == 2


def test_rerank_marks_one_best_per_prompt_and_writes_legibility(models, tmp_path):
    out = tmp_path / "ranked"
    status = generate_main([str(models["generator"]), "hello", "abc", "--num-candidates", "4", "--output", str(out),
                            "--rerank-with", str(models["recognizer"]), "--evaluate", "--seed", "0",
                            "--no-progress"])
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert status == (1 if (out / "results.csv.bad.csv").is_file() else 0)
    assert len(results) == 8 and results["prompt"].tolist() == ["hello"] * 4 + ["abc"] * 4
    for prompt_index, group in results.groupby("prompt_index"):
        decoded = group[group["path"] != ""]
        assert int(group["is_best"].astype(str).eq("True").sum()) == 1, group
        best = decoded[decoded["is_best"].astype(str) == "True"].iloc[0]
        assert int(best["rank"]) == 0 and sorted(decoded["rank"].astype(int)) == list(range(len(decoded)))
        folder = out / Path(best["path"]).parent
        assert (folder / "best.png").read_bytes() == (out / best["path"]).read_bytes()
        assert (folder / "sheet.png").is_file()
        # Ranked by (exact read-back, readings that spell the prompt, mean log p(prompt | image)).
        keys = [(str(e) == "True", int(v), float(s)) for e, v, s in zip(decoded["exact"], decoded["votes"],
                                                                          decoded["score"])]
        assert (str(best["exact"]) == "True", int(best["votes"]), float(best["score"])) == max(keys)
        assert all(0 <= votes <= RERANK_READINGS for _, votes, _ in keys)
    legibility = json.loads((out / "legibility.json").read_text())
    assert legibility["num_prompts"] == 2 and legibility["num_candidates"] == 4
    assert 0.0 <= legibility["recognizer"]["exact_rate"] <= 1.0
    assert legibility["recognizer"]["model"] == str(models["recognizer"])
    available, reason = tesseract_status()
    assert legibility["tesseract"]["available"] == available
    if not available:
        assert legibility["tesseract"]["reason"] == reason and "tesseract" in reason


def test_legibility_summary_counts_exact_best_readings():
    summary = legibility_summary(["ab", "cd", "ef"], ["ab", "cx", ""], [-1.0, -2.0, float("-inf")],
                                 [True, True, False], 4, None, "not installed")
    assert summary["recognizer"]["exact_rate"] == pytest.approx(1 / 3)
    assert summary["recognizer"]["any_candidate_exact_rate"] == pytest.approx(2 / 3)
    assert summary["recognizer"]["mean_best_log_likelihood"] == pytest.approx(-1.5)
    assert summary["tesseract"] == {"available": False, "reason": "not installed"}


# ------------------------------------------------------------------------------------------ sampling details
def test_sampling_structure_and_batch_independence(models):
    """A <row> is always followed by a code and never ends the part; a row's image depends on its seed
    stream only, not on the rows sharing its batch."""
    from gpt.sampling import candidate_uniforms

    pretrained = models["loaded"]
    vocab, model = pretrained.vocab, pretrained.model
    prompts = torch.tensor([vocab.text_part(t, MAX_TEXT_LENGTH) for t in ["hello", "abc", "lo"] * 2])
    whole = sample_image_parts(model, vocab, prompts, MAX_LENGTH, SamplingConfig(seed=5)).image_ids
    free = sample_image_parts(model, vocab, prompts, MAX_LENGTH, SamplingConfig(seed=5, rectangular=False)).image_ids
    for row in whole.tolist() + free.tolist():
        followers = [b for a, b in zip(row, row[1:]) if a == vocab.row_id]
        assert all(vocab.code_offset <= b < vocab.num_used for b in followers)
        assert row[-1] != vocab.row_id
        vocab.parse_grid(row)  # never raises: every sample has codes
    assert all(vocab.parse_grid(row)[1] == [] for row in whole.tolist())  # rectangular: nothing to repair
    assert any(vocab.parse_grid(row)[1] for row in free.tolist())  # a random model makes ragged rows
    uniforms = candidate_uniforms(6, MAX_LENGTH, 5)
    halves = [sample_image_parts(model, vocab, prompts[s:s + 3], MAX_LENGTH, SamplingConfig(seed=5),
                                 uniforms=uniforms[s:s + 3]).image_ids for s in (0, 3)]
    torch.testing.assert_close(torch.cat(halves), whole)


def test_imposed_row_widths_and_vertical_prompts(models):
    """row_widths fixes every row's width from the first row on; --vertical imposes a vertical crop's width."""
    from gpt.drawing import generate_for_prompts
    from vqvae.templates import LINE_CODES

    pretrained = models["loaded"]
    vocab, model = pretrained.vocab, pretrained.model
    prompts = torch.tensor([vocab.text_part(t, MAX_TEXT_LENGTH) for t in ["hello", "abc", "lo"]])
    ids = sample_image_parts(model, vocab, prompts, MAX_LENGTH, SamplingConfig(seed=1),
                             row_widths=torch.tensor([1, 3, 0])).image_ids
    grids = [vocab.parse_grid(row) for row in ids.tolist()]
    assert [grid.shape[1] for grid, _ in grids[:2]] == [1, 3] and all(not repairs for _, repairs in grids)
    with pytest.raises(ValueError, match="rectangular"):
        sample_image_parts(model, vocab, prompts, MAX_LENGTH, SamplingConfig(rectangular=False),
                           row_widths=torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match=r"widths in \[0, 99\]"):
        sample_image_parts(model, vocab, prompts, MAX_LENGTH, row_widths=torch.tensor([1, 200, 1]))
    items = generate_for_prompts(pretrained, ["hello", "lo"], 2, SamplingConfig(seed=3), progress=False,
                                 vertical=True, crop=False)
    assert [item.grid.shape[1] for item in items] == [LINE_CODES] * 4  # strips, whatever the orientation
    turned = generate_for_prompts(pretrained, ["hello", "lo"], 2, SamplingConfig(seed=3), progress=False, crop=False)
    assert [t.image.shape[:2] for t in turned] == [i.image.shape[1::-1] for i in items]  # horizontal: turned back


def test_greedy_with_kv_cache_matches_a_full_forward(models):
    pretrained = models["loaded"]
    vocab, model = pretrained.vocab, pretrained.model
    prompts = torch.tensor([vocab.text_part(t, MAX_TEXT_LENGTH) for t in ["hello", "한국어"]])
    free = SamplingConfig(temperature=0, rectangular=False)
    ids = sample_image_parts(model, vocab, prompts, MAX_LENGTH, free).image_ids
    with torch.no_grad():
        logits = model(input_ids=torch.cat([prompts, ids], 1)).logits[:, MAX_TEXT_LENGTH:]  # position t predicts t+1
    allowed = vocab.image_token_ids
    for b in range(ids.shape[0]):
        for t in range(MAX_LENGTH - 1):
            if ids[b, t] == vocab.vpad_id:
                break
            options = allowed[vocab.is_code(allowed)] if ids[b, t] == vocab.row_id else allowed
            if t == MAX_LENGTH - 2:
                options = options[options != vocab.row_id]
            assert ids[b, t + 1] == options[logits[b, t, options].argmax()], (b, t)


def test_guidance_needs_and_uses_the_unconditional_prompt(models):
    pretrained = models["loaded"]
    vocab = pretrained.vocab
    prompts = torch.tensor([vocab.text_part("hello", MAX_TEXT_LENGTH)] * 2)
    with pytest.raises(ValueError, match="uncond_prompt_ids"):
        sample_image_parts(pretrained.model, vocab, prompts, MAX_LENGTH, SamplingConfig(guidance_scale=2.0))
    uncond = torch.tensor([vocab.text_part("", MAX_TEXT_LENGTH)])
    guided = sample_image_parts(pretrained.model, vocab, prompts, MAX_LENGTH, SamplingConfig(guidance_scale=3.0),
                                uncond_prompt_ids=uncond)
    plain = sample_image_parts(pretrained.model, vocab, prompts, MAX_LENGTH, SamplingConfig())
    assert torch.isfinite(guided.logprob).all() and not torch.equal(guided.logprob, plain.logprob)


def test_crop_padding_removes_template_padding_only():
    from gpt.drawing import crop_padding
    from vqvae.templates import PAD_RGB

    image = np.full((24, 48, 3), PAD_RGB, dtype=np.uint8)
    image[:13, :27] = 10  # content ends mid-code: the padding goes to the pixel
    assert crop_padding(image, 8).shape == (13, 27, 3)
    image[20, 40] = 200  # one pixel unlike the padding keeps everything up to it
    assert crop_padding(image, 8).shape == (21, 41, 3)
    assert crop_padding(np.full((8, 16, 3), PAD_RGB, np.uint8), 8).shape == (8, 8, 3)  # keeps one code


def test_one_pass_reading_and_score_match_separate_passes(models):
    from gpt.decoding import _allowed_mask
    from gpt.legibility import read_back, read_back_and_score

    recognizer = load_pretrained(models["recognizer"], load_tokenizer=False, load_vqvae=False)
    model, vocab, rng = recognizer.model.eval(), recognizer.vocab, np.random.default_rng(0)
    image_ids = torch.tensor([vocab.image_part(rng.integers(0, vocab.num_codes, (2, 1 + i)), MAX_LENGTH)
                              for i in range(5)])  # widths differ: rows of the batch hold <vpad>
    alone = read_back(model, vocab, image_ids, MAX_TEXT_LENGTH)
    texts = ["ab", "hello", "", "a b", "Z"]
    readings, scores = read_back_and_score(model, vocab, image_ids, texts, MAX_TEXT_LENGTH, batch_size=2)
    assert [text for text, _ in readings] == [text for text, _ in alone]
    assert [c for _, c in readings] == pytest.approx([c for _, c in alone], rel=1e-4)
    # The reference: one uncached forward pass over each untrimmed image part and its text.
    mask = _allowed_mask(vocab, model.config.vocab_size, torch.device("cpu"))
    for row, text in enumerate(texts[:4]):
        text_ids = torch.tensor([vocab.text_part(text, MAX_TEXT_LENGTH)])
        ids = torch.cat([image_ids[row:row + 1], text_ids], 1)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=(ids != vocab.vpad_id).long()).logits
        logprobs = (logits[0, -MAX_TEXT_LENGTH:-1] + mask).log_softmax(-1)
        targets = text_ids[0, 1:]
        expected = logprobs.gather(1, targets[:, None])[:, 0][targets != vocab.pad_id].sum()
        assert float(scores[row]) == pytest.approx(float(expected), abs=1e-3)
    assert scores[4] == float("-inf")  # "Z" is outside the charset
    _, own = read_back_and_score(model, vocab, image_ids, [text for text, _ in readings], MAX_TEXT_LENGTH)
    for (text, confidence), score in zip(readings, own.tolist()):
        if len(text) < MAX_TEXT_LENGTH - 2:  # a reading cut at the length limit had </s> forced
            assert score == pytest.approx(float(np.log(confidence)), abs=1e-4)


def test_cli_images_do_not_depend_on_the_batch_size(models, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out, batch in zip(outs, ("8", "3")):
        generate_main([str(models["generator"]), "hello", "abc", "--num-candidates", "3", "--seed", "7", "--no-rerank",
                       "--top-k", "8", "--batch-size", batch, "--output", str(out), "--no-progress"])
    frames = [pd.read_csv(out / "results.csv", keep_default_na=False) for out in outs]
    pd.testing.assert_frame_equal(*frames)
    for path in frames[0]["path"]:
        if path:
            assert (outs[0] / path).read_bytes() == (outs[1] / path).read_bytes()


def test_prompts_without_a_model_folder_go_to_the_shipped_drawing_model(models, monkeypatch, capsys):
    import gpt.generate as generate

    monkeypatch.setattr(generate, "SHIPPED_DRAW_MODEL", models["generator"])
    monkeypatch.setattr(generate, "SHIPPED_MODEL", models["recognizer"])
    args = generate.parse_args(["hello", "abc", "--output", "x"])
    assert args.model_dir == models["generator"] and args.prompts == ["hello", "abc"]
    assert args.rerank_with == str(models["recognizer"])  # reranked by the shipped recognizer by default
    assert generate.parse_args(["hello", "--output", "x", "--no-rerank"]).rerank_with is None
    free = generate.parse_args(["--unconditional", "2", "--output", "x"])
    assert free.model_dir == models["recognizer"] and free.prompts == []
    monkeypatch.setattr(generate, "SHIPPED_DRAW_MODEL", models["generator"].parent / "missing-draw")
    with pytest.raises(SystemExit):
        generate.parse_args(["hello", "--output", "x"])
    assert "missing-draw is missing" in capsys.readouterr().err


def test_vertical_prompts_carry_the_vertical_mark(models):
    from gpt.drawing import generate_for_prompts

    generator = load_pretrained(models["generator"], load_tokenizer=False)
    sampling = SamplingConfig(temperature=1.0, seed=3)
    across = generate_for_prompts(generator, ["hello"], 1, sampling, progress=False)
    again = generate_for_prompts(generator, ["hello"], 1, sampling, progress=False)
    down = generate_for_prompts(generator, ["hello"], 1, sampling, progress=False, vertical=True)
    # Same prompt, seed and random model: only the <vertical> mark can change what the draws cost.
    assert across[0].gen_logprob == again[0].gen_logprob
    assert across[0].gen_logprob != down[0].gen_logprob
