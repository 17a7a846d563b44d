"""Typed schema of a VQ-VAE training run: model, data, optimiser, trainer, logger.

`load_vqvae_config("config/vqvae-demo.yaml", ["model.num_codes=512"])` merges YAML and `key=value`
overrides onto `VQVAEConfig`; a misspelt key is an error at start-up, never a silently added key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from omegaconf import MISSING

from vqvae.plumbing.config import LoggerConfig, TrainerConfig, load_config
from vqvae.templates import LINE_CODES


@dataclass
class ModelConfig:
    """Architecture of `vqvae.modeling.VQVAE`.

    The encoder has one resolution level per entry of `channel_multipliers` (hidden_channels * m
    channels) and halves the resolution between levels, so `downsample` must equal
    2 ** (len(channel_multipliers) - 1).
    """
    num_codes: int = 16384
    code_dim: int = 32  # factorized lookup: codes live in a small, l2-normalised space (cosine lookup)
    downsample: int = 16  # f: one code covers f x f pixels; 8 or 16
    # Codes across a line of text: the strips it encodes are line_codes * f pixels thick (DESIGN §2). Part of the
    # model, like f, since its codes mean that scale; folders saved before the key existed were trained with 4.
    line_codes: int = LINE_CODES
    in_channels: int = 3
    hidden_channels: int = 128
    # The encoder's hidden_channels when narrower than the decoder's: a distilled encoder (`distill_from`), which
    # picks the same codes at a fraction of the cost. None: hidden_channels.
    encoder_channels: Optional[int] = None
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    norm_groups: int = 32  # GroupNorm groups; each layer uses gcd(norm_groups, channels) so any width works
    commitment_weight: float = 0.25  # beta in ||z - sg(q)||^2, pulls encoder outputs toward their codes
    codebook_weight: float = 1.0  # weight of ||sg(z) - q||^2, moves codes toward encoder outputs
    dead_code_steps: int = 200  # restart a code unused for this many training steps; 0 disables


@dataclass
class DataConfig:
    """Labelled CSVs (`img_path,text`); images are fitted to aspect-ratio templates of `max_length`
    tokens (vqvae.templates), so training sees exactly the shapes `vqvae.encode` feeds the model."""
    train: str = MISSING
    val: str = MISSING
    max_length: int = 128  # tokens per image, one <row> token per row included (DESIGN section 2)
    batch_size: int = 32
    val_batch_size: Optional[int] = None  # None: same as batch_size
    num_workers: int = 2
    augment: bool = False  # random scale/shift/colour/blur/noise on training crops (never on validation)
    # Reconstruct each crop's clean target (the CSV's target_path column: `render_text --clean-targets`), its
    # glyphs black on white, instead of the crop: codes spent on the text, not on its background and noise.
    clean_target: bool = False


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `min_lr_ratio * lr`."""
    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.01  # not applied to norms, biases and the codebook
    warmup_steps: int = 500
    decay_steps: Optional[int] = None  # None: trainer.max_steps (constant after warmup when that is -1)
    min_lr_ratio: float = 0.1


@dataclass
class LossConfig:
    """Reconstruction (L1 or L2) + optional edge term + the quantizer's loss."""
    reconstruction: str = "l1"  # "l1" or "l2"
    edge_weight: float = 0.0  # L1 between image gradients (dx, dy) of reconstruction and input; sharpens strokes


@dataclass
class VQVAEConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    run_dir: str = MISSING
    seed: int = 42
    resume_from: Optional[str] = "auto"  # "auto": run_dir/checkpoints/last.ckpt if present; "never"; or a path
    # Weights to start a new run from (not its optimizer or step): a VQ-VAE folder, e.g. a published model's
    # vqvae/, or a checkpoint of the same model config. Ignored when the run resumes.
    init_from: Optional[str] = None
    # A VQ-VAE folder whose encoder this run distils into one of model.encoder_channels (vqvae.distill): its codebook
    # and decoder are copied and frozen, its other model keys taken over, and data.train / data.val are token CSVs
    # of it, whose codes the new encoder learns to pick. The run's VQ-VAE reads and draws the same codes. With
    # init_from (a distilled VQ-VAE folder of the same width) the encoder goes on from that one.
    distill_from: Optional[str] = None
    num_sample_images: int = 32  # originals vs reconstructions saved per validation (at most 64)


def load_vqvae_config(source: str | os.PathLike | Mapping[str, Any], overrides: Optional[list[str]] = None,
                      may_stay_unset: tuple[str, ...] = ()) -> VQVAEConfig:
    """`vqvae.plumbing.config.load_config` onto VQVAEConfig: a YAML path or a checkpoint's saved dict, plus
    dotlist `overrides`; unknown keys raise ValueError."""
    return load_config(VQVAEConfig, source, overrides, may_stay_unset)
