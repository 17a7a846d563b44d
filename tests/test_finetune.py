"""gpt.finetune: reverse layout, prompt dropout, the CLI end to end (losses, samples, export), refusals, and
what the fine-tuned export generates."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gpt.finetune import FinetuneTask, main as finetune_main
from gpt.drawing import generate_for_prompts
from gpt.pretrained import load_pretrained
from gpt.sampling import SamplingConfig
from gpt.vocab import PART_IGNORE, PART_IMAGE, PART_TEXT, Vocab
from tests.fixtures import recognition_export, token_csv
from tests.test_export import MAX_LENGTH, MAX_TEXT_LENGTH, build_parts

TINY = str(Path(__file__).resolve().parents[1] / "config" / "tiny" / "gpt2-finetune.yaml")


def test_reverse_layout_round_trip():
    vocab = Vocab.build(["hello", "한국어"], 16)
    grid = np.array([[1, 2, 3], [4, 5, 15]])
    ids, part = vocab.sequence(grid, "한국어", "text_first", 16, 8)
    forward_ids, _ = vocab.sequence(grid, "한국어", "image_first", 16, 8)
    assert ids.shape == (24,)
    np.testing.assert_array_equal(ids, np.concatenate([forward_ids[16:], forward_ids[:16]]))
    image, text = vocab.split(ids, "text_first", 16, 8)
    assert vocab.decode_text(text[1:]) == "한국어" and text[0] == vocab.bos_id
    parsed, repairs = vocab.parse_grid(image)
    np.testing.assert_array_equal(parsed, grid)
    assert repairs == []
    # Loss marks: text part (<s> unpredicted, then chars and </s>), pads ignored, image part up to the first <vpad>.
    assert part[0] == PART_IGNORE and (part[1:5] == PART_TEXT).all() and (part[5:8] == PART_IGNORE).all()
    assert (part[8:8 + 9] == PART_IMAGE).all() and (part[17:] == PART_IGNORE).all()


def test_prompt_dropout_empties_only_the_text_part():
    _, base = build_parts()
    task = FinetuneTask(base.cfg, base.vocab, MAX_LENGTH, MAX_TEXT_LENGTH, base.vqvae_meta, base.model,
                        cond_dropout=0.5)
    grids = [np.arange(6).reshape(1, 6) % 16] * 64
    ids, part = base.vocab.sequences(grids, ["hello"] * 64, "text_first", MAX_LENGTH, MAX_TEXT_LENGTH)
    batch = {"input_ids": torch.from_numpy(ids).long(), "loss_part": torch.from_numpy(part)}
    torch.manual_seed(0)
    out = task.drop_prompts(batch)
    empty = torch.tensor(base.vocab.text_part("", MAX_TEXT_LENGTH))
    dropped = (out["input_ids"][:, :MAX_TEXT_LENGTH] == empty).all(1)
    assert 10 < int(dropped.sum()) < 54  # about half of 64
    kept = out["input_ids"][~dropped]
    assert (kept == batch["input_ids"][~dropped]).all()
    assert (out["input_ids"][:, MAX_TEXT_LENGTH:] == batch["input_ids"][:, MAX_TEXT_LENGTH:]).all()
    assert (batch["input_ids"][:, 1] != base.vocab.eos_id).all()  # the input batch itself is untouched
    with pytest.raises(ValueError, match="cond_dropout"):
        FinetuneTask(base.cfg, base.vocab, MAX_LENGTH, MAX_TEXT_LENGTH, base.vqvae_meta, base.model, cond_dropout=1.0)


def test_prompt_dropout_keeps_the_orientation_mark():
    _, base = build_parts()
    task = FinetuneTask(base.cfg, base.vocab, MAX_LENGTH, MAX_TEXT_LENGTH, base.vqvae_meta, base.model,
                        cond_dropout=0.9)
    vertical = [True, False] * 32
    ids, part = base.vocab.sequences([np.arange(6).reshape(1, 6) % 16] * 64, ["hello"] * 64, "text_first",
                                     MAX_LENGTH, MAX_TEXT_LENGTH, vertical)
    torch.manual_seed(0)
    out = task.drop_prompts({"input_ids": torch.from_numpy(ids).long(), "loss_part": torch.from_numpy(part)})
    dropped = out["input_ids"][:, 1] == base.vocab.eos_id
    assert int(dropped.sum()) > 40
    assert (out["input_ids"][:, 0] == torch.from_numpy(ids[:, 0])).all()  # every row keeps <s> or <vertical>
    for mark in (True, False):
        empty = torch.tensor(base.vocab.text_part("", MAX_TEXT_LENGTH, vertical=mark))
        rows = dropped & (torch.tensor(vertical) == mark)
        assert (out["input_ids"][rows, :MAX_TEXT_LENGTH] == empty).all()


def test_text_first_loss_skips_trailing_padding_exactly():
    """Dropping the <vpad> columns after a batch's last target changes no loss (causal: nothing reads them)."""
    _, base = build_parts()
    task = FinetuneTask(base.cfg, base.vocab, MAX_LENGTH, MAX_TEXT_LENGTH, base.vqvae_meta, base.model)
    grids = [np.arange(6).reshape(1, 6) % 16, np.arange(8).reshape(2, 4) % 16]
    ids, part = base.vocab.sequences(grids, ["hello", "abc"], "text_first", MAX_LENGTH, MAX_TEXT_LENGTH)
    ids, part = torch.from_numpy(ids).long(), torch.from_numpy(part)
    assert ids.shape[1] > MAX_TEXT_LENGTH + 11  # there is trailing padding to drop
    task.eval()
    with torch.no_grad():
        out = task.losses({"input_ids": ids, "loss_part": part})
        logits = task.model(input_ids=ids).logits[:, :-1].float()  # the whole, untrimmed sequence
    token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    for kind, name in ((PART_IMAGE, "image_loss"), (PART_TEXT, "text_loss")):
        mask = part[:, 1:] == kind
        torch.testing.assert_close(out[name], token[mask].mean(), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    init = recognition_export(root / "init")
    train, val = token_csv(root / "train.csv", init, 16), token_csv(root / "val.csv", init, 8, seed=1)
    run_dir = root / "run"
    status = finetune_main([TINY, f"init_from={init}", f"data.train={train}", f"data.val={val}", f"run_dir={run_dir}"])
    return {"root": root, "init": init, "train": train, "val": val, "run_dir": run_dir, "status": status}


def test_finetune_writes_losses_samples_and_a_text_first_export(finetuned):
    run_dir = finetuned["run_dir"]
    assert finetuned["status"] == 0
    for name in ["config.yaml", "checkpoints/last.ckpt", "samples/step_000002.png", "samples/step_000004.png",
                 "export/layout.json", "export/model.safetensors", "export/vqvae/model.safetensors"]:
        assert (run_dir / name).is_file(), name
    metrics = pd.read_csv(run_dir / "logs" / "metrics.csv")
    for key in ["train/image_loss", "train/text_loss", "val/image_loss", "val/text_loss"]:
        assert metrics[key].notna().any(), key
    export = load_pretrained(run_dir / "export", load_tokenizer=False)
    init = load_pretrained(finetuned["init"], load_tokenizer=False)
    assert export.order == "text_first" and init.order == "image_first"
    assert export.fingerprint == init.fingerprint and export.vocab.chars == init.vocab.chars
    assert (export.max_visual_length, export.max_text_length) == (MAX_LENGTH, MAX_TEXT_LENGTH)
    changed = [not torch.equal(a, b) for a, b in zip(export.model.parameters(), init.model.parameters())]
    assert any(changed)  # it trained
    # What it never saw drawn: the charset less its training texts (a recognizer had drawn nothing), refused in prompts.
    texts = set("".join(pd.read_csv(finetuned["train"], keep_default_na=False)["text"]))
    assert export.undrawn_chars == set(init.vocab.chars) - texts and export.undrawn_chars
    sheet = Image.open(run_dir / "samples" / "step_000004.png")
    assert sheet.width > 100 and sheet.height > 30


def test_finetuned_model_generates_the_same_pngs_twice(finetuned):
    export = load_pretrained(finetuned["run_dir"] / "export", load_tokenizer=False)
    sampling = SamplingConfig(temperature=1.0, seed=3)
    first = generate_for_prompts(export, ["hello"], 3, sampling, progress=False)
    second = generate_for_prompts(export, ["hello"], 3, sampling, batch_size=1, progress=False)
    assert len(first) == 3
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.image_ids, b.image_ids)
        if a.image is None:
            assert b.image is None and a.error
            continue
        np.testing.assert_array_equal(a.image, b.image)
        height, width, channels = a.image.shape
        rows, cols = a.grid.shape
        assert channels == 3 and a.image.dtype == np.uint8
        # Cropped to whole codes of the 8-pixel VQ-VAE, never larger than the grid, and a strip shown as a
        # horizontal line: turned back a quarter, so its rows run left to right.
        assert height % 8 == 0 and width % 8 == 0 and 8 <= height <= cols * 8 and 8 <= width <= rows * 8
        assert a.image_ids.shape == (MAX_LENGTH,) and a.image_ids[0] == export.vocab.row_id
    assert any(item.image is not None for item in first)


def test_refuses_tokens_of_another_vqvae(finetuned, tmp_path, capsys):
    other = token_csv(tmp_path / "other.csv", finetuned["init"], 8, fingerprint="feedfacecafe0000")
    status = finetune_main([TINY, f"init_from={finetuned['init']}", f"data.train={other}",
                            f"data.val={finetuned['val']}", f"run_dir={tmp_path / 'run'}"])
    assert status == 2
    fingerprint = load_pretrained(finetuned["init"], load_tokenizer=False, load_vqvae=False).fingerprint
    error = capsys.readouterr().err
    assert "feedfacecafe0000" in error and fingerprint in error
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_refuses_another_text_length(finetuned, tmp_path, capsys):
    status = finetune_main([TINY, f"init_from={finetuned['init']}", f"data.train={finetuned['train']}",
                            f"data.val={finetuned['val']}", f"run_dir={tmp_path / 'run'}", "data.max_text_length=20"])
    assert status == 2
    error = capsys.readouterr().err
    assert "max_text_length=20" in error and f"set data.max_text_length={MAX_TEXT_LENGTH}" in error


def test_gpt_export_takes_a_finetune_run(finetuned, tmp_path):
    from gpt.export import main as export_main

    run_dir = finetuned["run_dir"]
    status = export_main([str(run_dir / "config.yaml"), str(run_dir / "checkpoints" / "last.ckpt"), "--output",
                          str(tmp_path / "export")])  # the VQ-VAE comes from the run's init_from
    assert status == 0
    export = load_pretrained(tmp_path / "export", load_tokenizer=False)
    assert export.order == "text_first"
    assert export.undrawn_chars == load_pretrained(run_dir / "export", load_tokenizer=False).undrawn_chars
