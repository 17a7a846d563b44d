"""Multi-process paths on CPU: DDP training (gloo, two processes Lightning launches itself) and torchrun
encoding.

Each test runs the real commands in subprocesses with one thread per process:
- `vqvae.train` with trainer.strategy=ddp: the batch sampler gives both ranks the same number of batches
  over uneven template groups, dead-code restarts leave identical weights on both ranks, validation sees
  every image once and val/codebook_usage, val/perplexity match a one-process pass over the val set; a
  run capped by max_time alone ends with equal weights on both ranks (one step count for both);
- `gpt.train` with trainer.strategy=ddp: the checkpoint loads, and val/accuracy and the samples CSV come
  from the decoded rows of both ranks;
- `torchrun --nproc-per-node 2 -m vqvae.encode` writes the very bytes a single process writes.

Run as a module (`python -m tests.test_ddp vqvae-ranks DUMP_DIR CONFIG key=value ...`) this file is
`vqvae.train` with an observing callback that saves each rank's weights and batches to DUMP_DIR: Lightning
re-launches that same `-m` command for rank 1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
TINY_VQVAE = ROOT / "config" / "tiny" / "vqvae.yaml"
TINY_GPT = ROOT / "config" / "tiny" / "gpt2.yaml"
# Words of many lengths (and two vertical crops): several template groups of uneven sizes.
WORDS = ["a", "to", "OCR", "text", "alpha", "gamma", "delta", "tokens", "picture", "sentence", "hello world",
         "Seoul", "VQ", "model"]
BATCH_SIZE = 3  # 7 batches over 5 template groups: an odd count, so the train shards need padding
TIMEOUT_S = 240


def subprocess_env() -> dict[str, str]:
    """One thread per process (two processes share a busy 2-core machine), and no leftover rendezvous
    variables: Lightning and torchrun --standalone then pick a free port themselves."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_MMAP_MAX_="0",
               MALLOC_TRIM_THRESHOLD_="2147483647", PYTHONPATH=str(ROOT))
    return env


def run(command: list[str], expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == expect, (f"{' '.join(command)} exited {done.returncode}, expected {expect}:\n"
                                       f"{done.stderr[-4000:]}")
    return done


def render_dataset(root: Path) -> Path:
    """Black-on-white DejaVu words cropped tight (two of them rotated to vertical) as a labelled CSV."""
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 18)
    rows = []
    for i, word in enumerate(WORDS):
        left, top, right, bottom = font.getbbox(word)
        image = Image.new("RGB", (right - left + 8, bottom - top + 8), (255, 255, 255))
        ImageDraw.Draw(image).text((4 - left, 4 - top), word, font=font, fill=(0, 0, 0))
        if i in (5, 9):
            image = image.rotate(90, expand=True)
        image.save(root / f"{i:02d}.png")
        rows.append({"img_path": f"{i:02d}.png", "text": word})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def last_metrics(run_dir: Path) -> pd.Series:
    """The last logged value of every column of run_dir/logs/metrics.csv."""
    return pd.read_csv(run_dir / "logs" / "metrics.csv").ffill().iloc[-1]


# --------------------------------------------------------------------------------------------- sampler
@pytest.mark.parametrize("num_replicas", [2, 3, 8])
def test_sampler_shards_pad_for_training_and_not_for_validation(tmp_path, num_replicas):
    """In one process, as each rank would see it: training shards have equal lengths and cover every
    batch; validation shards (pad=False) hold every batch exactly once, and a rank left without one gets a
    repeat so that it still logs."""
    from vqvae.data import CropDataset, TemplateBatchSampler

    render_dataset(tmp_path)
    dataset = CropDataset([str(tmp_path / f"{i:02d}.png") for i in range(len(WORDS))], 100, 8)
    every = [tuple(b) for b in TemplateBatchSampler(dataset, BATCH_SIZE, shuffle=False, num_replicas=1, rank=0)]
    train = [list(TemplateBatchSampler(dataset, BATCH_SIZE, shuffle=True, seed=5, num_replicas=num_replicas,
                                       rank=rank)) for rank in range(num_replicas)]
    assert len({len(shard) for shard in train}) == 1
    assert {i for shard in train for batch in shard for i in batch} == set(range(len(dataset)))
    val = [TemplateBatchSampler(dataset, BATCH_SIZE, shuffle=False, num_replicas=num_replicas, rank=rank, pad=False)
           for rank in range(num_replicas)]
    shards = [[tuple(batch) for batch in sampler] for sampler in val]
    assert [len(shard) for shard in shards] == [len(sampler) for sampler in val]
    assert all(shards)
    if num_replicas <= len(every):
        assert sorted(b for shard in shards for b in shard) == sorted(every)
    else:  # more ranks than batches: the extra ranks repeat one batch each
        assert sorted(set(b for shard in shards for b in shard)) == sorted(every)


# --------------------------------------------------------------------------------------------- VQ-VAE
@pytest.fixture(scope="module")
def vqvae_ddp(tmp_path_factory) -> dict:
    """One two-process DDP run of vqvae.train, through this module's rank-dumping entry point."""
    from vqvae.data import CropDataset, TemplateBatchSampler

    root = tmp_path_factory.mktemp("ddp_vqvae")
    labels = render_dataset(root)
    dataset = CropDataset([str(root / f"{i:02d}.png") for i in range(len(WORDS))], 100, 8)
    sizes = sorted(len(items) for items in dataset.groups().values())
    assert len(sizes) >= 3 and len(set(sizes)) >= 2, f"want uneven template groups, got sizes {sizes}"
    per_rank = len(TemplateBatchSampler(dataset, BATCH_SIZE, num_replicas=2, rank=0))
    # One full epoch and one step into the next; validation (and last.ckpt) at the final step only.
    max_steps = per_rank + 1
    run_dir, dump_dir = root / "run", root / "dumps"
    run([sys.executable, "-m", "tests.test_ddp", "vqvae-ranks", str(dump_dir), str(TINY_VQVAE),
         f"data.train={labels}", f"data.val={labels}", f"run_dir={run_dir}", f"data.batch_size={BATCH_SIZE}",
         "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu", f"trainer.max_steps={max_steps}",
         f"trainer.val_check_interval={max_steps}", "model.dead_code_steps=1"])
    ranks = [torch.load(dump_dir / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return {"root": root, "labels": labels, "run_dir": run_dir, "ranks": ranks, "dataset": dataset,
            "per_rank": per_rank, "max_steps": max_steps}


def test_vqvae_ddp_checkpoint_loads(vqvae_ddp):
    from vqvae.checkpoint import load_vqvae

    run_dir = vqvae_ddp["run_dir"]
    model, cfg = load_vqvae(run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt")
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == vqvae_ddp["max_steps"] and cfg.trainer.devices == 2
    for name, value in model.state_dict().items():  # rank 0 wrote the checkpoint from its final weights
        torch.testing.assert_close(value, vqvae_ddp["ranks"][0]["state_dict"][name], rtol=0, atol=0)


def test_vqvae_ddp_ranks_get_equal_disjoint_shards(vqvae_ddp):
    ranks, dataset = vqvae_ddp["ranks"], vqvae_ddp["dataset"]
    epochs = [rank["train_batches"] for rank in ranks]
    assert [len(e[0]) for e in epochs] == [vqvae_ddp["per_rank"]] * 2  # a full first epoch on both ranks
    assert [len(e[1]) for e in epochs] == [1, 1]  # then one step into the second, in lockstep
    # Batches carry each image's row in the CSV (all rows are readable here, so row = dataset position).
    first_epoch = [batch for rank in epochs for batch in rank[0]]
    assert sorted({row for batch in first_epoch for row in batch}) == list(range(len(dataset)))
    assert epochs[0][1] != epochs[1][1]  # the ranks advanced their epoch together and took different batches
    for batch in first_epoch:  # every batch is one template, so one tensor shape
        assert len({dataset.templates[key] for key in batch}) == 1


def test_vqvae_ddp_dead_code_restarts_stay_in_sync(vqvae_ddp):
    rank0, rank1 = vqvae_ddp["ranks"]
    assert rank0["restarts"] > 0, "no code was restarted: the test does not exercise the restart path"
    assert rank0["restarts"] == rank1["restarts"]
    assert rank0["state_dict"].keys() == rank1["state_dict"].keys()
    for name, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][name]), f"{name} differs between ranks"


def test_vqvae_ddp_validation_covers_val_set_once(vqvae_ddp):
    """Each val image is seen by exactly one rank, and the logged whole-set metrics equal a one-process
    pass of the saved model over the same batches."""
    from vqvae.checkpoint import load_vqvae
    from vqvae.data import TemplateBatchSampler, collate_crops
    from vqvae.modeling import histogram_perplexity

    seen = sorted(index for rank in vqvae_ddp["ranks"] for index in rank["val_indices"])
    dataset = vqvae_ddp["dataset"]
    assert seen == list(range(len(dataset)))
    run_dir = vqvae_ddp["run_dir"]
    model, _ = load_vqvae(run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt")
    counts = torch.zeros(model.num_codes, dtype=torch.long)
    with torch.no_grad():
        for batch in TemplateBatchSampler(dataset, BATCH_SIZE, shuffle=False, num_replicas=1, rank=0):
            images, _ = collate_crops([dataset[key] for key in batch])
            counts += torch.bincount(model(images).code_ids.flatten(), minlength=model.num_codes)
    logged = last_metrics(run_dir)
    assert logged["step"] == vqvae_ddp["max_steps"] - 1  # the CSV logger's step of the final validation
    assert logged["val/codebook_usage"] == pytest.approx(float((counts > 0).float().mean()), abs=1e-6)
    assert logged["val/perplexity"] == pytest.approx(float(histogram_perplexity(counts)), rel=1e-4)


def test_vqvae_ddp_time_capped_ranks_agree(tmp_path):
    """A run capped by trainer.max_time alone: rank 0 turns the time into a step count and every rank takes
    it, so both stop at the same step with the same learning rate and equal weights."""
    labels = render_dataset(tmp_path)
    run_dir, dump_dir = tmp_path / "run", tmp_path / "dumps"
    run([sys.executable, "-m", "tests.test_ddp", "vqvae-ranks", str(dump_dir), str(TINY_VQVAE),
         f"data.train={labels}", f"data.val={labels}", f"run_dir={run_dir}", f"data.batch_size={BATCH_SIZE}",
         "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.max_steps=-1",
         "trainer.max_time=00:00:00:15", "trainer.val_check_interval=100000"])  # 15 s: step 10 even on a busy machine
    rank0, rank1 = (torch.load(dump_dir / f"rank{r}.pt", weights_only=False) for r in range(2))
    (budget,) = rank0["budget"]
    assert budget["budget"] is not None and budget["measured_at"] == 10  # the tiny config's warmup is shorter
    assert rank1["budget"] == rank0["budget"]
    assert rank0["global_step"] == rank1["global_step"] > budget["measured_at"]
    assert rank0["lr"] == rank1["lr"]
    for name, value in rank0["state_dict"].items():
        assert torch.equal(value, rank1["state_dict"][name]), f"{name} differs between ranks"
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == rank0["global_step"]


# --------------------------------------------------------------------------------------------- encoding
def test_torchrun_encode_writes_same_files_as_one_process(vqvae_ddp, tmp_path):
    from vqvae.plumbing.io import report_path_for

    root, run_dir = vqvae_ddp["root"], vqvae_ddp["run_dir"]
    labels = pd.read_csv(vqvae_ddp["labels"])
    (root / "broken.png").write_bytes(b"not a png")
    bad_rows = pd.DataFrame({"img_path": ["broken.png", "missing.png"], "text": ["bad", "gone"]})
    dataset = tmp_path / "labels.csv"
    pd.concat([labels.iloc[:5], bad_rows.iloc[:1], labels.iloc[5:], bad_rows.iloc[1:]]).assign(
        img_path=lambda f: [str(root / p) for p in f["img_path"]]).to_csv(dataset, index=False)
    args = [str(run_dir / "config.yaml"), str(run_dir / "checkpoints" / "last.ckpt"), "--dataset", str(dataset),
            "--batch-size", "2", "--num-workers", "0", "--repeats", "2", "--augment", "--no-progress"]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    run([sys.executable, "-m", "vqvae.encode", *args, "--output", str(one)], expect=1)  # 1: rows failed
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "vqvae.encode", *args, "--output", str(two)], expect=1)
    assert one.read_bytes() == two.read_bytes()
    assert len(pd.read_csv(one)) == 2 * len(labels)
    bad_one, bad_two = (report_path_for(p) for p in (one, two))
    assert bad_one.read_bytes() == bad_two.read_bytes()
    assert pd.read_csv(bad_one)["img_path"].str.endswith(("broken.png", "missing.png")).tolist() == [True, True]
    sidecars = [json.loads(Path(f"{p}.json").read_text()) for p in (one, two)]
    for sidecar in sidecars:
        sidecar.pop("command"), sidecar["counts"].pop("encode_seconds")
    assert sidecars[0] == sidecars[1]


# --------------------------------------------------------------------------------------------- GPT
def write_random_tokens(path: Path, texts: list[str], seed: int) -> Path:
    """A token CSV of random 1-2 row grids (16 codes, max_length 32) with its sidecar."""
    from vqvae.tokens import grid_to_string, write_sidecar

    rng = np.random.default_rng(seed)
    grids = [rng.integers(0, 16, (int(rng.integers(1, 3)), int(rng.integers(2, 8)))) for _ in texts]
    pd.DataFrame({"img_path": [f"{i}.png" for i in range(len(texts))], "text": texts,
                  "visual_tokens": [grid_to_string(g) for g in grids]}).to_csv(path, index=False)
    write_sidecar(path, {"fingerprint": "ddp-test", "num_codes": 16, "downsample": 8, "max_length": 32,
                         "command": "test"})
    return path


def test_gpt_ddp_trains_and_gathers_validation(tmp_path):
    from gpt.data import encode_frame, read_token_csvs
    from gpt.decoding import recognize
    from gpt.task import GPTTask

    train = write_random_tokens(tmp_path / "train.csv", WORDS * 2, seed=0)
    val = write_random_tokens(tmp_path / "val.csv", WORDS[:12], seed=1)
    run_dir, num_decoded = tmp_path / "run", 10
    run([sys.executable, "-m", "gpt.train", str(TINY_GPT), f"data.train={train}", f"data.val={val}",
         f"run_dir={run_dir}", "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu",
         "trainer.max_steps=2", "trainer.val_check_interval=2", f"validation.num_decode_samples={num_decoded}",
         "data.max_text_length=16", "model.gradient_checkpointing=true"])  # HF checkpointing must work with DDP
    task = GPTTask.from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert task.vocab.num_codes == 16 and task.max_visual_length == 32
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    # Each rank decoded its own shard (rows 0,2,4,.. and 1,3,5,..); the samples hold the first rows of both.
    samples = pd.read_csv(run_dir / "samples" / "val_step_2.csv", keep_default_na=False)
    assert samples["label"].tolist() == WORDS[:num_decoded]
    frame, _ = read_token_csvs([val], "val")
    prepared = encode_frame(frame, task.vocab, "image_first", task.max_visual_length, task.max_text_length,
                            False, "val")
    image_ids = prepared.dataset.ids[:num_decoded, :task.max_visual_length].long()
    predictions = [text for text, _ in recognize(task.model, task.vocab, image_ids, task.max_text_length)]
    assert samples["prediction"].tolist() == predictions  # each row decoded from its own image
    logged = last_metrics(run_dir)
    assert logged["val/accuracy"] == pytest.approx(float(np.mean([p == w for p, w in
                                                                   zip(predictions, WORDS)])), abs=1e-6)


# --------------------------------------------------------------------------------------------- helper
def _vqvae_with_rank_dumps(dump_dir: Path, argv: list[str]) -> int:
    """vqvae.train.main(argv) with a callback that observes each rank (runs in every rank's process)."""
    import pytorch_lightning as pl

    import vqvae.train as train
    from vqvae.plumbing.trainer import StepBudget

    class RankDump(pl.Callback):
        def setup(self, trainer, pl_module, stage):
            self.train_batches: list[list[list[int]]] = []
            self.val_indices: list[int] = []
            self.restarts = 0
            quantizer = pl_module.model.quantizer
            restart = quantizer._restart_dead_codes

            def counting_restart(vectors):  # observes the real restart, changes nothing
                restarted = restart(vectors)
                self.restarts += restarted
                return restarted

            quantizer._restart_dead_codes = counting_restart

        def on_train_epoch_start(self, trainer, pl_module):
            self.train_batches.append([])

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.train_batches[-1].append(batch[1].tolist())

        def on_validation_epoch_start(self, trainer, pl_module):
            self.val_indices = []

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            self.val_indices += batch[1].tolist()

        def on_train_end(self, trainer, pl_module):
            dump_dir.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}
            budget = [c.state_dict() for c in trainer.callbacks if isinstance(c, StepBudget)]
            torch.save({"state_dict": state, "train_batches": self.train_batches, "val_indices": self.val_indices,
                        "restarts": self.restarts, "global_step": trainer.global_step, "budget": budget,
                        "lr": trainer.optimizers[0].param_groups[0]["lr"]}, dump_dir / f"rank{trainer.global_rank}.pt")

    build_trainer = train.build_trainer
    train.build_trainer = lambda *args, **kwargs: build_trainer(*args, callbacks=[RankDump()], **kwargs)
    return train.main(argv)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "vqvae-ranks":
        sys.exit("usage: python -m tests.test_ddp vqvae-ranks DUMP_DIR CONFIG [key=value ...]")
    sys.exit(_vqvae_with_rank_dumps(Path(sys.argv[2]), sys.argv[3:]))
