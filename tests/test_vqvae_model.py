"""VQ-VAE model and loss: shapes, round trips, determinism, learning, dead-code restarts (no Lightning)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vqvae.config import ModelConfig
from vqvae.losses import psnr, vqvae_loss, vqvae_loss_terms
from vqvae.modeling import VQVAE, FactorizedQuantizer, histogram_perplexity

# 16x downsampling, ~12k params: a forward pass on a few 32x48 images takes milliseconds.
TINY = ModelConfig(num_codes=16, code_dim=4, downsample=16, hidden_channels=4, channel_multipliers=[1, 1, 1, 2, 2],
                   num_res_blocks=1, norm_groups=4, dead_code_steps=20)


def rand_images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape) * 2 - 1


def block_images(num_images: int, rows: int, cols: int, cell: int, seed: int = 0) -> torch.Tensor:
    """Images made of flat-coloured cell x cell squares: learnable exactly by one code per square."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.rand(num_images, 3, rows, cols, generator=generator) * 2 - 1
    return colours.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)


def test_encode_shape_range_dtype():
    code_ids = VQVAE(TINY).eval().encode(rand_images(2, 3, 32, 48))
    assert code_ids.shape == (2, 2, 3) and code_ids.dtype == torch.long
    assert 0 <= code_ids.min() and code_ids.max() < TINY.num_codes


def test_decode_shape_and_range():
    model = VQVAE(TINY).eval()
    images = model.decode(torch.randint(0, TINY.num_codes, (3, 1, 4)))
    assert images.shape == (3, 3, 16, 64) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1


def test_decode_of_encode_matches_forward():
    model, x = VQVAE(TINY).eval(), rand_images(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(model.encode(x), out.code_ids)
        torch.testing.assert_close(model.decode(model.encode(x)), out.reconstruction)


def test_same_seed_same_output():
    x, outs = rand_images(2, 3, 32, 32), []
    for _ in range(2):
        torch.manual_seed(0)
        outs.append(VQVAE(TINY)(x).reconstruction)
    torch.testing.assert_close(*outs)


def test_bf16_autocast_is_finite_and_lookup_stays_float32():
    model, x = VQVAE(TINY).eval(), rand_images(2, 3, 32, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        code_ids = model.encode(x)
    assert torch.isfinite(out.reconstruction.float()).all() and torch.isfinite(out.quant_loss)
    assert out.quant_loss.dtype == torch.float32 and code_ids.dtype == torch.long


def test_overfits_one_batch():  # plain loop: the model needs no Lightning
    torch.manual_seed(0)
    model, x = VQVAE(TINY), block_images(4, 2, 2, 16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = vqvae_loss(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])


def test_loss_terms_and_edge_term():
    model, x = VQVAE(TINY), block_images(2, 2, 2, 16)
    out = model(x)
    plain, with_edge = vqvae_loss_terms(out, x), vqvae_loss_terms(out, x, "l2", edge_weight=1.0)
    assert plain.edge == 0 and with_edge.edge > 0
    torch.testing.assert_close(plain.total, plain.reconstruction + out.quant_loss)
    torch.testing.assert_close(with_edge.reconstruction, F.mse_loss(out.reconstruction, x))
    with pytest.raises(ValueError, match="'l3'"):
        vqvae_loss_terms(out, x, "l3")


def test_psnr():
    x = rand_images(2, 3, 8, 8)
    assert psnr(x, x).min() > 90
    # An error of 2/255 on the [-1, 1] scale is 1 grey level: 20*log10(255) = 48.13 dB.
    torch.testing.assert_close(psnr(x + 2 / 255, x), torch.full((2,), 48.13), atol=0.01, rtol=0)


def test_bad_image_size_message():
    with pytest.raises(ValueError, match="divisible by 16"):
        VQVAE(TINY).encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        VQVAE(TINY).encode(torch.zeros(3, 32, 32))


def test_bad_config_and_bad_ids_messages():
    with pytest.raises(ValueError, match="channel_multipliers"):
        VQVAE(ModelConfig(downsample=8, channel_multipliers=[1, 1, 2, 2, 4]))
    with pytest.raises(ValueError, match="another VQ-VAE"):
        VQVAE(TINY).decode(torch.full((1, 1, 2), TINY.num_codes))


def test_encode_has_no_side_effects_in_training_mode():
    model = VQVAE(TINY).train()
    before = model.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    model.encode(rand_images(2, 3, 32, 32))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)


def test_histogram_perplexity():
    assert histogram_perplexity(torch.tensor([5, 0, 0, 0])).item() == pytest.approx(1.0)
    assert histogram_perplexity(torch.tensor([3, 3, 3, 3])).item() == pytest.approx(4.0)


def clustered_quantizer(dead_code_steps: int) -> FactorizedQuantizer:
    """64 codes all pointing (almost) the same way: only a handful win any lookup."""
    torch.manual_seed(0)
    quantizer = FactorizedQuantizer(64, 4, dead_code_steps=dead_code_steps)
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([1.0, 0, 0, 0]) + 0.01 * torch.randn(64, 4))
    return quantizer


@pytest.mark.parametrize("dead_code_steps", [0, 5])
def test_dead_code_restart_revives_codes(dead_code_steps):
    quantizer = clustered_quantizer(dead_code_steps)
    generator = torch.Generator().manual_seed(1)
    probe = torch.randn(1, 4, 32, 32, generator=generator)  # directions all over the sphere
    used_before = quantizer.eval().code_ids(probe).unique().numel()
    quantizer.train()
    for _ in range(dead_code_steps + 2):
        quantizer(torch.randn(1, 4, 32, 32, generator=generator))
    used_after = quantizer.eval().code_ids(probe).unique().numel()
    if dead_code_steps == 0:
        assert used_after == used_before  # restarts disabled: nothing moves without an optimiser
    else:
        assert used_before <= 16 and used_after >= 56, (used_before, used_after)
        assert (quantizer.steps_unused <= dead_code_steps).all()


def test_quantizer_gradients_reach_encoder_and_codebook():
    quantizer = FactorizedQuantizer(16, 4, dead_code_steps=0).train()
    latents = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(latents)
    (out.quantized.sum() + out.loss).backward()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
    assert quantizer.codebook.weight.grad.abs().sum() > 0
