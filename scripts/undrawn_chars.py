"""The charset characters `make pretrain`'s text rule never emits: what a drawer trained only on its renders never
saw drawn, so cannot draw. For a drawer whose training CSVs are gone (gpt.export works the list out from them
when they are there); --write records the list as the export's layout.json `undrawn_chars`, which gpt.generate
and scripts.bench_draw refuse.

    python -m scripts.undrawn_chars resources/models/ocr-ko-en-draw --texts 3000000 [--write]

Samples --texts texts from scripts.texts.TextSampler over the training words as make pretrain splits them (every
language and mixed text in turn, a fifth of Korean texts drawn as syllables), and prints the charset characters
none of them holds. The rule is random, so a character it emits rarely could be missed: the count printed per
run shows whether more texts change the list.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gpt.pretrained import LAYOUT_NAME, read_layout
from gpt.vocab import Vocab
from scripts.texts import TextSampler
from scripts.words import word_split
from vqvae.plumbing.io import write_json_atomic

LANGUAGES = ("ko", "en", "mixed")


def emitted_chars(num_texts: int, seed: int = 0, heldout_seed: int = 0) -> set[str]:
    """The characters of `num_texts` texts of make pretrain's rule (its word split: 20 000 words per language, 5%
    held out with `heldout_seed`)."""
    pools, held = {}, set()
    for language in ("ko", "en"):
        pools[language], held_words = word_split(language, heldout_seed)
        held |= {word.casefold() for word in held_words}
    sampler = TextSampler(pools, frozenset(held), syllable_share=0.2)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for index in tqdm(range(num_texts), desc="texts", mininterval=5):
        seen.update(sampler.sample(rng, LANGUAGES[index % len(LANGUAGES)]))
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a text-to-image export (its charset.json is listed)")
    parser.add_argument("--texts", type=int, default=3_000_000, help="texts to sample (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="record the list in the export's layout.json")
    args = parser.parse_args(argv)
    layout = read_layout(args.model_dir)
    if args.write and layout["order"] != "text_first":
        parser.error(f"{args.model_dir} is an {layout['order']!r} model: only a drawer refuses undrawn characters")
    chars = Vocab.load(args.model_dir / "charset.json").chars
    emitted = emitted_chars(args.texts, args.seed)
    undrawn = "".join(sorted(set(chars) - emitted))
    print(f"{len(undrawn)} of the charset's {len(chars)} characters come in none of {args.texts} texts: {undrawn}")
    if args.write:
        write_json_atomic({**layout, "undrawn_chars": undrawn}, args.model_dir / LAYOUT_NAME)
        print(f"recorded in {args.model_dir / LAYOUT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
