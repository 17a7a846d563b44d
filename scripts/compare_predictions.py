"""Two recognizers' readings of the same crops, crop by crop: per set, the crops only A reads exactly, those only
B reads, and a two-sided sign test on them (the crops both or neither read say nothing about which is better).
The same for two drawing models' best drawings of the same prompts, judge by judge.

    python -m gpt.evaluate A-export SETS... --ignore-space --predictions outputs/cmp/A
    python -m gpt.evaluate B-export SETS... --ignore-space --predictions outputs/cmp/B
    python -m scripts.compare_predictions outputs/cmp/A outputs/cmp/B --json outputs/cmp/compare.json
    python -m scripts.compare_predictions outputs/bench_draw_A outputs/bench_draw_B    # scripts.bench_draw folders
    python -m scripts.compare_predictions outputs/cmp/A outputs/cmp/B --sheet outputs/cmp/differ.png \
        --images outputs/pretrain/data ../shared/eval/real       # the crops only one reads, with both readings

A and B are `gpt.evaluate --predictions` folders of the same labelled CSVs (one DATASET.csv each, `correct`
column); besides each set: the held-out sets pooled (heldout_*), the real ones pooled (real_*) and all. Or both
are `scripts.bench_draw` folders of the same prompts (prompts.csv): a drawing counts as read when the judge (the
recognizer's read-back, Tesseract) spells its prompt, spaces ignored; per judge and prompt group, and per judge
over all prompts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.pipeline import print_table
from scripts.stats import sign_test
from vqvae.plumbing.io import save_image, write_json_atomic


JUDGES = {"recognizer": "read_back", "tesseract": "tesseract"}
DRAWING_POOLS = tuple((f"{judge}_", f"{judge}: all prompts") for judge in JUDGES)
READING_POOLS = (("heldout_", "held-out pooled"), ("real_", "real pooled"))


def read_pair(a_dir: Path, b_dir: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Set name -> (A's, B's) `gpt.evaluate --predictions` frames of the same crops, in the same order."""
    if is_drawing_folder(a_dir):
        return read_drawing_pair(a_dir / "prompts.csv", b_dir / "prompts.csv")
    pairs = {}
    for a_csv in sorted(a_dir.glob("*.csv")):
        if a_csv.name.endswith(".bad.csv"):
            continue
        b_csv = b_dir / a_csv.name
        if not b_csv.is_file():
            raise FileNotFoundError(f"{b_csv} is missing: evaluate the same CSVs in both runs")
        a, b = (pd.read_csv(path, keep_default_na=False) for path in (a_csv, b_csv))
        if list(a["img_path"]) != list(b["img_path"]):
            raise ValueError(f"{a_csv} and {b_csv} list different crops: evaluate the same CSVs in both runs")
        pairs[a_csv.stem] = (a, b)
    if not pairs:
        raise FileNotFoundError(f"no prediction CSVs in {a_dir}: give gpt.evaluate --predictions folders")
    return pairs


def read_drawing_pair(a_csv: Path, b_csv: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """'JUDGE_GROUP' -> (A's, B's) frames with `correct`: whether the judge read each prompt's best drawing."""
    from gpt.drawing import spells

    if not b_csv.is_file():
        raise FileNotFoundError(f"{b_csv} is missing: give two scripts.bench_draw folders")
    a, b = (pd.read_csv(path, keep_default_na=False, dtype=str) for path in (a_csv, b_csv))
    if list(a["prompt"]) != list(b["prompt"]):
        raise ValueError(f"{a_csv} and {b_csv} hold different prompts: run scripts.bench_draw with the same seed")
    pairs = {}
    for judge, column in JUDGES.items():
        if not (a[column].str.len().any() and b[column].str.len().any()):
            continue  # a bench run without Tesseract
        for group in sorted(set(a["group"])):
            inside = a["group"] == group
            pairs[f"{judge}_{group}"] = tuple(
                pd.DataFrame({"correct": list(map(spells, frame[column][inside], frame["prompt"][inside]))})
                for frame in (a, b))
    return pairs


def is_drawing_folder(folder: Path) -> bool:
    """Whether `folder` is a scripts.bench_draw folder (its prompts.csv), not gpt.evaluate --predictions'."""
    return (folder / "prompts.csv").is_file()


def compare(pairs: dict[str, tuple[pd.DataFrame, pd.DataFrame]], drawings: bool = False) -> list[dict]:
    """One row per set, per pool of sets and for all (a judge's pool, for `drawings`: read_drawing_pair's sets): the
    crops each reads exactly, those only one reads, the sign test on those."""
    per_set = {name: pd.DataFrame({"a": a["correct"].astype(bool), "b": b["correct"].astype(bool)})
               for name, (a, b) in pairs.items()}
    groups = dict(per_set)
    for prefix, name in DRAWING_POOLS if drawings else READING_POOLS:
        members = [frame for set_name, frame in per_set.items() if set_name.startswith(prefix)]
        if len(members) > 1:
            groups[name] = pd.concat(members)
    if not drawings:  # two judges' verdicts on the same drawings are not two samples
        groups["all"] = pd.concat(per_set.values())
    rows = []
    for name, frame in groups.items():
        only_a, only_b = int((frame.a & ~frame.b).sum()), int((frame.b & ~frame.a).sum())
        rows.append({"set": name, "crops": len(frame), "A reads": int(frame.a.sum()), "B reads": int(frame.b.sum()),
                     "only A": only_a, "only B": only_b, "sign test p": round(sign_test(only_b, only_a), 4)})
    return rows


def differing_sheet(pairs: dict[str, tuple[pd.DataFrame, pd.DataFrame]], image_roots: list[Path], per_set: int = 8
                    ) -> np.ndarray:
    """A contact sheet of the crops only one of two recognizers reads, at most `per_set` of each set (those only A
    reads first), each captioned with its label and both readings; a set's crops are found in the first of
    `image_roots` holding a folder of its name (the folder its labels.csv is in)."""
    from gpt.drawing import make_sheet
    from vqvae.plumbing.io import load_image

    images, captions = [], []
    for name, (a, b) in pairs.items():
        root = next((r / name for r in image_roots if (r / name).is_dir()), None)
        if root is None:
            raise FileNotFoundError(f"no folder {name}/ in {[str(r) for r in image_roots]}: give --images the "
                                    f"folders that hold each set's labels.csv folder")
        differ = a["correct"].astype(bool) != b["correct"].astype(bool)
        rows = sorted(np.flatnonzero(differ.to_numpy()), key=lambda row: not a["correct"].iat[row])[:per_set]
        for row in rows:
            images.append(load_image(root / a["img_path"].iat[row]))
            captions.append(f"{a['label'].iat[row]} | A: {a['text'].iat[row]} | B: {b['text'].iat[row]}")
    if not images:
        raise ValueError("the two recognizers read the same crops: no sheet to draw")
    return make_sheet(images, captions, columns=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("a", type=Path, help="gpt.evaluate --predictions folder of model A (or its bench_draw folder)")
    parser.add_argument("b", type=Path, help="the same for model B, same CSVs (or prompts)")
    parser.add_argument("--json", type=Path, default=None, help="write the table here as JSON")
    parser.add_argument("--sheet", type=Path, default=None,
                        help="draw the crops only one reads (8 a set), with both readings, into this PNG")
    parser.add_argument("--images", type=Path, nargs="+", default=[Path("outputs/pretrain/data")],
                        help="folders holding each set's folder, for --sheet")
    args = parser.parse_args(argv)
    drawings = is_drawing_folder(args.a)
    if args.sheet and drawings:
        parser.error("--sheet draws recognizers' readings: bench_draw folders have their own sheets")
    pairs = read_pair(args.a, args.b)
    rows = compare(pairs, drawings=drawings)
    print_table(rows, list(rows[0]))
    if args.json:
        write_json_atomic(rows, args.json)
    if args.sheet:
        save_image(args.sheet, differing_sheet(pairs, args.images))
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
