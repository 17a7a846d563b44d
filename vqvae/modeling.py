"""The VQ-VAE: residual conv encoder, factorized l2-normalised codebook, residual conv decoder.

Torch and einops only (no Lightning, no OmegaConf, no file I/O): `VQVAE(ModelConfig(...))` runs in a
notebook as it is. Images are float (B, 3, H, W) in [-1, 1] with H and W divisible by `downsample`;
code grids are int64 (B, H/f, W/f) with ids in [0, num_codes).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

if TYPE_CHECKING:  # only for the type hint: the config module pulls in OmegaConf
    from vqvae.config import ModelConfig

# Rows of encoder outputs compared with the whole codebook at once; bounds the (rows, num_codes)
# similarity matrix to 64 M floats (256 MB) for large codebooks and batches.
_LOOKUP_ELEMENTS = 1 << 26


class VQVAEOutput(NamedTuple):
    reconstruction: Tensor  # (B, 3, H, W) in [-1, 1]
    code_ids: Tensor  # (B, H/f, W/f) int64
    quant_loss: Tensor  # scalar: codebook + commitment terms, already weighted
    perplexity: Tensor  # scalar: exp(entropy) of this batch's code histogram, in [1, num_codes]


class QuantizerOutput(NamedTuple):
    quantized: Tensor  # (B, code_dim, h, w) unit vectors, straight-through gradient to the encoder
    code_ids: Tensor  # (B, h, w) int64
    loss: Tensor  # scalar
    perplexity: Tensor  # scalar


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    # gcd keeps any channel width legal (a tiny test model may have 4 channels, GroupNorm needs a divisor).
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3, twice, plus a (1x1-projected when widths differ) skip."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _group_norm(in_channels, norm_groups), nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _group_norm(out_channels, norm_groups), nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.block(x)


class Upsample(nn.Module):
    """Nearest x2 then conv3x3 (no checkerboard artefacts of transposed convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """(B, in_channels, H, W) -> (B, code_dim, H/f, W/f), not yet normalised."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        hidden = cfg.encoder_channels or cfg.hidden_channels
        widths = [hidden * m for m in cfg.channel_multipliers]
        groups = cfg.norm_groups
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)]
        channels = widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(channels, width, groups))
                channels = width
            if level < len(widths) - 1:
                layers.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))  # halves H and W
        layers += [ResBlock(channels, channels, groups), _group_norm(channels, groups), nn.SiLU(),
                   nn.Conv2d(channels, cfg.code_dim, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


class Decoder(nn.Module):
    """(B, code_dim, h, w) -> (B, in_channels, h*f, w*f), unbounded (VQVAE applies tanh)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = [cfg.hidden_channels * m for m in reversed(cfg.channel_multipliers)]
        groups = cfg.norm_groups
        channels = widths[0]
        layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, channels, 3, padding=1),
                                   ResBlock(channels, channels, groups)]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(channels, width, groups))
                channels = width
            if level < len(widths) - 1:
                layers.append(Upsample(channels))
        layers += [_group_norm(channels, groups), nn.SiLU(), nn.Conv2d(channels, cfg.in_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        return self.layers(latents)


class FactorizedQuantizer(nn.Module):
    """Nearest-code lookup by cosine similarity in a small (`code_dim`) l2-normalised space.

    Encoder outputs and codes are both unit vectors, so the nearest code is the argmax of a dot
    product and every code lies where encoder outputs can reach (the "factorized, l2-normalised"
    codebook of ViT-VQGAN), which keeps large codebooks in use. Codes unused for `dead_code_steps`
    training forward passes are restarted on random encoder outputs of the current batch.
    The lookup runs in float32 even under autocast: bf16 similarities would tie among close codes.
    """

    def __init__(self, num_codes: int, code_dim: int, commitment_weight: float = 0.25,
                 codebook_weight: float = 1.0, dead_code_steps: int = 200) -> None:
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        self.commitment_weight, self.codebook_weight = commitment_weight, codebook_weight
        self.dead_code_steps = dead_code_steps
        self.codebook = nn.Embedding(num_codes, code_dim)
        # Training forward passes since each code was last chosen (summed over DDP ranks).
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))

    def codes(self) -> Tensor:
        """(num_codes, code_dim) float32 unit vectors."""
        return F.normalize(self.codebook.weight.float(), dim=-1)

    def nearest(self, vectors: Tensor, codes: Tensor) -> Tensor:
        """(N, code_dim) unit vectors -> (N,) int64 ids of the most similar code."""
        chunk = max(1, _LOOKUP_ELEMENTS // codes.shape[0])
        return torch.cat([(part @ codes.t()).argmax(dim=-1) for part in vectors.split(chunk)])

    @staticmethod
    def unit_vectors(latents: Tensor) -> Tensor:
        """(B, code_dim, h, w) encoder outputs -> (B*h*w, code_dim) float32 unit vectors, cells in row-major order."""
        return F.normalize(rearrange(latents.float(), "b d h w -> (b h w) d"), dim=-1)

    def code_ids(self, latents: Tensor) -> Tensor:
        """(B, code_dim, h, w) encoder outputs -> (B, h, w) int64; no side effects."""
        B, _, h, w = latents.shape
        with torch.autocast(device_type=latents.device.type, enabled=False):
            return self.nearest(self.unit_vectors(latents), self.codes()).view(B, h, w)

    def embed(self, code_ids: Tensor) -> Tensor:
        """(B, h, w) int64 -> (B, code_dim, h, w) float32 unit vectors."""
        return rearrange(F.embedding(code_ids, self.codes()), "b h w d -> b d h w")

    def forward(self, latents: Tensor) -> QuantizerOutput:
        B, _, h, w = latents.shape
        with torch.autocast(device_type=latents.device.type, enabled=False):
            flat = self.unit_vectors(latents)  # (N, D)
            if self.training and self.dead_code_steps > 0:
                self._restart_dead_codes(flat.detach())
            codes = self.codes()
            code_ids = self.nearest(flat.detach(), codes)  # (N,)
            chosen = codes[code_ids]  # (N, D), carries the gradient to the codebook
            loss = (self.codebook_weight * F.mse_loss(chosen, flat.detach())
                    + self.commitment_weight * F.mse_loss(flat, chosen.detach()))
            quantized = flat + (chosen - flat).detach()  # straight-through: decoder grads reach the encoder
            counts = torch.bincount(code_ids, minlength=self.num_codes)
            if self.training and self.dead_code_steps > 0:
                counts = self._update_usage(counts)
            perplexity = histogram_perplexity(counts)
        quantized = rearrange(quantized, "(b h w) d -> b d h w", b=B, h=h, w=w)
        return QuantizerOutput(quantized, code_ids.view(B, h, w), loss, perplexity)

    @torch.no_grad()
    def _update_usage(self, counts: Tensor) -> Tensor:
        # Summed over ranks, so every rank holds identical counters and picks identical dead codes.
        if _distributed():
            counts = counts.clone()
            dist.all_reduce(counts)
        self.steps_unused += 1
        self.steps_unused[counts > 0] = 0
        return counts

    @torch.no_grad()
    def _restart_dead_codes(self, vectors: Tensor) -> int:
        """Move every code unused for `dead_code_steps` passes onto a random row of `vectors` (N, D).

        DDP-safe: the dead set is identical on all ranks (see _update_usage) and rank 0's choice of
        replacement vectors is broadcast. Returns the number of codes restarted.
        """
        dead = (self.steps_unused >= self.dead_code_steps).nonzero().squeeze(1)
        num_dead = int(dead.numel())
        if num_dead == 0:
            return 0
        picks = torch.randint(vectors.shape[0], (num_dead,), device=vectors.device)
        replacements = vectors[picks].contiguous()
        if _distributed():
            dist.broadcast(replacements, src=0)
        self.codebook.weight[dead] = replacements.to(self.codebook.weight.dtype)
        self.steps_unused[dead] = 0
        return num_dead


def histogram_perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) of a code histogram (num_codes,): 1 if one code is used, num_codes if all equally."""
    probs = counts.float() / counts.sum().clamp(min=1)
    return torch.exp(-(probs * torch.log(probs.clamp(min=1e-12))).sum())


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class VQVAE(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] <-> code grids (B, H/f, W/f) of ids in [0, num_codes)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        levels = len(cfg.channel_multipliers)
        if cfg.downsample < 2 or 2 ** (levels - 1) != cfg.downsample:
            raise ValueError(
                f"model.downsample={cfg.downsample} needs {int(math.log2(max(cfg.downsample, 1))) + 1} entries in "
                f"model.channel_multipliers (one resolution level per halving, plus the input level), got "
                f"{list(cfg.channel_multipliers)}; e.g. [1, 1, 2, 2] for 8, [1, 1, 2, 2, 4] for 16")
        if cfg.num_codes < 2 or cfg.code_dim < 1:
            raise ValueError(f"model.num_codes={cfg.num_codes} and model.code_dim={cfg.code_dim} must be >= 2 and >= 1")
        if cfg.encoder_channels is not None and cfg.encoder_channels < 1:
            raise ValueError(f"model.encoder_channels={cfg.encoder_channels} must be >= 1, or null for hidden_channels")
        if cfg.line_codes < 1:
            raise ValueError(f"model.line_codes={cfg.line_codes}: a strip needs at least one code across its line "
                             f"(4 by default, 6 in the shipped recognizer)")
        self.downsample: int = cfg.downsample
        self.line_codes: int = cfg.line_codes
        self.num_codes: int = cfg.num_codes
        self.code_dim: int = cfg.code_dim
        self.in_channels: int = cfg.in_channels
        self.encoder = Encoder(cfg)
        self.quantizer = FactorizedQuantizer(cfg.num_codes, cfg.code_dim, cfg.commitment_weight,
                                             cfg.codebook_weight, cfg.dead_code_steps)
        self.decoder = Decoder(cfg)

    def _check_images(self, images: Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"images must be (B, {self.in_channels}, H, W) floats in [-1, 1], got shape "
                             f"{tuple(images.shape)}")
        if images.shape[-1] % self.downsample or images.shape[-2] % self.downsample:
            raise ValueError(
                f"image size {tuple(images.shape[-2:])} must be divisible by {self.downsample}; "
                f"pad or resize (see vqvae.templates.fit_to_template)")

    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, H/f, W/f) int64 code ids; ValueError if H or W is not divisible by f."""
        self._check_images(images)
        return self.quantizer.code_ids(self.encoder(images))

    def decode(self, code_ids: Tensor) -> Tensor:
        """(B, h, w) int64 ids in [0, num_codes) -> (B, 3, h*f, w*f) images in [-1, 1]."""
        if code_ids.ndim != 3 or code_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"code_ids must be an integer (B, h, w) tensor, got {code_ids.dtype} of shape "
                             f"{tuple(code_ids.shape)}")
        if code_ids.numel() and (int(code_ids.min()) < 0 or int(code_ids.max()) >= self.num_codes):
            raise ValueError(f"code ids span [{int(code_ids.min())}, {int(code_ids.max())}] but this codebook "
                             f"has ids [0, {self.num_codes}); were the tokens made by another VQ-VAE?")
        return self._decode_latents(self.quantizer.embed(code_ids.long()))

    def _decode_latents(self, quantized: Tensor) -> Tensor:
        return torch.tanh(self.decoder(quantized))

    def forward(self, images: Tensor) -> VQVAEOutput:
        """Reconstruct images (B, 3, H, W) in [-1, 1]; in training mode also restarts dead codes."""
        self._check_images(images)
        quant = self.quantizer(self.encoder(images))
        return VQVAEOutput(self._decode_latents(quant.quantized), quant.code_ids, quant.loss, quant.perplexity)
