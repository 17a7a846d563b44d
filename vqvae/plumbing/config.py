"""The one config loader of every command: typed schema + YAML (or a saved mapping) + `key=value` overrides.

Each command defines its own top-level dataclass (e.g. `VQVAEConfig`) that holds a `TrainerConfig`
and a `LoggerConfig` from here; `load_config` merges YAML and overrides onto that schema, so a
misspelt key fails at start-up instead of being added silently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ConfigTypeError, ValidationError

T = TypeVar("T")


@dataclass
class TrainerConfig:
    """Passed through to `pytorch_lightning.Trainer`; hardware lives here, never in Python."""
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: int = -1
    max_epochs: Optional[int] = None
    max_time: Optional[str] = None  # "DD:HH:MM:SS"; stops cleanly and keeps last.ckpt
    val_check_interval: Any = 1.0
    check_val_every_n_epoch: Optional[int] = 1
    log_every_n_steps: int = 50
    gradient_clip_val: Optional[float] = None
    accumulate_grad_batches: int = 1
    limit_val_batches: Any = 1.0
    num_sanity_val_steps: int = 0
    enable_progress_bar: bool = True
    deterministic: Any = False


@dataclass
class LoggerConfig:
    """`kind`: wandb (offline unless `online`), csv or tensorboard."""
    kind: str = "csv"
    project: str = "inverse-dalle-ocr"
    name: Optional[str] = None
    online: bool = False


def load_config(schema: type[T], source: str | os.PathLike | Mapping[str, Any],
                overrides: Sequence[str] | None = None, may_stay_unset: Iterable[str] = ()) -> T:
    """The one config loader: `source` (a YAML path, or a mapping such as a checkpoint's saved config) and
    dotlist `overrides` merged onto the dataclass `schema`.

    Unknown keys and wrong types are ValueErrors naming them. A required key (`???` in YAML, `MISSING` in a
    schema: the one way to mark one) left unset is a ValueError naming it and the fix, unless it is listed in
    `may_stay_unset` (e.g. the data paths of a config loaded for inference). Returns an OmegaConf object
    typed as `schema` (attribute access).
    """
    if isinstance(source, Mapping):
        where, values = "the saved config", OmegaConf.create(dict(source))
        hint = "it was written by another version of this project"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config {str(path)!r} does not exist; see config/ for examples")
        where, values, hint = f"config {path}", OmegaConf.load(path), "see config/ for examples"
    overrides = list(overrides or [])
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), values, OmegaConf.from_dotlist(overrides))
    except (ConfigKeyError, ConfigTypeError, ValidationError) as error:
        raise ValueError(f"{where} with overrides {overrides} does not fit {schema.__name__} ({error}); "
                         f"{hint}") from None
    missing = sorted(set(OmegaConf.missing_keys(merged)) - set(may_stay_unset))
    if missing:
        raise ValueError(f"{where} leaves required keys unset: {missing}; set them in the YAML "
                         f"or on the command line, e.g. `{missing[0]}=VALUE`")
    return merged  # type: ignore[return-value]


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config (interpolations filled in) as YAML."""
    from vqvae.plumbing.io import atomic_path

    with atomic_path(path) as tmp:
        OmegaConf.save(OmegaConf.to_container(cfg, resolve=True), tmp)


def to_dict(cfg: Any) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
