"""A character-level Hugging Face tokenizer whose ids are exactly the Vocab's ids (DESIGN §3).

The export (gpt/export.py) saves it as `tokenizer.json`, so `AutoTokenizer.from_pretrained(DIR)` works
with no project code. Every charset character is one token; the specials, `<row>`, `<vpad>` and the
visual codes (spelled `<c0>`, `<c1>`, ...; see gpt.vocab.code_token) and the unused
tail (`<unused_0>`, ...) are special added tokens, so they are matched whole before
the text is split into characters and `decode(..., skip_special_tokens=True)` returns plain text.
The ids are never computed here: they are read from the Vocab, the one place that defines them.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from gpt.vocab import Vocab

# Splits text into single code points; `[\s\S]` rather than `.` so a newline is a character too
# (the tokenizers library's Oniguruma regex has no `(?s)` flag).
_ONE_CHAR = Regex(r"[\s\S]")


def vocab_tokens(vocab: Vocab) -> list[str]:
    """Token strings in id order (index i is the token of Vocab id i), unused tail included, so the
    tokenizer's length equals the model's vocab_size."""
    return vocab.tokens()


def build_tokenizer(tokens: Sequence[str], special_tokens: Sequence[str], bos_token: str = "<s>",
                    eos_token: str = "</s>", pad_token: str = "<pad>", unk_token: str = "<unk>",
                    model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """A char-level fast tokenizer where token `tokens[i]` has id i.

    `special_tokens` (a subset of `tokens`) are matched whole and skipped by
    `decode(skip_special_tokens=True)`; every other token must be one character. Encoding with
    `add_special_tokens=True` (the default) wraps the text as `<s> text </s>`, the text part's layout.
    """
    duplicates = sorted(t for t, n in Counter(tokens).items() if n > 1)
    if duplicates:
        raise ValueError(f"tokens {duplicates[:10]!r} appear more than once; every id needs its own token")
    specials = set(special_tokens)
    unknown = specials - set(tokens)
    if unknown:
        raise ValueError(f"special tokens {sorted(unknown)!r} are not in the token list")
    long_chars = [t for t in tokens if t not in specials and len(t) != 1]
    if long_chars:
        raise ValueError(f"non-special tokens {long_chars[:10]!r} are not single characters; "
                         f"a character-level tokenizer needs one character per token")
    ids = {token: token_id for token_id, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=ids, unk_token=unk_token))
    backend.normalizer = normalizers.NFC()  # never NFKD: it would split Hangul syllables into jamo
    backend.pre_tokenizer = pre_tokenizers.Split(_ONE_CHAR, behavior="isolated")
    backend.decoder = decoders.Fuse()  # join characters with no separator
    # Added in id order so each keeps the id it already has in the WordLevel vocabulary.
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t in tokens if t in specials])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos_token} $A {eos_token}", pair=f"{bos_token} $A {eos_token} $B {eos_token}",
        special_tokens=[(bos_token, ids[bos_token]), (eos_token, ids[eos_token])])
    kwargs = {} if model_max_length is None else {"model_max_length": model_max_length}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos_token, eos_token=eos_token,
                                        pad_token=pad_token, unk_token=unk_token, **kwargs)
    return tokenizer


def tokenizer_from_vocab(vocab: Vocab, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """The Vocab as a Hugging Face tokenizer; `tokenizer.convert_tokens_to_ids(t)` equals the Vocab id of
    every character, special, `<row>`, `<vpad>` and code token."""
    tokens = vocab_tokens(vocab)
    chars = set(vocab.chars)
    # Everything but the characters is special: <s> </s> <pad> <unk> <row> <vpad>, codes, unused tail.
    specials = [t for t in tokens if t not in chars]
    tokenizer = build_tokenizer(tokens, specials, bos_token=vocab.bos_token, eos_token=vocab.eos_token,
                                pad_token=vocab.pad_token, unk_token=vocab.unk_token,
                                model_max_length=model_max_length)
    check_tokenizer_matches_vocab(tokenizer, vocab)
    return tokenizer


def check_tokenizer_matches_vocab(tokenizer: PreTrainedTokenizerFast, vocab: Vocab) -> None:
    """Raise ValueError if any token's id in `tokenizer` differs from its Vocab id."""
    tokens = vocab_tokens(vocab)
    got = tokenizer.convert_tokens_to_ids(tokens)
    wrong = [(t, i, g) for i, (t, g) in enumerate(zip(tokens, got)) if g != i]
    if wrong:
        raise ValueError(f"tokenizer ids differ from the Vocab for {len(wrong)} tokens, e.g. "
                         f"(token, vocab id, tokenizer id) {wrong[:5]!r}; rebuild the tokenizer from the Vocab")
