"""Legibility of a drawing model on held-out prompts, judged by the shipped recognizer and by Tesseract.

    python -m scripts.bench_draw [MODEL_DIR] [--output outputs/bench_draw] [--num-prompts 200] [--num-candidates 8]

The prompts are words the pretraining never rendered (the held-out 5% of each language's word list, split
as `make pretrain` splits it), 1 to 10 characters: Korean horizontal and vertical, English in three cases,
and two-word phrases. Each prompt gets --num-candidates images (gpt.generate's library, batched), reranked
by the recognizer; the best one is judged by the recognizer (its read-back) and by Tesseract (`kor` or
`eng`, `--psm 7`; vertical Korean `kor_vert --psm 5`) when it is installed. Exact match, case-sensitive,
spaces ignored. Speed is images per second, every candidate and the reranking included.

A prompt holding a character the drawer never saw drawn (its layout.json's `undrawn_chars`) is refused, as
gpt.generate refuses it, and counts as unread.

Writes OUT/legibility.json (overall, by orientation and language, by length), OUT/prompts.csv (each
prompt's best read-backs) and OUT/sheet.png (a contact sheet of best candidates), and prints a Markdown
table. MODEL_DIR defaults to the shipped drawing model.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gpt.drawing import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, Generated, generate_for_prompts, make_sheet, rerank
from gpt.legibility import tesseract_read, tesseract_status
from gpt.metrics import text_metrics
from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained
from gpt.sampling import SamplingConfig
from scripts.pipeline import print_table
from scripts.words import script_of, word_split
from vqvae.plumbing.io import save_image, write_csv_atomic, write_json_atomic

# Shares of the prompt set; the rest is Korean horizontal.
SHARES = {"ko_vertical": 0.2, "en": 0.3, "phrase": 0.1}
LENGTH_BINS = ((1, 2), (3, 4), (5, 6), (7, 10))


@dataclass
class Prompt:
    text: str
    group: str  # ko_horizontal, ko_vertical, en, phrase
    vertical: bool


def held_out_prompts(num: int, seed: int = 0) -> list[Prompt]:
    """`num` prompts of held-out words (scripts.pretrain's split, seed 0), 1-10 characters, seeded."""
    rng = random.Random(seed)
    held = {language: [w for w in word_split(language)[1] if len(w) <= 10]
            for language in ("ko", "en")}
    counts = {group: round(num * share) for group, share in SHARES.items()}
    counts["ko_horizontal"] = num - sum(counts.values())
    prompts = [Prompt(w, "ko_horizontal", False) for w in rng.sample(held["ko"], counts["ko_horizontal"])]
    prompts += [Prompt(w, "ko_vertical", True) for w in rng.sample(held["ko"], counts["ko_vertical"])]
    for word in rng.sample(held["en"], counts["en"]):
        case = rng.choice((str.lower, str.title, str.upper))
        prompts.append(Prompt(case(word), "en", False))
    while sum(p.group == "phrase" for p in prompts) < counts["phrase"]:
        language = rng.choice(("ko", "en"))
        text = " ".join(rng.sample(held[language], 2))
        if len(text) <= 10:
            prompts.append(Prompt(text if language == "ko" else text.title(), "phrase", False))
    return prompts


def tesseract_judge(paths: list[str], prompts: list[Prompt]) -> list[str] | None:
    """Tesseract's reading of each best image (Korean: kor, vertical kor_vert; else eng), or None."""
    available, reason = tesseract_status("kor+kor_vert+eng")
    if not available:
        print(f"Tesseract skipped: {reason}", file=sys.stderr)
        return None
    texts = [""] * len(paths)
    for language, vertical in (("kor", False), ("kor_vert", True), ("eng", False)):
        rows = [i for i, p in enumerate(prompts) if p.vertical == vertical
                and (language == "eng") == (script_of(p.text) == "en")]
        for row, text in zip(rows, tesseract_read([paths[i] for i in rows], language, psm=5 if vertical else 7)):
            texts[row] = text
    return texts


def shown_path(path: str) -> str:
    """`path` relative to the repository when inside it: what the results record must hold on any machine."""
    resolved, root = Path(path).resolve(), Path(__file__).resolve().parents[1]
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def scores(frame: pd.DataFrame, has_tesseract: bool) -> dict:
    ours = text_metrics(frame["read_back"].tolist(), frame["prompt"].tolist(), ignore_space=True)
    out = {"prompts": len(frame), "recognizer_exact": ours["accuracy"], "recognizer_1_ned": ours["one_minus_ned"],
           "any_candidate_exact": float(frame["any_exact"].mean())}
    if has_tesseract:
        found = text_metrics(frame["tesseract"].tolist(), frame["prompt"].tolist(), ignore_space=True)
        out.update(tesseract_exact=found["accuracy"], tesseract_1_ned=found["one_minus_ned"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=str(SHIPPED_DRAW_MODEL), help="text-to-image export")
    parser.add_argument("--recognizer", default=str(SHIPPED_MODEL), help="recognition export that reranks and judges")
    parser.add_argument("--output", default="outputs/bench_draw", help="output folder (default: %(default)s)")
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--num-candidates", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--guidance-scale", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-tesseract", action="store_true", help="judge by the recognizer only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.output)
    generator = load_pretrained(args.model_dir, load_tokenizer=False)
    recognizer = load_pretrained(args.recognizer, load_tokenizer=False)
    prompts = held_out_prompts(args.num_prompts, args.seed)
    sampling = SamplingConfig(args.temperature, args.top_k, 1.0, args.guidance_scale, args.seed)

    start = time.perf_counter()
    items: list[Generated] = []
    # A prompt with a character the drawer never saw drawn is refused (gpt.drawing.check_prompts) and counts unread.
    refused = [not generator.undrawn_chars.isdisjoint(p.text) for p in prompts]
    never_drawn = "".join(sorted({c for p in prompts for c in p.text} & generator.undrawn_chars))
    for vertical in (False, True):
        rows = [i for i, p in enumerate(prompts) if p.vertical == vertical and not refused[i]]
        if not rows:
            continue
        drawn = generate_for_prompts(generator, [prompts[i].text for i in rows], args.num_candidates, sampling,
                                     args.batch_size, vertical=vertical)
        for item in drawn:
            item.prompt_index = rows[item.prompt_index]
        items += drawn
    rerank(items, recognizer, generator.fingerprint, args.batch_size)
    seconds = time.perf_counter() - start

    best = {item.prompt_index: item for item in items if item.is_best}
    paths = []
    for index in range(len(prompts)):
        path = out / "best" / f"{index:03d}.png"
        if index in best:
            save_image(path, best[index].image)
        paths.append(str(path) if index in best else "")
    tesseract = None if args.no_tesseract else tesseract_judge(paths, prompts)
    frame = pd.DataFrame({
        "prompt": [p.text for p in prompts], "group": [p.group for p in prompts],
        "length": [len(p.text) for p in prompts], "refused": refused, "path": paths,
        "read_back": [best[i].read_back if i in best else "" for i in range(len(prompts))],
        "any_exact": [any(it.exact for it in items if it.prompt_index == i) for i in range(len(prompts))],
        "tesseract": tesseract if tesseract is not None else [""] * len(prompts)})
    write_csv_atomic(frame, out / "prompts.csv")
    has_tesseract = tesseract is not None
    bins = {f"{low}-{high} chars": frame[(frame["length"] >= low) & (frame["length"] <= high)]
            for low, high in LENGTH_BINS}
    summary = {
        "model": shown_path(args.model_dir), "recognizer": shown_path(args.recognizer),
        "num_candidates": args.num_candidates,
        "sampling": {"temperature": args.temperature, "top_k": args.top_k, "guidance_scale": args.guidance_scale,
                     "seed": args.seed},
        "refused_prompts": sum(refused), "never_drawn": never_drawn, "images_per_s": round(len(items) / seconds, 2),
        "seconds": round(seconds, 1),
        "overall": scores(frame, has_tesseract),
        "by_group": {g: scores(f, has_tesseract) for g, f in frame.groupby("group")},
        "by_length": {name: scores(f, has_tesseract) for name, f in bins.items() if len(f)}}
    write_json_atomic(summary, out / "legibility.json")

    shown = list(range(0, len(prompts), max(1, len(prompts) // 48)))[:48]
    shown = [i for i in shown if i in best]
    captions = [f"{prompts[i].text} > {frame['read_back'][i]}"
                + (f" | T: {frame['tesseract'][i]}" if has_tesseract else "") for i in shown]
    save_image(out / "sheet.png", make_sheet([best[i].image for i in shown], captions, columns=6, tile_width=200))

    rows = [{"set": name, **{k: f"{100 * v:.1f}%" if k != "prompts" else v for k, v in s.items()}}
            for name, s in [("all", summary["overall"]), *summary["by_group"].items(), *summary["by_length"].items()]]
    columns = ["set", "prompts", "recognizer_exact", "any_candidate_exact", "recognizer_1_ned"]
    columns += ["tesseract_exact", "tesseract_1_ned"] if has_tesseract else []
    print_table(rows, columns)
    print(f"\n{len(items)} images ({args.num_candidates} per prompt, reranked) in {seconds:.1f} s: "
          f"{summary['images_per_s']} images/s; {sum(refused)} prompt(s) refused, unread (never drawn in training: "
          f"{never_drawn or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
