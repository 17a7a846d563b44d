"""What each rendered crop says: words, phrases, numbers, plates, punctuation and mixed-script sign text.

`TextSampler` draws a (text, language) pair from word pools (scripts.words); scripts.render_text decides how it
is drawn. Every draw takes its randomness from the caller's generator, so a text depends only on the sample's
(seed, index).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from vqvae.plumbing.io import normalize_text

LETTER_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # words, "don't" as one


def holds_excluded(text: str, exclude: frozenset[str]) -> bool:
    """Whether a word of `text` (casefolded) is one of the `exclude` words: held-out words never drawn for training,
    alone or inside a phrase."""
    return bool(exclude) and any(token.casefold() in exclude for token in LETTER_WORDS.findall(text))


def is_syllable(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"  # the precomposed Hangul syllables, 가 to 힣


def _casing(rng: np.random.Generator, text: str) -> str:
    """lower (50%), Title (30%) or UPPER (20%); wordfreq lists are lowercase."""
    r = rng.random()
    if r < 0.5:
        return text
    if r < 0.8:  # str.title() would give "Don'T"
        return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))
    return text.upper()


def _digits(rng: np.random.Generator, low: int, high: int) -> str:
    """A number with low..high digits and no leading zero."""
    n = int(rng.integers(low, high + 1))
    return str(int(rng.integers(10 ** (n - 1) if n > 1 else 0, 10 ** n)))


def _grouped(value: str) -> str:
    return f"{int(value):,}"


_KO_UNITS = ("원", "개", "명", "층", "호", "번", "년", "월", "일", "시", "분", "세", "점", "권", "장", "대")
_EN_UNITS = ("kg", "km", "cm", "mm", "ml", "GB", "MB", "h", "min", "pcs", "ft", "lbs")


# The syllables of Korean vehicle registration plates ("12가3456", "123하4567"; rental cars use 하/허/호).
_PLATE_SYLLABLES = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주하허호배"
# Share of Korean texts that are plate numbers (scripts.render_text draws them with a plate's border). Plates
# came only as one number form in ten (0.7% of the crops) and without the border: the shipped model read 0% of
# real_ko_plates, mostly as Latin words.
PLATE_SHARE = 0.04
PLATE = re.compile(r"\d{2,3}[가-힣] ?\d{4}")


def _plate(rng: np.random.Generator) -> str:
    """A Korean vehicle plate number, as printed: "12가3456" or "123하 4567" (a gap before the four digits).
    Two leading digits as often as three: plates issued before 2019 have two and are still most of those on
    the road."""
    syllable = _PLATE_SYLLABLES[int(rng.integers(len(_PLATE_SYLLABLES)))]
    gap = " " if rng.random() < 0.5 else ""
    lead = int(rng.integers(0, 100)) if rng.random() < 0.5 else int(rng.integers(100, 1000))
    return f"{lead:02d}{syllable}{gap}{int(rng.integers(0, 10000)):04d}"


def _number(rng: np.random.Generator, language: str) -> str:
    """Digits in the forms signs and documents use: counts, prices, dates, times, phone numbers, and
    Korean vehicle plates."""
    kind = int(rng.integers(10))
    if kind == 9:
        if language == "ko":
            return _plate(rng)
        kind = int(rng.integers(9))
    if kind == 0:
        return _digits(rng, 1, 6)
    if kind == 1:
        return _grouped(_digits(rng, 4, 8))
    if kind == 2:
        return f"{_digits(rng, 1, 3)}.{_digits(rng, 1, 2)}"
    if kind == 3:
        y, m, d = int(rng.integers(1950, 2040)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        sep = ".-/"[int(rng.integers(3))]
        return f"{y}{sep}{m:02d}{sep}{d:02d}" if language == "ko" or rng.random() < 0.5 else f"{m:02d}/{d:02d}/{y}"
    if kind == 4:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    if kind == 5:
        if language == "ko":
            return f"0{int(rng.integers(10, 100))}-{_digits(rng, 3, 4).zfill(4)}-{int(rng.integers(0, 10000)):04d}"
        return f"{int(rng.integers(200, 1000))}-{int(rng.integers(0, 10000)):04d}"
    if kind == 6:
        return f"{int(rng.integers(0, 101))}%"
    if kind == 7:  # prices
        if language == "ko":
            return _grouped(_digits(rng, 3, 7)) + "원"
        return f"${int(rng.integers(0, 1000))}.{int(rng.integers(0, 100)):02d}"
    if language == "ko":  # Korean counters follow the number directly: "3층", "15개"
        return _digits(rng, 1, 4) + _KO_UNITS[int(rng.integers(len(_KO_UNITS)))]
    return _digits(rng, 1, 4) + " " * int(rng.random() < 0.5) + _EN_UNITS[int(rng.integers(len(_EN_UNITS)))]


_END_MARKS = {"ko": (".", ",", "!", "?", "~", "...", ":"), "en": (".", ",", "!", "?", "...", ":", ";")}
_WRAPS = {"ko": (("(", ")"), ("[", "]"), ('"', '"'), ("'", "'"), ("「", "」"), ("<", ">")),
          "en": (("(", ")"), ("[", "]"), ('"', '"'), ("'", "'"), ("<", ">"))}
_JOINERS = {"ko": ("-", "/", "·", "&", "+"), "en": ("-", "/", "&", "+", "@", "_")}
_PREFIXES = {"ko": ("(주)", "#", "*", "★"), "en": ("#", "@", "*", "No.")}


class TextSampler:
    """Draws (text, language) pairs from word pools: words, phrases, numbers, punctuation, mixed case.

    `pools` maps 'ko'/'en' (and optionally 'mixed') to words or phrases; `exclude` holds casefolded
    words that must never appear (checked on every token of the final text). `words_only` draws pool
    entries as they are (Latin case varied) with no numbers, punctuation or phrases: for test sets of
    held-out words. `syllable_share`: the share of Korean texts that are 1-4 syllables drawn uniformly from
    those of the Korean pool, so a syllable that few words hold is drawn as often as a common one.
    """

    def __init__(self, pools: Mapping[str, Sequence[str]], exclude: frozenset[str] = frozenset(),
                 words_only: bool = False, syllable_share: float = 0.0):
        self.pools = {language: tuple(words) for language, words in pools.items() if words}
        self.exclude = exclude
        self.words_only = words_only
        self.syllable_share = syllable_share
        self.syllables = tuple(sorted({ch for word in self.pools.get("ko", ()) for ch in word if is_syllable(ch)}))

    def word(self, rng: np.random.Generator, language: str) -> str:
        pool = self.pools[language]
        word = pool[int(rng.integers(len(pool)))]
        return _casing(rng, word) if language != "ko" else word

    def phrase(self, rng: np.random.Generator, language: str, num_words: int) -> str:
        pool = self.pools[language]
        text = " ".join(pool[int(rng.integers(len(pool)))] for _ in range(num_words))
        return _casing(rng, text) if language != "ko" else text

    def sample(self, rng: np.random.Generator, language: str) -> str:
        """One text of `language` ('ko', 'en' or 'mixed'), NFC."""
        if self.words_only:
            return normalize_text(self.word(rng, language))
        if language == "mixed":
            return normalize_text(self._mixed(rng))
        if language == "ko" and rng.random() < PLATE_SHARE:
            return _plate(rng)
        # Drawn only when asked for, so datasets rendered without it stay the same.
        if language == "ko" and self.syllable_share and self.syllables and rng.random() < self.syllable_share:
            picks = rng.integers(len(self.syllables), size=int(rng.integers(1, 5)))
            return "".join(self.syllables[i] for i in picks)
        r = rng.random()
        if r < 0.45:
            text = self.word(rng, language)
        elif r < 0.65:
            text = self.phrase(rng, language, int(rng.integers(2, 4)))
        elif r < 0.78:
            text = self._punctuated(rng, language)
        elif r < 0.90:
            text = _number(rng, language)
        else:  # a word and a number: "Route 66", "제2공장", "3번 출구"
            word, number = self.word(rng, language), _number(rng, language)
            sep = " " if language == "en" or rng.random() < 0.5 else ""
            text = f"{word}{sep}{number}" if rng.random() < 0.5 else f"{number}{sep}{word}"
        return normalize_text(text)

    def _punctuated(self, rng: np.random.Generator, language: str) -> str:
        kind = int(rng.integers(4))
        if kind == 0:
            marks = _END_MARKS[language]
            return self.word(rng, language) + marks[int(rng.integers(len(marks)))]
        if kind == 1:
            left, right = _WRAPS[language][int(rng.integers(len(_WRAPS[language])))]
            return left + self.word(rng, language) + right
        if kind == 2:
            joiners = _JOINERS[language]
            return self.word(rng, language) + joiners[int(rng.integers(len(joiners)))] + self.word(rng, language)
        prefixes = _PREFIXES[language]
        return prefixes[int(rng.integers(len(prefixes)))] + self.word(rng, language)

    def _mixed(self, rng: np.random.Generator) -> str:
        if "mixed" in self.pools and rng.random() < 0.5:  # user entries that already mix scripts
            return self.word(rng, "mixed")
        korean, latin = self.word(rng, "ko"), self.word(rng, "en")
        if rng.random() < 0.3:  # brand-like acronym glued to a Korean word: "KT대리점"
            return latin.upper()[: int(rng.integers(2, 5))] + korean
        return f"{korean} {latin}" if rng.random() < 0.5 else f"{latin} {korean}"

    def is_excluded(self, text: str) -> bool:
        return holds_excluded(text, self.exclude)
