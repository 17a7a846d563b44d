"""The broad font set for pretraining, split into training fonts and held-out fonts (never trained on).

Sources, all free licences (OFL-1.1 or Apache-2.0, recorded in each package):
- pip: the `fontpkg-*` Google Fonts families of `requirements-pretrain.txt` (Latin), Noto Sans CJK in seven
  weights (`cvttf-notosanscjk-*`) and Noto Serif KR (`pylopdf-fonts-ko`);
- Debian: fonts-alee, fonts-lexi-gulim, fonts-lexi-saebom, fonts-naver-d2coding, fonts-woowa-bm,
  fonts-wqy-microhei (Hangul). `scripts/install_pretrain_fonts.sh` installs both kinds.
- Not used: `canvas-fonts` (its .ttf files are HTML pages, in 0.1.0 and 0.2.0: checked 2026-12-06). Debian's
  Korean font packages (`apt-cache search hangul`, `korean`) are the ones above and the reserved ones below; Noto
  Serif CJK (fonts-noto-cjk) has Noto Serif KR's Hangul in more weights, and Latin from Source Serif, held out.

Families the project keeps out for evaluation by others (Nanum, Un, Baekmuk, Liberation, GNU FreeFont, URW
base35, Arimo/Tinos/Cousine) are refused by name even when a folder holds them. Held-out families are
whole families (every weight and italic), so a held-out test measures unseen designs.

    python -m scripts.broad_fonts            # lists both sets and what is missing
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path
from typing import NamedTuple

from scripts.fonts import FONT_SUFFIXES, default_font_files

DEBIAN_HANGUL_DIRS = ("/usr/share/fonts/truetype/alee", "/usr/share/fonts/truetype/lexi",
                      "/usr/share/fonts/truetype/naver-d2coding", "/usr/share/fonts/truetype/woowa-bm",
                      "/usr/share/fonts/truetype/wqy")
# Whole families kept out of training (matched against the file name, case-insensitive).
HELD_OUT = re.compile(r"^(Roboto|Lato|Merriweather|SourceSerif4|SpaceMono|Oswald|PlayfairDisplay|Caveat|"
                      r"OpenSans|IBMPlexSerif|LexiGulim|Guseul|BMHANNA_11yrs)", re.IGNORECASE)
# Display families kept out of training too, for a set of their own (scripts.pretrain's heldout_en_display): the
# families above are text faces, and the shipped model read the held-out English words in these six at 57.3% where
# it read them in the text faces at 84.3% (session 44, BENCHMARKS.md). Not Lobster Two, which trains.
HELD_OUT_DISPLAY = re.compile(r"^(AbrilFatface|BlackOpsOne|Fredoka|Lobster-|Righteous|Teko)", re.IGNORECASE)
# Reserved for evaluation by others (DEVELOPERS.md): never rendered, from any source.
RESERVED = re.compile(r"(Nanum|^Un[A-Z]|Baekmuk|Liberation|^Free(Sans|Serif|Mono)|Nimbus|URW|^C059|^P052|^Z003|"
                      r"Arimo|Tinos|Cousine)", re.IGNORECASE)
# Files whose cmap or drawing is unfit: colour emoji, icon and symbol fonts.
UNFIT = re.compile(r"(Emoji|Icons?|Symbol)", re.IGNORECASE)


def candidate_files() -> list[Path]:
    """Every font file of the broad set that is installed (pip packages and the Debian folders), sorted."""
    site = Path(sysconfig.get_paths()["purelib"])
    roots = [*site.glob("fontpkg_*/files"), *site.glob("pylopdf_fonts_ko"), *site.glob("cvttf_NotoSansCJK_*"),
             *map(Path, DEBIAN_HANGUL_DIRS)]
    files = {p for root in roots if root.is_dir() for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES}
    files |= set(default_font_files())
    return sorted(p for p in files if not RESERVED.search(p.name) and not UNFIT.search(p.name))


class FontSplit(NamedTuple):
    """The broad set's font files: `train`, `held_out` (text and Hangul families the held-out sets draw in) and
    `held_out_display` (display families of heldout_en_display); no file is in two."""
    train: list[Path]
    held_out: list[Path]
    held_out_display: list[Path]


def split_fonts(files: list[Path] | None = None) -> FontSplit:
    """The broad set (or `files`) split into training, held-out and held-out display fonts."""
    files = candidate_files() if files is None else files
    held = [p for p in files if HELD_OUT.match(p.name)]
    display = [p for p in files if HELD_OUT_DISPLAY.match(p.name) and p not in held]
    return FontSplit([p for p in files if p not in held and p not in display], held, display)


def main() -> int:
    train, held, display = split_fonts()
    print(f"training fonts ({len(train)}):", " ".join(p.name for p in train))
    print(f"held-out fonts ({len(held)}):", " ".join(p.name for p in held))
    print(f"held-out display fonts ({len(display)}):", " ".join(p.name for p in display))
    if not any("Serif" in p.name and "KR" in p.name for p in train) or not held:
        print("some broad fonts are missing: run scripts/install_pretrain_fonts.sh", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
