"""GPU readiness.

Everywhere: no source file hard-codes a device, hardware comes from the configs, and every inference CLI
takes --device. With CUDA (skipped otherwise): tiny VQ-VAE and GPT trainings in bf16-mixed on one GPU,
encoding on the GPU against the CPU, and with two GPUs a DDP (NCCL) run and a torchrun encode.
"""
from __future__ import annotations

import importlib

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from tests.test_ddp import TINY_GPT, TINY_VQVAE, WORDS, render_dataset, run, write_random_tokens

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("vqvae", "gpt", "scripts") for p in (ROOT / folder).rglob("*.py"))
INFERENCE_CLIS = ["vqvae/encode.py", "vqvae/decode.py", "gpt/predict.py", "gpt/read.py", "gpt/evaluate.py",
                  "gpt/generate.py"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")


# --------------------------------------------------------------------------------------------- everywhere
def test_no_hard_coded_device():
    """Devices come from config (`trainer.accelerator`) or a --device flag, never from the code."""
    # `.cuda()`, "cuda:0", torch.device("cuda"), .to("cuda"...), device="cuda" as a default. Help texts
    # that list 'cuda:1' as an example value are fine.
    pattern = re.compile(r"\.cuda\(|['\"]cuda:0|torch\.device\(['\"]cuda['\"]\)|\.to\(['\"]cuda|device\s*=\s*['\"]cuda")
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in SOURCES for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, "hard-coded devices:\n" + "\n".join(offenders)


@pytest.mark.parametrize("module", INFERENCE_CLIS)
def test_inference_cli_takes_device(module, capsys):
    name = module.removesuffix(".py").replace("/", ".")
    with pytest.raises(SystemExit):
        importlib.import_module(name).parse_args(["--help"])
    assert "--device" in capsys.readouterr().out, f"{module} has no --device option"


@pytest.mark.parametrize("config", sorted((ROOT / "config").rglob("*.yaml")), ids=lambda p: p.name)
def test_config_sets_hardware(config):
    """Every training config says where it runs and in what precision (STYLE: hardware lives in YAML)."""
    trainer = OmegaConf.load(config).get("trainer")
    if trainer is None:  # not a training config
        pytest.skip(f"{config.name} has no trainer block")
    assert {"accelerator", "precision"} <= set(trainer), f"{config.name}: trainer lacks accelerator/precision"


# --------------------------------------------------------------------------------------------- one GPU
def vqvae_run(root: Path, *extra: str) -> tuple[Path, Path]:
    labels = render_dataset(root)
    run_dir = root / "run"
    run([sys.executable, "-m", "vqvae.train", str(TINY_VQVAE), f"data.train={labels}", f"data.val={labels}",
         f"run_dir={run_dir}", "trainer.accelerator=gpu", "trainer.precision=bf16-mixed", "trainer.max_steps=2",
         "trainer.val_check_interval=2", *extra])
    return labels, run_dir


@needs_cuda
def test_vqvae_trains_and_encodes_on_gpu(tmp_path):
    from vqvae.checkpoint import load_vqvae
    from vqvae.tokens import string_to_grid

    labels, run_dir = vqvae_run(tmp_path, "trainer.devices=1")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    model, _ = load_vqvae(run_dir / "config.yaml", checkpoint, map_location="cuda")
    assert next(model.parameters()).is_cuda
    outputs = {}
    for device in ("cuda", "cpu"):
        outputs[device] = tmp_path / f"{device}.csv"
        run([sys.executable, "-m", "vqvae.encode", str(run_dir / "config.yaml"), str(checkpoint), "--dataset",
             str(labels), "--output", str(outputs[device]), "--device", device, "--no-progress"])
    grids = {d: [string_to_grid(s) for s in pd.read_csv(p)["visual_tokens"]] for d, p in outputs.items()}
    assert [g.shape for g in grids["cuda"]] == [g.shape for g in grids["cpu"]]
    # CUDA encodes under bf16 autocast (vqvae.data), which moves near-tie codes; most must agree.
    agreement = np.mean(np.concatenate([(a == b).ravel() for a, b in zip(grids["cuda"], grids["cpu"])]))
    assert agreement > 0.75, f"only {agreement:.0%} of codes agree between CUDA and CPU"


@needs_cuda
def test_gpt_trains_on_gpu(tmp_path):
    from gpt.task import GPTTask

    train = write_random_tokens(tmp_path / "train.csv", WORDS * 2, seed=0)
    val = write_random_tokens(tmp_path / "val.csv", WORDS[:8], seed=1)
    run_dir = tmp_path / "run"
    run([sys.executable, "-m", "gpt.train", str(TINY_GPT), f"data.train={train}", f"data.val={val}",
         f"run_dir={run_dir}", "data.max_text_length=16", "trainer.accelerator=gpu", "trainer.devices=1",
         "trainer.precision=bf16-mixed", "trainer.max_steps=2", "trainer.val_check_interval=2",
         "model.gradient_checkpointing=true"])
    task = GPTTask.from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cuda")
    assert next(task.model.parameters()).is_cuda
    samples = pd.read_csv(run_dir / "samples" / "val_step_2.csv", keep_default_na=False)
    assert samples["label"].tolist() == WORDS[:8]


# --------------------------------------------------------------------------------------------- two GPUs
@needs_two_gpus
def test_ddp_on_two_gpus(tmp_path):
    from vqvae.checkpoint import load_vqvae

    _, run_dir = vqvae_run(tmp_path, "trainer.devices=2", "trainer.strategy=ddp")
    model, _ = load_vqvae(run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt")
    assert model.num_codes == 16


@needs_two_gpus
def test_torchrun_encode_on_two_gpus_matches_one(tmp_path):
    labels, run_dir = vqvae_run(tmp_path, "trainer.devices=1")
    args = [str(run_dir / "config.yaml"), str(run_dir / "checkpoints" / "last.ckpt"), "--dataset", str(labels),
            "--batch-size", "2", "--device", "cuda", "--no-progress"]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    run([sys.executable, "-m", "vqvae.encode", *args, "--output", str(one)])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "vqvae.encode", *args, "--output", str(two)])
    assert one.read_bytes() == two.read_bytes()
