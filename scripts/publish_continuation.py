"""Publish a recognizer continued outside `make pretrain` (an arm of scripts/paired_continuation.sh, trained
from the published model on a make pretrain folder's shards) as the published model's next chunk, when it
reads that folder's held-out sets better than the published model does.

    python -m scripts.publish_continuation outputs/depth/B --pretrain outputs/pretrain --cores 1 \\
        --history "paired continuation: 8 x 128 grown from the published 4 x 128, 80 minutes on one core"

RUN is a gpt.train run folder and RUN-export its export (the pair writes both). The export is evaluated as make
pretrain evaluates a chunk (the folder's held-out and real sets, by font and by label length) into
RUN-export.eval.json and compared with the published model scored anew on the same crops. Counts go on
from the published model's metrics.json: GPT steps (the run's global step), CPU-hours (the run's training hours
x --cores, plus the rendering and encoding of the shards it trained on, from the folder's step markers, x the
machine's cores), distinct crops (those shards' rows). A run trained on a lent GPU (scripts/device_pair.sh)
gives --gpu: its training hours count as GPU-hours on that device; --data-cpu-hours gives the rendering and
encoding of shards that make pretrain did not make (no step markers), e.g. re-encoded for another thickness.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from scripts.bench import trained_steps
from scripts.pipeline import csv_rows, read_json
from scripts.pretrain import CORES, DISPLAY_SET, PUBLISHED, REAL_SETS, TEST_SETS, held_out_score
from scripts.pretrain_draw import training_hours


def shard_number(shard: Path) -> int:
    """N of a make pretrain shard folder shard_NNN (rendered with seed 100 + N, trained first by chunk N)."""
    prefix, _, number = shard.name.partition("_")
    if prefix != "shard" or not number.isdigit():
        raise ValueError(f"{shard} is not a make pretrain shard folder (shard_NNN): name a re-encoded shard's folder "
                         f"after the shard it encodes, so its crops are counted once")
    return int(number)


def trained_shards(train: str) -> dict[Path, Path]:
    """The shard folders of a run's data.train, each once, with the first of its token CSVs: a shard may hold more
    than one encoding of its crops (make pretrain's tokens.csv and tokens-augmented.csv, or only one of them), and
    its crops and costs count once."""
    from gpt.config import path_list

    shards: dict[Path, Path] = {}
    for path in map(Path, path_list(train)):
        shards.setdefault(path.parent, path)
    return shards


def lineage_counts(base: dict, shards: dict[Path, Path]) -> tuple[int, int]:
    """(chunk, distinct crops) of a continuation of the published model whose metrics are `base`, trained on
    `shards` (folder -> a token CSV of its crops). The lineage has seen every shard up to its chunk (make
    pretrain's chunk N trains on shards up to N), so only later shards add crops, and the new chunk is the last
    shard trained on: the next make pretrain chunk then renders a new seed. (A continuation on shards 042-043 once
    counted as chunk 42, so the next chunk would have rendered shard 043's crops again.)"""
    numbers = [shard_number(s) for s in shards]
    new = [tokens for (s, tokens), n in zip(shards.items(), numbers) if n > base["chunk"]]
    return max([base["chunk"] + 1, *numbers]), base["distinct_crops"] + csv_rows(new)


def shard_cost(pretrain: Path, shards: Iterable[Path]) -> float:
    """CPU-hours of rendering and encoding `shards` (make pretrain's step markers in pretrain/logs)."""
    seconds = 0.0
    for shard in shards:
        chunk = shard_number(shard)
        for step in (f"render-shard{chunk}", f"encode-shard{chunk}", f"encode-shard{chunk}-augmented"):
            marker = pretrain / "logs" / f"{step}.done"
            if not marker.is_file() and step.endswith("-augmented"):
                continue  # a shard make pretrain encoded before it added the augmented encoding (session 23)
            if not marker.is_file():
                raise FileNotFoundError(f"{marker} is missing: {shard} was not rendered and encoded by make pretrain")
            seconds += float(marker.read_text().split("\n")[0])
    return seconds * CORES / 3600


def judge(export: Path, pretrain: Path, real: str, published: Path) -> tuple[dict, float]:
    """(gpt.evaluate's JSON of `export` on `pretrain`'s held-out and `real`'s sets, by font and label length, kept
    in EXPORT.eval.json; the score it must beat to replace `published`: the published model's on the same crops,
    kept in EXPORT.published.eval.json). Scored anew, not taken from its card: a renderer change or a new held-out
    set since it was published (the tight sets, session 42) changes what its card's score measured."""
    from gpt.evaluate import main as evaluate

    sets = [pretrain / "data" / name / "labels.csv" for name in TEST_SETS]
    sets += [display for display in [pretrain / "data" / DISPLAY_SET / "labels.csv"] if display.is_file()]
    sets += [Path(real) / name / "labels.csv" for name in REAL_SETS if (Path(real) / name).is_dir()]
    scores = {}
    for model, path in ((export, export.with_suffix(".eval.json")),
                        (published, export.with_suffix(".published.eval.json"))):
        if evaluate([str(model), *map(str, sets), "--json", str(path), "--by", "font", "--by", "label_length",
                     "--ignore-space", "--no-progress"]) not in (0, 1):  # 1: some rows were bad, the rest scored
            raise SystemExit(f"gpt.evaluate failed on {model}")
        scores[model] = read_json(path)
    baseline = held_out_score({"accuracy": {r["dataset"]: r["accuracy"] for r in scores[published]["results"]}})
    return scores[export], baseline


def publish_version(export: Path, counts: dict, history: str, pretrain: Path, real: str, published: Path) -> bool:
    """Judge `export` (see judge) and publish it to `published` with its card when it beats the published model;
    `counts`: the card's chunk, steps, CPU- and GPU-hours, crops and VQ-VAE steps; `history`: its line of how
    this version trained. True if published."""
    from scripts.publish import publish_if_better, recognizer_card

    evaluation, baseline = judge(export, pretrain, real, published)
    entry = {**counts, "export": str(export), "accuracy": {r["dataset"]: r["accuracy"] for r in evaluation["results"]}}
    card, metrics = recognizer_card(entry, held_out_score(entry), evaluation, 40000, f"- this version: {history}\n")
    return publish_if_better(export, published, held_out_score(entry), card, metrics, baseline=baseline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="gpt.train run folder continued from the published model")
    parser.add_argument("--pretrain", type=Path, default=Path("outputs/pretrain"),
                        help="the make pretrain folder whose shards it trained on and whose sets judge it")
    parser.add_argument("--cores", type=int, help="CPU cores the run trained on (not with --gpu)")
    parser.add_argument("--gpu", help="the GPU the run trained on, e.g. 'NVIDIA H200' (its hours are GPU-hours)")
    parser.add_argument("--data-cpu-hours", type=float,
                        help="CPU-hours that made the shards, where make pretrain's step markers do not tell")
    parser.add_argument("--history", required=True, help="one line for the model card: how this version trained")
    parser.add_argument("--real", default="../shared/eval/real", help="folder of the real evaluation sets")
    args = parser.parse_args(argv)
    if (args.cores is None) == (args.gpu is None):
        parser.error("give --cores (a CPU run) or --gpu (a GPU run), one of the two")
    from omegaconf import OmegaConf

    export = args.run.parent / f"{args.run.name}-export"
    config = OmegaConf.load(args.run / "config.yaml")
    shards = trained_shards(config.data.train)
    base = read_json(PUBLISHED / "metrics.json")
    hours = training_hours(args.run)
    data_hours = shard_cost(args.pretrain, shards) if args.data_cpu_hours is None else args.data_cpu_hours
    chunk, distinct_crops = lineage_counts(base, shards)
    counts = {"chunk": chunk, "steps": base["steps"] + trained_steps(args.run),
              "cpu_hours": round(base["cpu_hours"] + (0 if args.gpu else hours * args.cores) + data_hours, 3),
              "gpu_hours": round(base.get("gpu_hours", 0.0) + (hours if args.gpu else 0.0), 3),
              "gpu": ", ".join(sorted({*filter(None, [base.get("gpu"), args.gpu])})),
              "distinct_crops": distinct_crops,
              "vq_steps": base["vq_steps"]}
    publish_version(export, counts, args.history, args.pretrain, args.real, PUBLISHED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
