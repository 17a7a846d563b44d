"""Recognition decoding: text-only outputs, stop at </s>, confidence, KV cache == no cache, beams."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gpt.decoding import recognize
from gpt.modeling import build_model
from gpt.vocab import Vocab

V, T = 12, 8
VOCAB = Vocab.build(["abcdefgh ij한"], num_codes=32)


def image_ids(num: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    shapes = [(1, 5), (2, 3), (1, 11), (2, 4)]
    return torch.tensor([VOCAB.image_part(rng.integers(0, 32, shapes[i % 4]), V) for i in range(num)])


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model({"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0}, VOCAB, V, T).eval()


class ScriptedLM(torch.nn.Module):
    """Logits fixed by the step: a code id always scores highest (decoding must never pick it), then
    'a' for the first `num_chars` steps and '</s>' after. Supports the KV-cache call pattern."""

    def __init__(self, num_chars: int, char_logit: float = 3.0):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(vocab_size=VOCAB.size)
        self.num_chars, self.char_logit = num_chars, char_logit

    def forward(self, input_ids, past_key_values=None, use_cache=False, position_ids=None, attention_mask=None):
        length = input_ids.shape[1] + (past_key_values.length if past_key_values is not None else 0)
        step = int(position_ids[0, -1]) - V  # text tokens generated so far (<s> sits at position V)
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], VOCAB.size)
        logits[..., VOCAB.code_offset] = 100.0
        logits[..., VOCAB.unk_id] = 50.0
        favourite = VOCAB.char_id("a") if step < self.num_chars else VOCAB.eos_id
        logits[..., favourite] = self.char_logit
        past = SimpleNamespace(length=length, reorder_cache=lambda index: None) if use_cache else None
        return SimpleNamespace(logits=logits, past_key_values=past)


def test_only_text_tokens_stop_at_eos_and_confidence():
    results = recognize(ScriptedLM(num_chars=2), VOCAB, image_ids(3), T)
    # Softmax over the allowed tokens only (chars + </s>): the favourite has e^3 against 1 for each other.
    num_allowed = len(VOCAB.text_token_ids)
    p = math.exp(3.0) / (math.exp(3.0) + num_allowed - 1)
    for text, confidence in results:
        assert text == "aa"
        assert confidence == pytest.approx(p ** 3, rel=1e-5)  # a, a, </s>


def test_text_is_cut_at_max_length_with_forced_eos():
    (text, confidence), = recognize(ScriptedLM(num_chars=100), VOCAB, image_ids(1), T)
    assert text == "a" * (T - 2)
    num_allowed = len(VOCAB.text_token_ids)
    p_a = math.exp(3.0) / (math.exp(3.0) + num_allowed - 1)
    p_eos = 1.0 / (math.exp(3.0) + num_allowed - 1)  # forced </s> still costs its probability
    assert confidence == pytest.approx(p_a ** (T - 2) * p_eos, rel=1e-5)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_cache_and_no_cache_agree(num_beams):
    model, prompts = tiny_model(), image_ids(7)
    cached = recognize(model, VOCAB, prompts, T, use_cache=True, num_beams=num_beams)
    plain = recognize(model, VOCAB, prompts, T, use_cache=False, num_beams=num_beams)
    assert [t for t, _ in cached] == [t for t, _ in plain]
    np.testing.assert_allclose([c for _, c in cached], [c for _, c in plain], rtol=1e-4)
    for text, confidence in cached:
        assert 0.0 < confidence <= 1.0 and set(text) <= set(VOCAB.chars)


def test_batch_equals_one_by_one_and_keeps_order():
    model, prompts = tiny_model(1), image_ids(5, seed=3)
    batched = recognize(model, VOCAB, prompts, T)
    single = [recognize(model, VOCAB, prompts[i:i + 1], T)[0] for i in range(5)]
    assert [t for t, _ in batched] == [t for t, _ in single]
    np.testing.assert_allclose([c for _, c in batched], [c for _, c in single], rtol=1e-4)


def test_beam_search_scores_at_least_greedy():
    model, prompts = tiny_model(2), image_ids(6, seed=5)
    greedy = recognize(model, VOCAB, prompts, T)
    beam = recognize(model, VOCAB, prompts, T, num_beams=4)
    for (_, g), (_, b) in zip(greedy, beam):
        assert b >= g * (1 - 1e-5)


def test_wide_beam_finds_the_exhaustive_best():
    """With more beams than there are texts, beam search is exhaustive: it must return the most probable text
    (scored here one full forward per candidate) and its probability, for every row of a batch."""
    short_t = 4  # <s>, up to two characters, </s>
    model, prompts = tiny_model(3), image_ids(3, seed=7)
    text_ids = VOCAB.text_token_ids.tolist()
    chars = [t for t in text_ids if t != VOCAB.eos_id]
    candidates = ([[VOCAB.eos_id]] + [[c, VOCAB.eos_id] for c in chars]
                  + [[a, b, VOCAB.eos_id] for a in chars for b in chars])
    allowed = torch.full((VOCAB.size,), float("-inf"))
    allowed[VOCAB.text_token_ids] = 0.0
    found = recognize(model, VOCAB, prompts, short_t, num_beams=len(candidates))
    for row, (text, confidence) in zip(prompts, found):
        stem = VOCAB.trim_image_padding(torch.cat([row, torch.tensor([VOCAB.bos_id])])[None], V)
        best_score, best_text = float("-inf"), None
        for ids in candidates:
            sequence = torch.cat([stem[0], torch.tensor([ids[:-1]], dtype=torch.long)], dim=1)
            positions = torch.cat([stem[1], stem[1][-1] + torch.arange(1, len(ids))])
            attention = torch.cat([stem[2], torch.ones(1, len(ids) - 1, dtype=torch.long)], dim=1)
            with torch.no_grad():
                logits = model(input_ids=sequence, position_ids=positions[None],
                               attention_mask=attention).logits[0, -len(ids):]
            logprobs = torch.log_softmax(logits.float() + allowed, dim=-1)
            total = float(logprobs[torch.arange(len(ids)), torch.tensor(ids)].sum())
            if total > best_score:
                best_score, best_text = total, VOCAB.decode_text(ids)
        assert text == best_text
        assert confidence == pytest.approx(math.exp(best_score), rel=1e-4)


def test_restores_training_mode_and_checks_input():
    model = tiny_model().train()
    recognize(model, VOCAB, image_ids(2), T)
    assert model.training
    assert recognize(model, VOCAB, image_ids(1)[:0], T) == []
    with pytest.raises(ValueError, match="outside the vocab"):
        recognize(model, VOCAB, torch.full((1, V), VOCAB.size), T)
    with pytest.raises(ValueError, match="num_beams=0"):
        recognize(model, VOCAB, image_ids(1), T, num_beams=0)
