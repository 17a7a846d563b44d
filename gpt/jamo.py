"""An auxiliary loss for Korean: partial credit for the jamo (initial consonant, vowel, final consonant) of each
Hangul syllable the GPT is to read next, taken from the GPT's own next-token distribution: for each of the three
parts, -log of the probability the model gives all syllables sharing the target's jamo in that part.

A syllable is one token among ~2 000, and the reader's Korean misreadings are mostly one jamo wrong (저쪽 read 저족,
링거 릭거; BENCHMARKS.md): the exact-token loss counts 족 as wrong as 가, this one counts it two-thirds right, so what
one syllable teaches about a vowel is shared with every syllable holding it. No parameters: exports are unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gpt.vocab import Vocab

HANGUL_FIRST = 0xAC00
NUM_SYLLABLES = 11172
# Unicode composes syllable = (initial * 21 + vowel) * 28 + final
JAMO_CLASSES = (19, 21, 28)
NOT_HANGUL = -100


def jamo_table(vocab: Vocab) -> Tensor:
    """(vocab.size, 3) int64: the (initial, vowel, final) of each Hangul syllable's id, NOT_HANGUL elsewhere."""
    table = torch.full((vocab.size, 3), NOT_HANGUL, dtype=torch.long)
    for index, char in enumerate(vocab.chars):
        code = ord(char) - HANGUL_FIRST
        if 0 <= code < NUM_SYLLABLES:
            table[vocab.char_offset + index] = torch.tensor([code // 588, code // 28 % 21, code % 28])
    return table


def jamo_loss(logits: Tensor, targets: Tensor, table: Tensor) -> Tensor:
    """Mean over Hangul targets and the three parts of -log p(a syllable with the target's jamo in that part), p the
    softmax of `logits` (N, vocab) over the whole vocab; `targets` (N,). 0 (with a gradient path) when no target is
    a Hangul syllable."""
    parts = table[targets]
    keep = parts[:, 0] != NOT_HANGUL
    if not bool(keep.any()):
        return logits.sum() * 0.0
    probs = torch.softmax(logits[keep].float(), dim=-1)
    parts, losses = parts[keep], []
    for part, classes in enumerate(JAMO_CLASSES):
        column = table[:, part]
        hangul = column != NOT_HANGUL
        # the probability of each class: the sum over the syllables holding it
        mass = probs.new_zeros(probs.shape[0], classes).index_add_(1, column[hangul], probs[:, hangul])
        losses.append(-torch.log(mass.gather(1, parts[:, part:part + 1]).clamp(min=1e-12)).mean())
    return sum(losses) / len(losses)
