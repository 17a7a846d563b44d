"""Does reading each drawn candidate several times pick drawings an independent engine reads? Rankers compared
on the same candidates.

    python -m scripts.bench_draw_rerank [MODEL_DIR] [--output outputs/draw_rerank] [--num-prompts 200] [--votes 8]

Draws --num-candidates images for each of scripts.bench_draw's held-out prompts (same prompts, sampling and seed),
saves every candidate (OUT/candidates/PPP_K.png) and lets Tesseract read each one: Tesseract judges, it never
ranks. Rankers, each picking one candidate per prompt:

- 1 reading: the shipped recognizer reads each candidate once; exact read-back first, then log p(prompt | image)
  (what gpt.drawing.rerank did until 2026-12-05);
- N readings: the recognizer reads each candidate as it is and N-1 times with its borders moved and colours
  jittered (gpt.drawing.read_copies: the copies gpt.read --votes reads, and the very copies gpt.drawing.rerank
  reads in bench_draw); the candidate read exactly by most copies wins, then the largest mean log p(prompt | copy);
- N readings, the first one first: the same among the candidates the first reading spells, if any (what
  gpt.drawing.rerank does, N = RERANK_READINGS).

For each ranker: the share of prompts whose pick the recognizer reads exactly in one reading (bench_draw's
judge) and the share Tesseract reads exactly, with the prompts Tesseract reads that the one-reading ranker's pick
lost or won and their sign test; beside them the ceiling of any ranker (a candidate of the prompt Tesseract
reads). Exact match, case-sensitive, spaces ignored. Writes OUT/rerank.json, OUT/candidates.csv (with
Tesseract's readings) and OUT/readings.npz (each copy's exactness and log-likelihood); a second call on OUT reuses
the candidates, Tesseract's readings and the recognizer's readings.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from gpt.drawing import (DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, generate_for_prompts, mean_over_readings, read_copies,
                         spells)
from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained
from gpt.sampling import SamplingConfig
from scripts.bench_draw import held_out_prompts, tesseract_judge
from scripts.pipeline import print_table, read_json
from scripts.stats import sign_test
from vqvae.plumbing.io import atomic_path, load_image, save_image, write_csv_atomic, write_json_atomic


def pick(frame: pd.DataFrame, exact: np.ndarray, score: np.ndarray, copies: int, first_first: bool = False
         ) -> pd.Series:
    """Per prompt, the row of its candidate read exactly by most of the first `copies` copies, then with the
    largest mean log-likelihood over them; with `first_first`, among the candidates copy 0 reads exactly first."""
    keyed = frame.assign(first=exact[:, 0] if first_first else False, votes=exact[:, :copies].sum(1),
                         mean_score=mean_over_readings(score[:, :copies]))
    ordered = keyed.sort_values(["prompt_index", "first", "votes", "mean_score"],
                                ascending=[True, False, False, False], kind="stable")
    return ordered.groupby("prompt_index").head(1).index.to_series()


def draw_candidates(args: argparse.Namespace, prompts: list, out: Path) -> pd.DataFrame:
    """Every decodable candidate of every prompt saved as a PNG, with Tesseract's reading: one row each."""
    generator = load_pretrained(args.model_dir, load_tokenizer=False)
    sampling = SamplingConfig(DEFAULT_TEMPERATURE, 0, 1.0, DEFAULT_GUIDANCE, args.seed)
    rows = []
    for vertical in (False, True):
        indices = [i for i, p in enumerate(prompts) if p.vertical == vertical]
        for item in generate_for_prompts(generator, [prompts[i].text for i in indices], args.num_candidates,
                                         sampling, args.batch_size, vertical=vertical):
            if item.image is None:
                continue  # counted below: a prompt with no decodable candidate is a miss for every ranker
            index = indices[item.prompt_index]
            path = out / "candidates" / f"{index:03d}_{item.candidate}.png"
            save_image(path, item.image)
            rows.append({"prompt_index": index, "prompt": prompts[index].text, "group": prompts[index].group,
                         "candidate": item.candidate, "path": str(path)})
    frame = pd.DataFrame(rows)
    frame["tesseract"] = tesseract_judge(frame["path"].tolist(), [prompts[i] for i in frame["prompt_index"]])
    write_csv_atomic(frame, out / "candidates.csv")
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", default=str(SHIPPED_DRAW_MODEL), help="text-to-image export")
    parser.add_argument("--recognizer", default=str(SHIPPED_MODEL), help="recognition export that ranks")
    parser.add_argument("--output", default="outputs/draw_rerank", help="output folder (default: %(default)s)")
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--num-candidates", type=int, default=8)
    parser.add_argument("--votes", type=int, default=8, help="the most readings per candidate compared")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.votes < 1:
        parser.error(f"--votes {args.votes} must be >= 1")
    out = Path(args.output)
    prompts = held_out_prompts(args.num_prompts, args.seed)
    candidates, drawn_by = out / "candidates.csv", {"model": args.model_dir, "prompts": args.num_prompts,
                                                    "candidates": args.num_candidates, "seed": args.seed}
    if candidates.is_file():
        if read_json(out / "candidates.json") != drawn_by:
            parser.error(f"{candidates} holds candidates drawn with {read_json(out / 'candidates.json')}, not "
                         f"{drawn_by}: give another --output")
        frame = pd.read_csv(candidates, keep_default_na=False, dtype={"prompt": str, "tesseract": str})
    else:
        frame = draw_candidates(args, prompts, out)
        write_json_atomic(drawn_by, out / "candidates.json")
    print(f"{len(frame)} decodable candidates for {frame['prompt_index'].nunique()} of {len(prompts)} prompts",
          flush=True)
    frame["tesseract_exact"] = [spells(t, p) for t, p in zip(frame["tesseract"], frame["prompt"])]
    readings = out / "readings.npz"
    saved = dict(np.load(readings)) if readings.is_file() else {}
    if str(saved.get("recognizer", "")) == args.recognizer and saved["exact"].shape[1] >= args.votes:
        exact, score = saved["exact"][:, :args.votes], saved["score"][:, :args.votes]
    else:
        recognizer = load_pretrained(args.recognizer, load_tokenizer=False)
        images = [load_image(path) for path in frame["path"]]
        # the candidates in bench_draw's order, copies seeded as gpt.drawing.rerank seeds them there (seed 0)
        _, exact, score = read_copies(recognizer, images, [None] * len(images), frame["prompt"].tolist(),
                                      args.votes, same_vqvae=False, batch_size=args.batch_size)
        with atomic_path(readings) as tmp, open(tmp, "wb") as file:
            np.savez(file, exact=exact, score=score, recognizer=args.recognizer)
    frame["recognizer_exact"] = exact[:, 0]

    results = []
    counts = sorted({1, 2, 4, args.votes} & set(range(1, args.votes + 1)))
    one = frame.loc[pick(frame, exact, score, 1)].set_index("prompt_index")["tesseract_exact"]
    for copies, first_first in [(c, False) for c in counts] + [(c, True) for c in counts if c > 1]:
        best = frame.loc[pick(frame, exact, score, copies, first_first)]
        name = f"{copies} reading{'s' if copies > 1 else ''}" + (", the first one first" if first_first else "")
        judged = best.set_index("prompt_index")["tesseract_exact"]
        gained, lost = int((judged & ~one).sum()), int((one & ~judged).sum())
        results.append({"ranker": name,
                        "recognizer": best["recognizer_exact"].sum() / len(prompts),
                        "tesseract": best["tesseract_exact"].sum() / len(prompts),
                        **{f"tesseract_{g}": best.loc[best["group"] == g, "tesseract_exact"].sum()
                           / sum(p.group == g for p in prompts) for g in sorted({p.group for p in prompts})},
                        "tesseract_gained_lost": f"+{gained} -{lost}", "sign_test_p": sign_test(gained, lost)})
    ceiling = frame.groupby("prompt_index")[["recognizer_exact", "tesseract_exact"]].any().sum() / len(prompts)
    results.append({"ranker": "ceiling (any candidate)", "recognizer": ceiling["recognizer_exact"],
                    "tesseract": ceiling["tesseract_exact"]})
    write_json_atomic({"model": args.model_dir, "recognizer": args.recognizer, "prompts": len(prompts),
                       "num_candidates": args.num_candidates, "seed": args.seed, "results": results},
                      out / "rerank.json")
    columns = list(results[0])
    print_table([{k: f"{100 * v:.1f}%" if k not in ("ranker", "tesseract_gained_lost", "sign_test_p") else v
                  for k, v in r.items()} for r in results], columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
