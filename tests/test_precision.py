"""Training precision: bf16 where the hardware computes it, 32-true on a CPU that would emulate it."""
import pytest

from omegaconf import OmegaConf

from vqvae.plumbing import trainer
from vqvae.plumbing.config import LoggerConfig, TrainerConfig


@pytest.mark.parametrize("native, accelerator, asked, expected", [
    (False, "cpu", "bf16-mixed", "32-true"),   # emulated bf16: a training step 7.7x slower on an AVX2 CPU
    (False, "cpu", "bf16-true", "32-true"),
    (False, "cpu", "32-true", "32-true"),
    (True, "cpu", "bf16-mixed", "bf16-mixed"),   # native bf16 (avx512_bf16, AMX): kept
    (False, "gpu", "bf16-mixed", "bf16-mixed"),  # a GPU's bf16 does not depend on the CPU
])
def test_bf16_only_where_the_cpu_computes_it(monkeypatch, native, accelerator, asked, expected):
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: native)
    assert trainer.trainable_precision(asked, accelerator) == expected


def test_the_trainer_gets_the_resolved_precision(monkeypatch, tmp_path):
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: False)
    config = OmegaConf.structured(TrainerConfig(accelerator="cpu", precision="bf16-mixed", max_steps=1))
    built = trainer.build_trainer(config, OmegaConf.structured(LoggerConfig(kind="csv")), tmp_path)
    assert built.precision == "32-true"
