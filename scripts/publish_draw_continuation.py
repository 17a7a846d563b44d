"""Publish a drawing model continued outside `make pretrain-draw` (an arm of scripts/paired_draw.sh, fine-tuned
from the published drawing model) when its best-of-8 legibility beats the published model's on the same prompts.

    python -m scripts.publish_draw_continuation outputs/drawrate/B --cores 1 \\
        --history "at a quarter of the peak rate, 60 minutes on one core (scripts/paired_draw.sh)"

    python -m scripts.average_exports OUT/A/run/export OUT/B/run/export --output OUT/soup/run/export
    python -m scripts.bench_draw OUT/soup/run/export --output OUT/soup/bench-run --seed 0
    python -m scripts.publish_draw_continuation OUT/soup/run --arms OUT/A/run OUT/B/run --cores 1 --history "..."

RUN is a gpt.finetune run folder (its export in RUN/export); the pair judged it into OUT/bench-RUN and the
published model into OUT/bench-published (scripts.bench_draw, same prompts and seed, today's recognizer), which
this compares: the arm must read back better than the published model judged there, and than the published
model's own figure. Counts go on from the published model's metrics.json: steps (the run's global step) and
CPU-hours (the run's training hours x --cores); the card's data row counts the shards the run trained on.
With --arms, RUN/export is the mean of those runs' weights (scripts.average_exports; the folder need hold
nothing else): the steps are the longest arm's, the CPU-hours all arms' together, the crops all they trained on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt.pretrained import SHIPPED_DRAW_MODEL
from scripts.pipeline import csv_rows, read_json
from scripts.pretrain_draw import draw_card, training_hours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="gpt.finetune run folder continued from the published drawing model")
    parser.add_argument("--cores", type=int, required=True, help="cores the run (each arm) trained on")
    parser.add_argument("--history", required=True, help="how the run's steps trained, for the model card")
    parser.add_argument("--arms", type=Path, nargs="+", default=None,
                        help="the gpt.finetune runs whose weights' mean RUN/export is; they trained its steps")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from gpt.config import path_list
    from scripts.publish import publish_if_better

    export = args.run / "export"
    summary = read_json(args.run.parent / f"bench-{args.run.name}" / "legibility.json")
    published_here = read_json(args.run.parent / "bench-published" / "legibility.json")
    base = read_json(SHIPPED_DRAW_MODEL / "metrics.json")
    layout = read_json(export / "layout.json")
    if layout["vqvae_fingerprint"] != read_json(SHIPPED_DRAW_MODEL / "layout.json")["vqvae_fingerprint"]:
        raise SystemExit(f"{export} draws another VQ-VAE's codes than {SHIPPED_DRAW_MODEL}: not its continuation")
    trained = args.arms or [args.run]
    steps = base["steps"] + max(int(read_json(run / "export" / "layout.json")["global_step"]) for run in trained)
    cpu_hours = round(base["cpu_hours"] + sum(map(training_hours, trained)) * args.cores, 2)
    shards = {path for run in trained for path in path_list(OmegaConf.load(run / "config.yaml").data.train)}
    rows = csv_rows(sorted(shards))
    score = summary["overall"]["recognizer_exact"]
    baseline = max(published_here["overall"]["recognizer_exact"], base["held_out_score"])
    card = draw_card(summary, steps, cpu_hours, rows, base["steps"], args.history)
    publish_if_better(export, SHIPPED_DRAW_MODEL, score, card, {"steps": steps, "cpu_hours": cpu_hours, **summary},
                      baseline=baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
