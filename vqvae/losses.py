"""VQ-VAE training loss and reconstruction metrics (torch only; shared by the task and the tests)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vqvae.modeling import VQVAEOutput


class LossTerms(NamedTuple):
    total: Tensor  # scalar the optimiser minimises
    reconstruction: Tensor  # scalar, L1 or L2 per pixel
    edge: Tensor  # scalar, L1 between image gradients (0 when edge_weight is 0)
    quant: Tensor  # scalar, the quantizer's weighted codebook + commitment loss


def image_gradients(images: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences of (B, C, H, W): dx (B, C, H, W-1) and dy (B, C, H-1, W)."""
    return images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]


def vqvae_loss_terms(out: VQVAEOutput, images: Tensor, reconstruction: str = "l1",
                     edge_weight: float = 0.0) -> LossTerms:
    """Loss of a forward pass on `images` (B, 3, H, W) in [-1, 1], term by term.

    The pixel terms run in float32 so bf16 autocast does not round away small errors.
    """
    if reconstruction not in ("l1", "l2"):
        raise ValueError(f"loss.reconstruction={reconstruction!r} is not one of 'l1', 'l2'")
    recon, target = out.reconstruction.float(), images.float()
    pixel = F.l1_loss(recon, target) if reconstruction == "l1" else F.mse_loss(recon, target)
    if edge_weight > 0:
        (rx, ry), (tx, ty) = image_gradients(recon), image_gradients(target)
        edge = 0.5 * (F.l1_loss(rx, tx) + F.l1_loss(ry, ty))
    else:
        edge = pixel.new_zeros(())
    total = pixel + edge_weight * edge + out.quant_loss
    return LossTerms(total, pixel, edge, out.quant_loss)


def vqvae_loss(out: VQVAEOutput, images: Tensor, reconstruction: str = "l1", edge_weight: float = 0.0) -> Tensor:
    """Scalar training loss: reconstruction + edge_weight * edge + quantizer loss."""
    return vqvae_loss_terms(out, images, reconstruction, edge_weight).total


def psnr(reconstruction: Tensor, images: Tensor) -> Tensor:
    """Per-image PSNR in dB (B,) of images in [-1, 1] (peak-to-peak range 2, i.e. 255 on the 0-255 scale)."""
    mse = (reconstruction.float() - images.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(4.0 / mse.clamp(min=1e-10))
