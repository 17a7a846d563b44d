"""Recognition decoding: image part in, text out, with the Hugging Face KV cache.

Prompts are image parts (`max_visual_length` ids, <vpad>-padded) followed by <s>; the <vpad> columns every
row of the batch holds are dropped first (`Vocab.trim_image_padding`), the text keeping its positions, as
in training, so a batch of short crops costs only their tokens and needs no left padding. After <s> only
text tokens (the characters and </s>) are allowed; decoding stops when every row has emitted </s>.
Confidence is the product of the chosen tokens' probabilities (</s> included), each probability taken
over the allowed tokens.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gpt.modeling import cached_forward, cached_step
from gpt.vocab import Vocab


def _allowed_mask(vocab: Vocab, size: int, device: torch.device) -> Tensor:
    """(size,) additive mask: 0 on text tokens (chars + </s>), -inf elsewhere."""
    mask = torch.full((size,), float("-inf"), device=device)
    mask[vocab.text_token_ids.to(device)] = 0.0
    return mask


def _check_prompts(vocab: Vocab, image_ids: Tensor, max_text_length: int) -> None:
    if image_ids.ndim != 2 or image_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"image_ids must be a (B, max_visual_length) integer tensor, got "
                         f"{tuple(image_ids.shape)} {image_ids.dtype}")
    if max_text_length < 2:
        raise ValueError(f"max_text_length={max_text_length} leaves no room for <s> and </s>")
    if image_ids.numel() and (int(image_ids.min()) < 0 or int(image_ids.max()) >= vocab.size):
        raise ValueError(f"image_ids hold ids in [{int(image_ids.min())}, {int(image_ids.max())}] outside "
                         f"the vocab [0, {vocab.size}); they were made with another vocab")


def _prompt(vocab: Vocab, image_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Prompt ids (B, n: the trimmed image part, then <s>), their (n,) position ids and (B, n) attention mask."""
    bos = torch.full((image_ids.shape[0], 1), vocab.bos_id, dtype=torch.long, device=image_ids.device)
    return vocab.trim_image_padding(torch.cat([image_ids, bos], dim=1), image_ids.shape[1])


def _grow(positions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Position id and attention mask after one more token."""
    return torch.cat([positions, positions[-1:] + 1]), torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)


def _step_logprobs(logits: Tensor, mask: Tensor) -> Tensor:
    """(B, size) logits -> (B, size) float32 log-probabilities over the allowed tokens only."""
    return torch.log_softmax(logits.float() + mask, dim=-1)


@torch.no_grad()
def greedy_ids(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, max_text_length: int,
               use_cache: bool = True) -> tuple[Tensor, Tensor]:
    """Greedy text ids after the prompt: (B, n <= max_text_length - 1) int64 (</s> then <pad> once a row
    ended) and (B,) float32 sum of chosen-token log-probabilities (</s> included).

    At most max_text_length - 2 characters fit the text part; a row that reaches that many is made to end
    with </s> (its probability still counts, so such a row gets a low confidence).
    """
    _check_prompts(vocab, image_ids, max_text_length)
    device = next(model.parameters()).device
    sequence, positions, attention = _prompt(vocab, image_ids.to(device=device, dtype=torch.long))
    if use_cache:
        logits, past = cached_step(model, sequence, None, positions, attention)
    else:
        logits, past = _uncached_step(model, sequence, positions, attention), None
    return _greedy_from(model, vocab, logits, past, sequence, positions, attention, max_text_length, use_cache)


def _uncached_step(model: torch.nn.Module, sequence: Tensor, positions: Tensor, attention: Tensor) -> Tensor:
    return model(input_ids=sequence, position_ids=positions.expand(sequence.shape[0], -1), attention_mask=attention,
                 use_cache=False).logits[:, -1]


def _greedy_from(model: torch.nn.Module, vocab: Vocab, logits: Tensor, past: Any, sequence: Tensor,
                 positions: Tensor, attention: Tensor, max_text_length: int, use_cache: bool) -> tuple[Tensor, Tensor]:
    """`greedy_ids` from the prompt's last logits (B, vocab) and its cache (None without `use_cache`)."""
    batch, device = sequence.shape[0], sequence.device
    mask = _allowed_mask(vocab, model.config.vocab_size, device)
    eos_only = torch.full_like(mask, float("-inf"))
    eos_only[vocab.eos_id] = 0.0
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    score = torch.zeros(batch, dtype=torch.float32, device=device)
    chosen: list[Tensor] = []
    for step in range(max_text_length - 1):
        logprobs = _step_logprobs(logits, mask)
        # The last step may only close the text: max_text_length - 2 characters are the most that fit.
        pick_from = logprobs + eos_only if step == max_text_length - 2 else logprobs
        token = pick_from.argmax(dim=-1)
        token_logprob = logprobs.gather(1, token[:, None])[:, 0]
        score = torch.where(finished, score, score + token_logprob)
        token = torch.where(finished, torch.full_like(token, vocab.pad_id), token)
        chosen.append(token)
        finished |= token == vocab.eos_id
        if bool(finished.all()):
            break
        positions, attention = _grow(positions, attention)
        sequence = torch.cat([sequence, token[:, None]], dim=1)
        if use_cache:
            logits, past = cached_step(model, token[:, None], past, positions[-1:], attention)
        else:
            logits = _uncached_step(model, sequence, positions, attention)
    return torch.stack(chosen, dim=1), score


@torch.no_grad()
def read_and_score(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, text_ids: Tensor,
                   max_text_length: int) -> tuple[list[tuple[str, float]], Tensor]:
    """`recognize` (greedy) and the log-probability of given texts, in one pass over the image parts.

    text_ids: (B, max_text_length) text parts as `Vocab.text_part` lays them out (<s>, characters, </s>,
    <pad>). Returns the readings and (B,) float32 log p(text | image): the sum over each text's characters and
    </s> of log-probabilities over the allowed tokens, as the reading's confidence is taken. The texts are fed
    through the image's KV cache in one step, the cache is cut back to the image, and the reading goes on from
    it: the image part, nearly all of the compute, is run once for both.
    """
    _check_prompts(vocab, image_ids, max_text_length)
    if text_ids.shape != (image_ids.shape[0], max_text_length):
        raise ValueError(f"text_ids must be (B, max_text_length) = ({image_ids.shape[0]}, {max_text_length}), "
                         f"got {tuple(text_ids.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        sequence, positions, attention = _prompt(vocab, image_ids.to(device=device, dtype=torch.long))
        logits, past = cached_step(model, sequence, None, positions, attention)
        text_ids = text_ids.to(device=device, dtype=torch.long)
        forced = text_ids[:, 1:-1]  # each position predicts the next text token; the last one predicts nothing
        all_logits = logits[:, None]
        if forced.shape[1]:
            forced_positions = positions[-1] + 1 + torch.arange(forced.shape[1], device=device)
            forced_attention = torch.cat([attention, attention.new_ones(forced.shape)], dim=1)
            forced_logits, past = cached_forward(model, forced, past, forced.shape[1], forced_positions,
                                                 forced_attention)
            past.crop(-forced.shape[1])  # a negative count removes the last tokens in every transformers release
            all_logits = torch.cat([all_logits, forced_logits], dim=1)
        logprobs = _step_logprobs(all_logits, _allowed_mask(vocab, model.config.vocab_size, device))
        targets = text_ids[:, 1:]
        token = logprobs.gather(2, targets[..., None])[..., 0]
        text_score = torch.where(targets != vocab.pad_id, token, torch.zeros_like(token)).sum(1)
        ids, score = _greedy_from(model, vocab, logits, past, sequence, positions, attention, max_text_length, True)
    finally:
        model.train(was_training)
    return _readings(vocab, ids, score), text_score.cpu()


@torch.no_grad()
def beam_ids(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, max_text_length: int,
             num_beams: int, use_cache: bool = True) -> tuple[Tensor, Tensor]:
    """Beam search over text tokens; same outputs as `greedy_ids` (the best beam per row, by total
    log-probability, no length penalty). The prompt is computed once per row, not once per beam: its cache is
    copied to the beams after the first step, which is where nearly all of a reading's compute is."""
    _check_prompts(vocab, image_ids, max_text_length)
    device = next(model.parameters()).device
    batch = image_ids.shape[0]
    mask = _allowed_mask(vocab, model.config.vocab_size, device)
    size = mask.shape[0]
    sequence, positions, attention = _prompt(vocab, image_ids.to(device=device, dtype=torch.long))
    # One live beam per row until the first step branches it into num_beams.
    score = torch.zeros(batch, 1, device=device)
    finished = torch.zeros(batch, 1, dtype=torch.bool, device=device)
    chosen = torch.empty(batch, 1, 0, dtype=torch.long, device=device)
    past, next_input, next_positions = None, sequence, positions
    for step in range(max_text_length - 1):
        if use_cache:
            logits, past = cached_step(model, next_input, past, next_positions, attention)
        else:
            logits = model(input_ids=sequence, position_ids=positions.expand(sequence.shape[0], -1),
                           attention_mask=attention, use_cache=False).logits[:, -1]
        logprobs = _step_logprobs(logits, mask).view(batch, -1, size)  # (B, live beams, size)
        if step == max_text_length - 2:  # the last step may only close the text
            keep = logprobs[..., vocab.eos_id].clone()
            logprobs = torch.full_like(logprobs, float("-inf"))
            logprobs[..., vocab.eos_id] = keep
        # A finished beam extends only with <pad> at no cost, so it keeps its score and competes as it is.
        ended = torch.full_like(logprobs, float("-inf"))
        ended[..., vocab.pad_id] = 0.0
        logprobs = torch.where(finished[..., None], ended, logprobs)
        live = logprobs.shape[1]
        total = (score[..., None] + logprobs).view(batch, live * size)
        score, flat = total.topk(min(num_beams, live * size), dim=1)  # (B, k)
        parent, token = flat // size, flat % size
        chosen = torch.cat([chosen.gather(1, parent[..., None].expand(-1, -1, chosen.shape[2])),
                            token[..., None]], dim=2)
        finished = finished.gather(1, parent) | (token == vocab.eos_id)
        if bool(finished.all()):
            break
        flat_parent = (parent + torch.arange(batch, device=device)[:, None] * live).view(-1)
        if use_cache:
            past.reorder_cache(flat_parent)
        next_input = token.view(-1, 1)
        positions, attention = _grow(positions, attention[flat_parent])
        next_positions = positions[-1:]
        sequence = torch.cat([sequence[flat_parent], next_input], dim=1)
    best = score.argmax(dim=1)
    rows = torch.arange(batch, device=device)
    return chosen[rows, best], score[rows, best]


@torch.no_grad()
def recognize(model: torch.nn.Module, vocab: Vocab, image_ids: Tensor, max_text_length: int,
              use_cache: bool = True, num_beams: int = 1) -> list[tuple[str, float]]:
    """Read B image parts: image_ids (B, max_visual_length) int64, as `Vocab.image_part` lays them out,
    for a recognition (image_first) model. Returns [(text, confidence in (0, 1])] in input order;
    confidence = exp(sum of chosen-token log-probabilities), </s> included.

    The model is put in eval mode for the call and restored after.
    """
    if num_beams < 1:
        raise ValueError(f"num_beams={num_beams}; use 1 for greedy decoding or more for beam search")
    if image_ids.shape[0] == 0:
        return []
    was_training = model.training
    model.eval()
    try:
        if num_beams == 1:
            ids, score = greedy_ids(model, vocab, image_ids, max_text_length, use_cache)
        else:
            ids, score = beam_ids(model, vocab, image_ids, max_text_length, num_beams, use_cache)
    finally:
        model.train(was_training)
    return _readings(vocab, ids, score)


def _readings(vocab: Vocab, ids: Tensor, score: Tensor) -> list[tuple[str, float]]:
    return list(zip([vocab.decode_text(row) for row in ids.tolist()], score.exp().tolist()))
