"""gpt.train end to end on tiny token CSVs: run folder contents, errors, skip report, and a learning test."""
import logging
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from gpt.decoding import recognize
from gpt.task import GPTTask
from gpt.train import main
from gpt.vocab import Vocab
from vqvae.tokens import grid_to_string, write_sidecar

TINY = str(Path(__file__).resolve().parents[1] / "config" / "tiny" / "gpt2.yaml")
WORDS = ["cat", "dog", "sun", "한글", "tree", "blue", "red sky", "moon", "fish", "star", "글자", "rain",
         "box", "jam", "wind", "leaf"]


def write_tokens(path: Path, grids: list[np.ndarray], texts: list[str], fingerprint: str = "vq-a",
                 num_codes: int = 16, max_length: int = 16) -> str:
    pd.DataFrame({"img_path": [f"img{i}.png" for i in range(len(texts))], "text": texts,
                  "visual_tokens": [grid_to_string(g) for g in grids], "extra": "kept"}).to_csv(path, index=False)
    write_sidecar(path, {"fingerprint": fingerprint, "num_codes": num_codes, "downsample": 8,
                         "max_length": max_length, "command": "test"})
    return str(path)


def random_tokens(path: Path, texts: list[str], seed: int = 0, **kwargs) -> str:
    rng = np.random.default_rng(seed)
    grids = [rng.integers(0, 16, (int(rng.integers(1, 3)), int(rng.integers(2, 6)))) for _ in texts]
    return write_tokens(path, grids, texts, **kwargs)


@pytest.fixture
def token_csvs(tmp_path):
    train = random_tokens(tmp_path / "train.csv", WORDS * 2)
    val = random_tokens(tmp_path / "val.csv", WORDS[:8], seed=1)
    return train, val


def test_train_writes_run_folder(token_csvs, tmp_path):
    train, val = token_csvs
    run_dir = tmp_path / "run"
    assert main([TINY, f"data.train={train}", f"data.val={val}", f"run_dir={run_dir}"]) == 0
    for name in ["config.yaml", "charset.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt",
                 "samples/val_step_2.csv", "samples/val_step_4.csv", "logs/metrics.csv"]:
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "skipped.csv").exists()
    vocab = Vocab.load(run_dir / "charset.json")
    assert set("".join(WORDS)) == set(vocab.chars) and vocab.num_codes == 16
    assert "max_visual_length: 16" in (run_dir / "config.yaml").read_text()  # resolved from the sidecar
    metrics = pd.read_csv(run_dir / "logs" / "metrics.csv")
    for key in ["train/loss", "train/image_loss", "train/text_loss", "val/loss", "val/accuracy", "val/cer"]:
        assert metrics[key].notna().any(), key
    samples = pd.read_csv(run_dir / "samples" / "val_step_4.csv", keep_default_na=False)
    assert list(samples.columns) == ["label", "prediction", "confidence", "correct"]
    assert samples["label"].tolist() == WORDS[:8]

    # The checkpoint alone rebuilds the task: same vocab, layout, VQ-VAE meta and weights.
    task = GPTTask.from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert task.vocab == vocab and task.max_visual_length == 16 and task.max_text_length == 12
    assert task.vqvae_meta["fingerprint"] == "vq-a"
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    torch.testing.assert_close(task.model.transformer.wte.weight, state["model.transformer.wte.weight"])

    # Running again resumes from last.ckpt and continues to the new max_steps.
    assert main([TINY, f"data.train={train}", f"data.val={val}", f"run_dir={run_dir}", "trainer.max_steps=6"]) == 0
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6


def test_muon_trains_resumes_and_refuses_unknown_optimizers(token_csvs, tmp_path, capsys):
    train, val = token_csvs
    run_dir = tmp_path / "run"
    args = [TINY, f"data.train={train}", f"data.val={val}", f"run_dir={run_dir}", "optim.matrices=muon"]
    assert main(args) == 0
    assert main([*args, "trainer.max_steps=6"]) == 0  # resumes Muon's momentum and AdamW's moments
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 6 and set(checkpoint["optimizer_states"][0]) == {"muon", "adamw"}
    assert main([*args[:3], f"run_dir={tmp_path / 'bad'}", "optim.matrices=lion"]) == 2
    assert "optim.matrices='lion': use adamw or muon" in capsys.readouterr().err


def test_different_vqvae_is_refused(tmp_path, capsys):
    train = random_tokens(tmp_path / "train.csv", WORDS)
    val = random_tokens(tmp_path / "val.csv", WORDS[:4], fingerprint="vq-b")
    assert main([TINY, f"data.train={train}", f"data.val={val}", f"run_dir={tmp_path / 'run'}"]) == 2
    error = capsys.readouterr().err
    assert "'vq-a'" in error and "'vq-b'" in error


def test_loss_weights_that_train_nothing_are_refused(token_csvs, tmp_path, capsys):
    train, val = token_csvs
    assert main([TINY, f"data.train={train}", f"data.val={val}", f"run_dir={tmp_path / 'run'}",
                 "loss.image_weight=0", "loss.text_weight=0"]) == 2
    assert "loss.image_weight=0.0 and loss.text_weight=0.0" in capsys.readouterr().err


def test_too_long_label_errors_or_is_skipped(tmp_path, capsys):
    texts = WORDS[:6] + ["a label far too long"]
    train = random_tokens(tmp_path / "train.csv", texts)
    val = random_tokens(tmp_path / "val.csv", WORDS[:4], seed=1)
    args = [TINY, f"data.train={train}", f"data.val={val}", "trainer.max_steps=1", "validation.num_decode_samples=0"]
    assert main([*args, f"run_dir={tmp_path / 'a'}"]) == 2
    error = capsys.readouterr().err
    assert "train.csv row 6" in error and "skip_too_long" in error

    assert main([*args, f"run_dir={tmp_path / 'b'}", "data.skip_too_long=true"]) == 0
    skipped = pd.read_csv(tmp_path / "b" / "skipped.csv")
    assert skipped[["split", "row", "text"]].values.tolist() == [["train", 6, "a label far too long"]]
    assert "max_text_length" in skipped["reason"][0]


def test_unknown_val_chars_are_counted(tmp_path, caplog):
    train = random_tokens(tmp_path / "train.csv", WORDS[:4])
    val = random_tokens(tmp_path / "val.csv", ["cat", "xyz"], seed=1)
    with caplog.at_level(logging.WARNING):
        assert main([TINY, f"data.train={train}", f"data.val={val}", f"run_dir={tmp_path / 'run'}",
                     "trainer.max_steps=1", "validation.num_decode_samples=0"]) == 0
    assert "val: 3 characters (3 distinct" in caplog.text and "<unk>" in caplog.text


# ---------------------------------------------------------------------------------------------------- learning
def render_word(text: str, font: ImageFont.FreeTypeFont, shift: int) -> np.ndarray:
    """A 16x64 grayscale crop of `text` in [0, 1] (dark text on white)."""
    image = Image.new("L", (64, 16), 255)
    ImageDraw.Draw(image).text((1 + shift, 1), text, fill=0, font=font)
    return np.asarray(image, dtype=np.float32) / 255.0


def random_vq_encode(images: np.ndarray, num_codes: int = 32, patch: int = 8, seed: int = 0) -> np.ndarray:
    """A random-init VQ encoder: each 8x8 patch -> random projection -> nearest of `num_codes` random
    unit codes. images (N, H, W) -> grids (N, H/8, W/8) int64."""
    rng = np.random.default_rng(seed)
    num, height, width = images.shape
    patches = images.reshape(num, height // patch, patch, width // patch, patch).transpose(0, 1, 3, 2, 4)
    features = (1.0 - patches.reshape(num, height // patch, width // patch, patch * patch)) @ \
        rng.normal(size=(patch * patch, 16))
    codebook = rng.normal(size=(num_codes, 16))
    codebook /= np.linalg.norm(codebook, axis=1, keepdims=True)
    return np.argmax(features @ codebook.T, axis=-1)  # nearest by angle


@pytest.mark.slow
def test_tiny_gpt_learns_to_read(tmp_path):
    """16 words rendered twice (two positions) and tokenized by a random VQ encoder: the GPT must map
    each 2x8 code grid to its word. Memorisation, so 100% training accuracy is the bar."""
    font_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_path), 12)
    # DejaVu has no Hangul: keep the Latin words so every image differs.
    words = [w for w in WORDS if w.isascii()] + ["ink", "owl", "pen"]
    images = np.stack([render_word(w, font, shift) for shift in (0, 3) for w in words])
    grids = random_vq_encode(images)
    texts = words * 2
    assert len({g.tobytes() for g in grids}) == len(grids), "precondition: every image gets its own grid"
    train = write_tokens(tmp_path / "train.csv", list(grids), texts, num_codes=32, max_length=18)
    run_dir = tmp_path / "run"
    assert main([TINY, f"data.train={train}", f"data.val={train}", f"run_dir={run_dir}",
                 "model.n_embd=64", "model.n_layer=2", "model.n_head=2", "optim.lr=1e-2", "optim.warmup_steps=10",
                 f"data.batch_size={len(texts)}", "trainer.max_steps=120", "trainer.val_check_interval=120",
                 "validation.num_decode_samples=64", "loss.image_weight=0.1"]) == 0
    task = GPTTask.from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    image_ids = torch.tensor(np.stack([task.vocab.image_part(g, task.max_visual_length) for g in grids]))
    results = recognize(task.model, task.vocab, image_ids, task.max_text_length)
    assert [text for text, _ in results] == texts
    assert min(confidence for _, confidence in results) > 0.5
    metrics = pd.read_csv(run_dir / "logs" / "metrics.csv")
    assert metrics["val/accuracy"].dropna().iloc[-1] == 1.0


def test_data_module_base_charset_and_batches(tmp_path):
    from gpt.config import DataConfig
    from gpt.data import GPTDataModule

    train = random_tokens(tmp_path / "train.csv", WORDS)
    val = random_tokens(tmp_path / "val.csv", ["xyz"], seed=1)
    (tmp_path / "chars.txt").write_text("xy\nz\n", encoding="utf-8")
    cfg = DataConfig(train=[train], val=val, max_text_length=12, batch_size=5, base_charset=str(tmp_path / "chars.txt"))
    data = GPTDataModule(cfg, "image_first", tmp_path / "run").prepare()
    assert {"x", "y", "z"} <= set(data.vocab.chars) and "\n" not in data.vocab.chars
    assert Vocab.load(tmp_path / "run" / "charset.json") == data.vocab
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape == (5, 16 + 12) and batch["input_ids"].dtype == torch.long
    assert batch["loss_part"].shape == (5, 28) and batch["index"].shape == (5,)
    # each row is the layout of its CSV row: decode the text part back
    texts = [data.vocab.decode_text(row[16:]) for row in batch["input_ids"].tolist()]
    assert texts == [WORDS[i] for i in batch["index"].tolist()]


def test_length_grouped_batches_cover_every_row_shard_across_ranks_and_resume():
    from gpt.data import LengthGroupedBatchSampler

    lengths = np.arange(50) % 7
    sampler = LengthGroupedBatchSampler(lengths, 4, seed=1, pool_batches=3, num_replicas=1, rank=0)
    epoch0, epoch1 = list(sampler), list(sampler)  # the epoch advances on every iter()
    assert len(epoch0) == len(sampler) == 13 and epoch0 != epoch1
    assert sorted(i for batch in epoch0 for i in batch) == list(range(50))
    # Within a pool of 12 rows, batches are cut from the rows sorted by length.
    assert np.mean([np.ptp(lengths[batch]) for batch in epoch0]) < np.ptp(lengths)
    shards = [list(LengthGroupedBatchSampler(lengths, 4, seed=1, pool_batches=3, num_replicas=2, rank=rank))
              for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 7  # 13 batches wrapped to 14: ranks step together
    assert {i for shard in shards for batch in shard for i in batch} == set(range(50))
    resumed = LengthGroupedBatchSampler(lengths, 4, seed=1, pool_batches=3, num_replicas=1, rank=0)
    resumed.set_epoch(1, skip=5)
    assert list(resumed) == epoch1[5:] and list(resumed)[0] != epoch1[5]  # then epoch 2 from its start


def test_validation_batches_interleave_rows_across_ranks():
    from vqvae.plumbing.batches import SequentialBatchSampler

    assert [list(SequentialBatchSampler(10, 3, num_replicas=2, rank=rank)) for rank in (0, 1)] == [
        [[0, 2, 4], [6, 8]], [[1, 3, 5], [7, 9]]]  # each rank's first rows are the set's first rows
    assert list(SequentialBatchSampler(1, 3, num_replicas=2, rank=1)) == [[0]]  # a rank without rows still logs
