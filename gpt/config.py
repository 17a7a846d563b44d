"""Typed config of the GPT training commands (`python -m gpt.train CONFIG [key=value ...]`).

Loaded with `vqvae.plumbing.config.load_config(GPTConfig, path, overrides)`: unknown keys are errors and `???`
values must be given.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf

from vqvae.plumbing.config import LoggerConfig, TrainerConfig, load_config


@dataclass
class DataConfig:
    # Token CSVs (DESIGN §1): one path, a list, or comma-separated paths.
    train: Any = MISSING
    val: Any = MISSING
    # Image-part length; None takes the encoder's `max_length` from the training CSV's sidecar.
    max_visual_length: Optional[int] = None
    # Text-part length: <s> + up to max_text_length - 2 characters + </s>.
    max_text_length: int = 32
    batch_size: int = 32
    num_workers: int = 0
    # Optional file of characters always in the charset (a charset.json or a UTF-8 text file whose
    # characters, newlines excepted, are all added), so a model can emit characters absent from the data.
    base_charset: Optional[str] = None
    # Rows whose label or grid does not fit: error (false) or skip and list in run_dir/skipped.csv (true).
    skip_too_long: bool = False


@dataclass
class ModelConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    gradient_checkpointing: bool = False


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    # Cosine decay from lr to lr * min_lr_ratio over `decay_steps` optimizer steps (None: the
    # trainer's estimate from max_steps / max_epochs).
    min_lr_ratio: float = 0.1
    decay_steps: Optional[int] = None
    # The optimizer of the blocks' weight matrices: adamw (every parameter), or muon (Muon on them,
    # AdamW on the rest, one lr: vqvae.plumbing.optim.MuonAdamW).
    matrices: str = "adamw"


@dataclass
class LossConfig:
    image_weight: float = 1.0
    text_weight: float = 1.0


@dataclass
class ValidationConfig:
    # Rows of the validation set read by greedy decoding at each validation (image_first only);
    # 0 turns decoding off (then best.ckpt follows val/loss).
    num_decode_samples: int = 256
    decode_batch_size: int = 64


@dataclass
class GPTConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    # "image_first": recognition (image part, then text). "text_first": generation (text, then image).
    order: str = "image_first"
    # A recognition export folder to start from (fine-tuning); its charset and weights are reused.
    init_from: Optional[str] = None
    run_dir: str = MISSING
    seed: int = 0
    # "auto": resume run_dir/checkpoints/last.ckpt if it exists; "never"; or a .ckpt path.
    resume_from: Optional[str] = "auto"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def path_list(value: Any) -> list[str]:
    """A config path value (str, comma-separated str, or list) -> list of non-empty paths."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


@dataclass
class SamplesConfig:
    """Images drawn for fixed prompts while training (run_dir/samples/step_NNNNNN.png)."""
    prompts: list[str] = field(default_factory=list)
    every_n_steps: int = 500  # 0: only at the end of training
    num_candidates: int = 2
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class FinetuneConfig(GPTConfig):
    order: str = "text_first"
    init_from: Optional[str] = MISSING  # a recognition export (python -m gpt.export)
    # The image part is what this model is for; its loss counts 4x the text part's (the prompt's own LM).
    loss: LossConfig = field(default_factory=lambda: LossConfig(image_weight=4.0, text_weight=1.0))
    # Share of training rows whose prompt becomes the empty text (for classifier-free guidance).
    cond_dropout: float = 0.1
    samples: SamplesConfig = field(default_factory=SamplesConfig)


def gpt_config_view(cfg: Any) -> GPTConfig:
    """The GPTConfig part of a FinetuneConfig (GPTTask and gpt.train take the GPTConfig schema only)."""
    keys = {f.name for f in dataclasses.fields(GPTConfig)}
    values = {key: value for key, value in OmegaConf.to_container(cfg, resolve=True).items() if key in keys}
    return load_config(GPTConfig, values)
