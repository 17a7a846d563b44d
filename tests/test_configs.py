"""Every YAML in config/ loads into its schema (unknown keys would be errors)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vqvae.config import VQVAEConfig, load_vqvae_config
from vqvae.modeling import VQVAE
from vqvae.plumbing.config import load_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def schema_for(path: Path):
    """The dataclass a config file is read into."""
    name = path.stem
    if name.startswith("vqvae"):
        return VQVAEConfig
    if name.startswith("gpt") and "finetune" in name:
        return importlib.import_module("gpt.finetune").FinetuneConfig
    if name.startswith("gpt"):
        return importlib.import_module("gpt.config").GPTConfig
    raise AssertionError(f"{path}: no schema known for this config name; teach tests/test_configs.py")


def placeholder_overrides(schema, path: Path) -> list[str]:
    """`key=placeholder` for every `???` the YAML leaves to the command line (data paths, run_dir)."""
    merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))
    return [f"{key}=placeholder" for key in sorted(OmegaConf.missing_keys(merged))]


def test_there_are_configs():
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS}
    assert {"tiny/vqvae.yaml", "tiny/gpt2.yaml", "tiny/gpt2-finetune.yaml", "vqvae-demo.yaml", "vqvae-bench.yaml",
            "vqvae-f16-16384.yaml", "gpt2-base.yaml", "gpt2-base-finetune.yaml", "gpt2-demo.yaml",
            "gpt2-demo-finetune.yaml", "gpt2-bench.yaml", "gpt2-bench-finetune.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_config_loads_into_its_schema(path: Path):
    schema = schema_for(path)
    cfg = load_config(schema, path, placeholder_overrides(schema, path))
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # interpolations resolve too
    if schema is VQVAEConfig:
        # The architecture is consistent (downsample vs channel levels) without building big weights.
        levels = len(cfg.model.channel_multipliers)
        assert 2 ** (levels - 1) == cfg.model.downsample, path
        assert cfg.model.downsample in (8, 16)


def test_tiny_vqvae_builds_small():
    cfg = load_vqvae_config(CONFIG_DIR / "tiny" / "vqvae.yaml", ["data.train=x", "data.val=x", "run_dir=x"])
    assert sum(p.numel() for p in VQVAE(cfg.model).parameters()) < 20_000


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match="num_cods"):
        load_vqvae_config(CONFIG_DIR / "tiny" / "vqvae.yaml", ["model.num_cods=8"])


def test_missing_required_key_is_named():
    with pytest.raises(ValueError, match=r"data\.train"):
        load_vqvae_config(CONFIG_DIR / "tiny" / "vqvae.yaml", ["data.val=x"])
