"""Loading a trained VQ-VAE for inference, its fingerprint, and the portable folder a GPT export carries.

Two on-disk forms:
- a Lightning checkpoint from `python -m vqvae.train` + the YAML config it was trained with
  (`load_vqvae(config, ckpt)`);
- a folder `config.json` + `model.safetensors` (`save_vqvae_dir` / `load_vqvae_dir`), which needs no
  Lightning and no project config, used inside GPT exports (subfolder `vqvae/`).

The fingerprint is what token sidecars and GPT checkpoints record, so tokens from one VQ-VAE are never
read with another (DESIGN §1).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from vqvae.config import ModelConfig, VQVAEConfig, load_vqvae_config
from vqvae.plumbing.io import atomic_path, write_json_atomic
from vqvae.modeling import VQVAE
from vqvae.templates import LINE_CODES

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


def fingerprint(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> str:
    """Stable 16-hex-digit hash of a model's weights, as stored in `dtype` (what `save_vqvae_dir(..., dtype)`
    keeps of them).

    sha256 over the floating-point entries of the state dict in sorted key order (name, shape, float32
    bytes). Integer bookkeeping buffers (e.g. the quantizer's `steps_unused` counters) are left out: they
    change during training without changing what the model encodes. Independent of device and of the
    process; equal for a model loaded from a checkpoint and from `save_vqvae_dir`. A strip thickness other than
    the default (`line_codes`, DESIGN §2) is hashed too: the same weights on 6-code strips make other token grids,
    which a GPT of 4-code strips must not take for its own (default-thickness fingerprints are unchanged).
    """
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name]
        if not torch.is_floating_point(tensor):
            continue
        array = tensor.detach().to("cpu", dtype).to(torch.float32).contiguous().numpy()
        digest.update(name.encode("utf-8"))
        digest.update(str(tuple(array.shape)).encode("ascii"))
        digest.update(np.ascontiguousarray(array).tobytes())
    line_codes = getattr(model, "line_codes", LINE_CODES)
    if line_codes != LINE_CODES:
        digest.update(f"line_codes={line_codes}".encode("ascii"))
    return digest.hexdigest()[:16]


def model_config_dict(model_cfg: Any) -> dict[str, Any]:
    """A ModelConfig (dataclass or OmegaConf node) as a plain dict."""
    if isinstance(model_cfg, DictConfig):
        return OmegaConf.to_container(model_cfg, resolve=True)  # type: ignore[return-value]
    if dataclasses.is_dataclass(model_cfg):
        return dataclasses.asdict(model_cfg)
    return dict(model_cfg)


def build_model_config(values: Mapping[str, Any], where: str) -> ModelConfig:
    """ModelConfig from a plain dict, refusing keys the schema does not know (names them and `where`)."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where} has model keys {unknown} that ModelConfig does not know; it was written by "
                         f"another version of this project (known keys: {sorted(known)})")
    return ModelConfig(**values)


def load_inference_config(config_path: str | os.PathLike) -> VQVAEConfig:
    """A training config for inference: the data paths and the run folder may stay unset (encoding needs
    none of them); every other check of the config loader (unknown keys, types) still applies."""
    return load_vqvae_config(config_path, may_stay_unset=("data.train", "data.val", "run_dir"))


def _find_model_config(obj: Any, depth: int = 0) -> dict[str, Any] | None:
    """The model hyperparameters saved in a checkpoint, wherever the task put them (a mapping holding
    `num_codes` and `downsample`)."""
    if depth > 4:
        return None
    if isinstance(obj, DictConfig):
        obj = OmegaConf.to_container(obj, resolve=True)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        if "num_codes" in obj and "downsample" in obj:
            return dict(obj)
        for key in ("model", "cfg", "config"):  # the likely places first
            if key in obj:
                found = _find_model_config(obj[key], depth + 1)
                if found is not None:
                    return found
        for value in obj.values():
            found = _find_model_config(value, depth + 1)
            if found is not None:
                return found
    return None


def _model_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The VQVAE state dict inside a Lightning checkpoint (`model.` prefix of VQVAETask stripped) or a
    bare state dict."""
    state = checkpoint.get("state_dict", checkpoint)
    if any(key.startswith("model.") for key in state):
        return {key[len("model."):]: value for key, value in state.items() if key.startswith("model.")}
    return dict(state)


def _state_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    expected = model.state_dict()
    problems = [f"{key}: missing from the checkpoint" for key in sorted(set(expected) - set(state))]
    problems += [f"{key}: not in the model" for key in sorted(set(state) - set(expected))]
    problems += [f"{key}: checkpoint {tuple(state[key].shape)} vs config {tuple(expected[key].shape)}"
                 for key in sorted(set(expected) & set(state)) if state[key].shape != expected[key].shape]
    return problems


def load_vqvae(config_path: str | os.PathLike, checkpoint_path: str | os.PathLike,
               map_location: str | torch.device = "cpu") -> tuple[VQVAE, VQVAEConfig]:
    """A trained VQVAE in eval mode, and its config, from a training config and a checkpoint.

    `checkpoint_path` is a Lightning checkpoint from `python -m vqvae.train` (or a bare state dict, or a
    `save_vqvae_dir` folder). Raises FileNotFoundError for a missing file and ValueError naming both files
    and the differing keys when the checkpoint was trained with another model config.
    """
    config_path, checkpoint_path = Path(config_path), Path(checkpoint_path)
    cfg = load_inference_config(config_path)
    model_cfg = build_model_config(model_config_dict(cfg.model), str(config_path))
    if checkpoint_path.is_dir():
        model = load_vqvae_dir(checkpoint_path, map_location)
        saved = read_vqvae_dir_config(checkpoint_path)["model"]
        _check_same_hyperparameters(model_config_dict(model_cfg), saved, config_path, checkpoint_path)
        return model, cfg
    if not checkpoint_path.is_file():
        raise FileNotFoundError(f"checkpoint {str(checkpoint_path)!r} does not exist; `python -m vqvae.train "
                                f"{config_path}` writes run_dir/checkpoints/last.ckpt and best.ckpt")
    try:
        checkpoint = torch.load(checkpoint_path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(f"checkpoint {str(checkpoint_path)!r} could not be read ({type(error).__name__}: "
                         f"{error}); is it a .ckpt written by `python -m vqvae.train`?") from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"checkpoint {str(checkpoint_path)!r} holds a {type(checkpoint).__name__}, not a "
                         f"Lightning checkpoint or a state dict")
    saved = _find_model_config(checkpoint.get("hyper_parameters", {}))
    if saved is not None:
        _check_same_hyperparameters(model_config_dict(model_cfg), saved, config_path, checkpoint_path)
    model = VQVAE(model_cfg)
    state = _model_state(checkpoint)
    problems = _state_mismatch(model, state)
    if problems:
        raise ValueError(_mismatch_message(config_path, checkpoint_path, problems))
    model.load_state_dict(state)
    return model.to(map_location).eval(), cfg


def init_weights(model: VQVAE, source: str | os.PathLike) -> None:
    """Load the weights of `source` (a `save_vqvae_dir` folder, e.g. a published model's vqvae/, or a checkpoint
    of `python -m vqvae.train`) into `model` (the `init_from` of a new run). ValueError naming what differs
    when `source` holds another architecture."""
    source = Path(source)
    if source.is_dir():
        state = load_vqvae_dir(source).state_dict()
    elif source.is_file():
        state = _model_state(torch.load(source, map_location="cpu", weights_only=False))
    else:
        raise FileNotFoundError(f"init_from={str(source)!r} does not exist: give a VQ-VAE folder (config.json + "
                                f"model.safetensors, e.g. resources/models/ocr-ko-en/vqvae) or a .ckpt")
    problems = _state_mismatch(model, state)
    if problems:
        raise ValueError(f"init_from={str(source)!r} holds another architecture than this run's model config: "
                         + "; ".join(problems[:8]) + ": set the run's model.* keys to the source's")
    model.load_state_dict(state)


# Keys that change training only; a checkpoint may differ from the config in these and still load.
_TRAINING_ONLY_KEYS = {"commitment_weight", "codebook_weight", "dead_code_steps"}


def _check_same_hyperparameters(expected: Mapping[str, Any], saved: Mapping[str, Any], config_path: Path,
                                checkpoint_path: Path) -> None:
    # A key the checkpoint predates (line_codes) counts as its default, as the loaded model has it.
    defaults = dataclasses.asdict(ModelConfig())
    saved = {**{key: value for key, value in defaults.items() if key in expected}, **saved}
    differing = [f"model.{key}: config {expected.get(key)!r} vs checkpoint {saved.get(key)!r}"
                 for key in sorted(set(expected) | set(saved))
                 if key not in _TRAINING_ONLY_KEYS and expected.get(key) != saved.get(key)]
    if differing:
        raise ValueError(_mismatch_message(config_path, checkpoint_path, differing))


def _mismatch_message(config_path: Path, checkpoint_path: Path, problems: list[str]) -> str:
    shown = "; ".join(problems[:8]) + (f"; ... ({len(problems) - 8} more)" if len(problems) > 8 else "")
    return (f"checkpoint {str(checkpoint_path)!r} was not trained with config {str(config_path)!r}: {shown}. "
            f"Pass the config the checkpoint was trained with (its run_dir/config.yaml)")


def save_vqvae_dir(model: VQVAE, model_cfg: Any, directory: str | os.PathLike,
                   meta: Mapping[str, Any] | None = None, dtype: torch.dtype = torch.float32) -> None:
    """Write `directory/config.json` (model config, fingerprint, `meta` such as max_length) and
    `directory/model.safetensors`, atomically each; loadable with `load_vqvae_dir` and no Lightning.
    `dtype` torch.bfloat16 halves the file: the weights are rounded, so its codes may differ from the model's
    for a few images, and the fingerprint is the rounded weights' (`fingerprint(model, dtype)`)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to("cpu", dtype if torch.is_floating_point(value) else value.dtype)
             .contiguous().clone() for key, value in model.state_dict().items()}
    stored = fingerprint(model, dtype)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, tmp, metadata={"format": "vqvae", "fingerprint": stored})
    write_json_atomic({"format_version": FORMAT_VERSION, "model": model_config_dict(model_cfg),
                       "fingerprint": stored, **dict(meta or {})}, directory / CONFIG_NAME)


def read_vqvae_dir_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The `config.json` of a `save_vqvae_dir` folder: {"model": {...}, "fingerprint": ..., meta...}."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{str(directory)!r} is not a VQ-VAE folder: {CONFIG_NAME} is missing "
                                f"(write one with vqvae.checkpoint.save_vqvae_dir)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_vqvae_dir(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> VQVAE:
    """A VQVAE in eval mode from a `save_vqvae_dir` folder; ValueError if the weights do not match the
    fingerprint recorded beside them (a corrupted or swapped file)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_vqvae_dir_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"VQ-VAE folder {str(directory)!r} has {CONFIG_NAME} but no {WEIGHTS_NAME}")
    model = VQVAE(build_model_config(config["model"], str(directory / CONFIG_NAME)))
    state = load_file(str(weights), device="cpu")
    problems = _state_mismatch(model, state)
    if problems:
        raise ValueError(_mismatch_message(directory / CONFIG_NAME, weights, problems))
    model.load_state_dict(state)
    found = fingerprint(model)
    if config.get("fingerprint") not in (None, found):
        raise ValueError(f"{weights} has fingerprint {found!r} but {directory / CONFIG_NAME} records "
                         f"{config['fingerprint']!r}; the folder's files do not belong together")
    return model.to(map_location).eval()
