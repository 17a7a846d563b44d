"""An auxiliary loss for Korean: the jamo (initial consonant, vowel, final consonant) of each Hangul syllable the
GPT is to read next, predicted by three small linear heads from the same hidden state as the syllable itself.

A syllable is one token among ~2 000, and the reader's Korean misreadings are mostly one jamo wrong (저쪽 read 저족,
링거 릭거; BENCHMARKS.md); the 19 + 21 + 28 jamo classes are shared by every syllable, so what one syllable teaches
about its vowel reaches every syllable with that vowel. Training only: the heads live beside the GPT, not in it, and
exports carry the GPT alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpt.vocab import Vocab

HANGUL_FIRST = 0xAC00
NUM_SYLLABLES = 11172
# Unicode composes syllable = (initial * 21 + vowel) * 28 + final
JAMO_CLASSES = (19, 21, 28)
NOT_HANGUL = -100  # cross_entropy's ignore_index


def jamo_table(vocab: Vocab) -> Tensor:
    """(vocab.size, 3) int64: the (initial, vowel, final) of each Hangul syllable's id, NOT_HANGUL elsewhere."""
    table = torch.full((vocab.size, 3), NOT_HANGUL, dtype=torch.long)
    for index, char in enumerate(vocab.chars):
        code = ord(char) - HANGUL_FIRST
        if 0 <= code < NUM_SYLLABLES:
            table[vocab.char_offset + index] = torch.tensor([code // 588, code // 28 % 21, code % 28])
    return table


class JamoHeads(nn.Module):
    """Three linear heads (hidden -> initial, vowel, final). Each class's weights start as the mean of the output
    embeddings (the LM head's rows) of the syllables holding it, so the heads agree with what the GPT already
    predicts from the first step."""

    def __init__(self, vocab: Vocab, output_embeddings: Tensor):
        super().__init__()
        table = jamo_table(vocab)
        self.register_buffer("table", table, persistent=False)
        self.heads = nn.ModuleList(nn.Linear(output_embeddings.shape[1], n) for n in JAMO_CLASSES)
        hangul = table[:, 0] != NOT_HANGUL
        with torch.no_grad():
            for part, head in enumerate(self.heads):
                head.bias.zero_()
                for value in range(head.out_features):
                    rows = hangul & (table[:, part] == value)
                    head.weight[value] = output_embeddings[rows].float().mean(0) if rows.any() else 0.0

    def loss(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """Mean over the three parts of the cross-entropy of the jamo of `targets` (N,) from `hidden` (N, width);
        targets that are not Hangul syllables do not count (0 when none is)."""
        parts = self.table[targets]
        keep = parts[:, 0] != NOT_HANGUL
        if not bool(keep.any()):
            return hidden.sum() * 0.0
        hidden, parts = hidden[keep], parts[keep]
        return sum(F.cross_entropy(head(hidden).float(), parts[:, i]) for i, head in enumerate(self.heads)) / 3
