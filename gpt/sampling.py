"""Batched sampling of image parts with the Hugging Face KV cache (the generation hot path).

One forward pass per position for the whole batch: the prompt (a text part for the text-first model, or
just `<row>` for unconditional sampling from the image-first model) is run once, then one token a step
is fed back (`gpt.modeling.cached_step`). Only image ids (`<row>`, `<vpad>`, codes) can be drawn: a precomputed
additive mask removes the rest before temperature, top-k and top-p. A row that draws `<vpad>` is done
(the image ended); it is fed `<vpad>` from then on, so every row keeps the training layout, and the loop
stops as soon as every row is done or `max_visual_length` ids exist. Right after a `<row>` only a code
may follow, and the last position cannot open a row (training data never holds an empty row or an image
without codes), so every sample has codes to decode.

Randomness: the uniform numbers that pick each token are drawn up front, one row of them per candidate,
from a generator seeded with `seed`, and tokens are picked by inverse-CDF lookup. So a candidate's image
depends on its seed and its global index only, never on the batch size or on which rows share a batch.

Classifier-free guidance (optional, `guidance_scale` != 1): every batch also runs the unconditional
prompt (the text part of the empty string, which the fine-tuning shows the model with probability
`cond_dropout`) and mixes log-probabilities as uncond + scale * (cond - uncond).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from gpt.modeling import cached_step
from gpt.vocab import Vocab


@dataclass(frozen=True)
class SamplingConfig:
    """How image tokens are drawn.

    temperature: 0 picks the most likely allowed token (greedy); > 0 divides the logits.
    top_k: keep the k most likely allowed tokens (0: all).
    top_p: keep the smallest set of tokens whose probability reaches p (1.0: all).
    guidance_scale: classifier-free guidance weight (1.0: off; needs a model fine-tuned with cond_dropout > 0).
    seed: seeds the per-candidate random streams.
    rectangular: after the first row, every row gets exactly the first row's width (a <row> or the end is
        forced when a row is full, codes are forced before) and a row is only opened if it fits, so the
        grid needs no repair. False: rows end where the model says (parse_grid repairs and reports).
    """
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance_scale: float = 1.0
    seed: int = 0
    rectangular: bool = True

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 = greedy)")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be >= 0 (0 keeps every token)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1] (1 keeps every token)")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale={self.guidance_scale} must be >= 0 (1 = no guidance)")


class SampledImages(NamedTuple):
    image_ids: Tensor  # (B, max_visual_length) int64: <row>, codes, then <vpad> padding
    logprob: Tensor  # (B,) float32: sum of the drawn tokens' log-probabilities under the sampling distribution
    num_steps: int  # forward passes after the prompt (<= max_visual_length)


def image_token_mask(vocab: Vocab, size: int, device: torch.device | str = "cpu") -> Tensor:
    """(size,) float32 additive mask: 0 on the ids an image part may hold (<row>, <vpad>, codes), -inf on
    text ids and the unused tail. `size` is the model's vocab size (>= vocab.num_used)."""
    if size < vocab.num_used:
        raise ValueError(f"model vocab size {size} is smaller than the Vocab's {vocab.num_used} used ids; "
                         f"the model was built for another charset or codebook")
    mask = torch.full((size,), float("-inf"), device=device)
    mask[vocab.image_token_ids.to(device)] = 0.0
    return mask


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """(B, N) logits -> the same with -inf outside the top-k tokens and outside the top-p nucleus of each
    row (the most likely token always stays). top_k=0 and top_p=1 leave the logits unchanged."""
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (so the first always stays).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def pick_tokens(logprobs: Tensor, uniforms: Tensor) -> Tensor:
    """Inverse-CDF draw: (B, N) log-probabilities (-inf = not allowed) and (B,) uniforms in [0, 1) ->
    (B,) int64 ids. A token of probability 0 is never picked."""
    probs = logprobs.double().exp()
    cdf = probs.cumsum(dim=-1)
    # Scale by the row total so rounding in the cumsum cannot push a draw past the last allowed token.
    targets = uniforms.double()[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, targets, right=True)[:, 0].clamp_(max=logprobs.shape[-1] - 1)


def candidate_uniforms(num_candidates: int, length: int, seed: int) -> Tensor:
    """(num_candidates, length) float32 uniforms in [0, 1): candidate i's random stream is row i."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand((num_candidates, length), generator=generator)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def sample_image_parts(model: torch.nn.Module, vocab: Vocab, prompt_ids: Tensor, max_visual_length: int,
                       config: SamplingConfig = SamplingConfig(), uniforms: Optional[Tensor] = None,
                       uncond_prompt_ids: Optional[Tensor] = None,
                       row_widths: Optional[Tensor] = None) -> SampledImages:
    """Sample B image parts after B prompts.

    prompt_ids: (B, P) int64, every row the same length P (text parts are fixed-length, so no padding),
        P >= 0; the image part always starts with `<row>`, which is fed, not drawn.
    uniforms: (B, max_visual_length) floats in [0, 1), the random stream of each row (default: drawn from
        `config.seed` for rows 0..B-1, see `candidate_uniforms`).
    uncond_prompt_ids: (B, P) or (1, P) prompts of the unconditional branch; required when
        config.guidance_scale != 1.
    row_widths: (B,) codes per row to impose from the first row on (0: the first row ends where the model
        says, as without it), e.g. narrow rows for vertical text; needs `config.rectangular`.
    Returns SampledImages: image ids (B, max_visual_length) starting with <row>, <vpad>-padded after the
    first drawn <vpad>.
    The model is put in eval mode for the call and restored after.
    """
    if prompt_ids.ndim != 2:
        raise ValueError(f"prompt_ids must be (B, P) integer ids, got shape {tuple(prompt_ids.shape)}")
    if max_visual_length < 2:
        raise ValueError(f"max_visual_length={max_visual_length} leaves no room for <row> and a code")
    batch, prompt_length = prompt_ids.shape
    n_positions = getattr(model.config, "n_positions", None)
    if n_positions is not None and prompt_length + max_visual_length > n_positions:
        raise ValueError(f"prompt ({prompt_length}) + image part ({max_visual_length}) = "
                         f"{prompt_length + max_visual_length} ids exceed the model's n_positions={n_positions}")
    guided = config.guidance_scale != 1.0
    if guided and uncond_prompt_ids is None:
        raise ValueError("guidance_scale != 1 needs uncond_prompt_ids (the text part of the empty prompt)")
    device = _model_device(model)
    if row_widths is not None:
        if not config.rectangular:
            raise ValueError("row_widths needs rectangular rows (SamplingConfig.rectangular=True)")
        if tuple(row_widths.shape) != (batch,) or int(row_widths.min()) < 0 \
                or int(row_widths.max()) > max_visual_length - 1:
            raise ValueError(f"row_widths must be (B={batch},) widths in [0, {max_visual_length - 1}], got "
                             f"shape {tuple(row_widths.shape)}, values {row_widths.tolist()[:8]}")
    if uniforms is None:
        uniforms = candidate_uniforms(batch, max_visual_length, config.seed)
    if tuple(uniforms.shape) != (batch, max_visual_length):
        raise ValueError(f"uniforms must be (B={batch}, max_visual_length={max_visual_length}), "
                         f"got {tuple(uniforms.shape)}")
    uniforms = uniforms.to(device)
    mask = image_token_mask(vocab, model.config.vocab_size, device)
    # After <row>: codes only (no empty row, no empty image).
    codes_only = mask.clone()
    codes_only[[vocab.row_id, vocab.vpad_id]] = float("-inf")
    # At the last position a <row> would open a row with no room for codes.
    no_row = mask.clone()
    no_row[vocab.row_id] = float("-inf")
    # Rectangular rows: a full row must end (<row>, or <vpad> when no further row fits).
    end_row = torch.full_like(mask, float("-inf"))
    end_row[[vocab.row_id, vocab.vpad_id]] = 0.0
    end_image = torch.full_like(mask, float("-inf"))
    end_image[vocab.vpad_id] = 0.0

    row = torch.full((batch, 1), vocab.row_id, dtype=torch.long, device=device)
    first_input = torch.cat([prompt_ids.to(device=device, dtype=torch.long), row], dim=1)
    if guided:
        uncond = uncond_prompt_ids.to(device=device, dtype=torch.long).expand(batch, -1)
        if uncond.shape[1] != prompt_length:
            raise ValueError(f"uncond_prompt_ids have length {uncond.shape[1]} but prompt_ids {prompt_length}")
        first_input = torch.cat([first_input, torch.cat([uncond, row], dim=1)], dim=0)  # (2B, P+1)

    image_ids = torch.full((batch, max_visual_length), vocab.vpad_id, dtype=torch.long, device=device)
    image_ids[:, 0] = vocab.row_id
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    logprob = torch.zeros(batch, dtype=torch.float32, device=device)
    vpad = torch.full((batch,), vocab.vpad_id, dtype=torch.long, device=device)
    after_row = torch.ones(batch, 1, dtype=torch.bool, device=device)  # the image part starts with <row>
    # The first row's width: 0 while the first row is drawn, unless imposed by row_widths.
    width = (torch.zeros(batch, 1, dtype=torch.long, device=device) if row_widths is None
             else row_widths.to(device=device, dtype=torch.long)[:, None])
    count = torch.zeros(batch, 1, dtype=torch.long, device=device)  # codes in the current row
    was_training = model.training
    model.eval()
    try:
        past, next_input, steps = None, first_input, 0
        for position in range(1, max_visual_length):
            logits, past = cached_step(model, next_input, past)
            logits, steps = logits.float(), steps + 1
            step_mask = torch.where(after_row, codes_only, no_row if position == max_visual_length - 1 else mask)
            if config.rectangular:
                has_width = width > 0
                # A <row> here needs room for itself and a row as wide as the first (or the current) one.
                room = position + torch.where(has_width, width, count) + 1 <= max_visual_length
                full = has_width & (count >= width)
                step_mask = torch.where(~room & ~after_row, torch.where(full, end_image, no_row), step_mask)
                step_mask = torch.where(full & room, end_row, step_mask)
                step_mask = torch.where(has_width & ~full, codes_only, step_mask)
            if guided:
                logits = logits + step_mask.repeat(2, 1)
                cond, free = logits[:batch].log_softmax(-1), logits[batch:].log_softmax(-1)
                # Both branches share the mask; masked ids stay -inf (inf - inf would be nan).
                logits = torch.where(torch.isfinite(cond), free + config.guidance_scale * (cond - free),
                                     float("-inf"))
            else:
                logits = logits + step_mask
            if config.temperature == 0:
                logprobs = logits.log_softmax(-1)
                token = logprobs.argmax(-1)
            else:
                logprobs = filter_logits(logits / config.temperature, config.top_k, config.top_p).log_softmax(-1)
                token = pick_tokens(logprobs, uniforms[:, position])
            token_logprob = logprobs.gather(1, token[:, None])[:, 0]
            logprob += torch.where(finished, 0.0, token_logprob)
            token = torch.where(finished, vpad, token)
            image_ids[:, position] = token
            finished |= token == vocab.vpad_id
            is_row = (token == vocab.row_id)[:, None]
            width = torch.where(is_row & (width == 0), count, width)
            count = torch.where(is_row, 0, count + vocab.is_code(token)[:, None].long())
            after_row = is_row
            if bool(finished.all()):
                break
            next_input = token[:, None].repeat(2, 1) if guided else token[:, None]
    finally:
        model.train(was_training)
    return SampledImages(image_ids, logprob, steps)
