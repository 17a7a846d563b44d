"""How much Korean running text a model's charset can write: a syllable outside it can never be read.

    python -m scripts.bench_charset_coverage                       # the shipped recognizer's charset
    python -m scripts.bench_charset_coverage --model outputs/run-export --labels ../shared/eval/real/*/labels.csv

Weighs every Hangul syllable of wordfreq's Korean list (its own frequencies, shipped inside the package) by
the frequency of the words that hold it, and prints the share the charset lacks, how many distinct syllables
that is, and the commonest of them. KS X 1001's 2 350 syllables (the EUC-KR set most Korean text keeps to)
are counted beside, since wordfreq's list stops at about 30 000 words. --labels: labels.csv files (their `text`
column) whose distinct syllables outside the charset are counted too.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Mapping

from scripts.bench_syllable_exposure import unseen_syllables
from scripts.texts import is_syllable

DEFAULT_MODEL = "resources/models/ocr-ko-en"


def ks_x_1001_syllables() -> set[str]:
    """The 2 350 precomposed syllables of KS X 1001 (EUC-KR rows 0xB0-0xC8, cells 0xA1-0xFE)."""
    return {bytes((row, cell)).decode("euc-kr") for row in range(0xB0, 0xC9) for cell in range(0xA1, 0xFF)}


def missing_syllables(charset: Iterable[str], frequencies: Mapping[str, float]) -> tuple[float, Counter]:
    """(share of the syllables in running text that `charset` lacks, those syllables with their summed
    frequency): `frequencies` maps words to how often they occur; a word counts once per syllable it holds."""
    writable = set(charset)
    total, missing = 0.0, Counter()
    for word, frequency in frequencies.items():
        for ch in word:
            if is_syllable(ch):
                total += frequency
                if ch not in writable:
                    missing[ch] += frequency
    return (sum(missing.values()) / total if total else 0.0), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="an export folder (its charset.json)")
    parser.add_argument("--labels", nargs="*", default=[], help="labels.csv files to check against the charset")
    parser.add_argument("--show", type=int, default=40, help="how many of the commonest missing syllables to print")
    args = parser.parse_args(argv)
    import pandas as pd
    import wordfreq

    from gpt.vocab import Vocab

    charset = Vocab.load(f"{args.model}/charset.json").chars
    share, missing = missing_syllables(charset, wordfreq.get_frequency_dict("ko"))
    syllables = {ch for ch in charset if is_syllable(ch)}
    standard = ks_x_1001_syllables()
    print(f"{args.model}: {len(syllables)} Hangul syllables, {len(syllables & standard)} of KS X 1001's "
          f"{len(standard)}")
    print(f"wordfreq's Korean list: {100 * share:.3f}% of the syllables in running text are outside the charset "
          f"({len(missing)} distinct)")
    print(f"commonest missing: {''.join(ch for ch, _ in missing.most_common(args.show))}")
    writable = Counter(charset)
    for path in args.labels:
        texts = pd.read_csv(path, keep_default_na=False, dtype=str)["text"]
        found = {ch for text in texts for ch in text if is_syllable(ch)}
        outside = unseen_syllables(writable, texts)
        print(f"{path}: {len(found)} distinct syllables, {len(outside)} outside the charset {''.join(outside)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
