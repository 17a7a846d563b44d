"""Publish the published recognizer's GPT with a distilled encoder (`vqvae.train` with distill_from: the same codes,
read faster), when the pair reads a make pretrain folder's held-out sets better than the published model does.

    python -m scripts.publish_distilled outputs/distill/run16 --pretrain outputs/pretrain --cores 2 \\
        --history "encoder distilled to 16 channels: 2 962 steps on shards 042-043's 6-code tokens"

RUN is the distillation's run folder (its vqvae/ holds the last weights). The export, RUN-export, is the published
GPT as it is on RUN's VQ-VAE stored in bfloat16 (`gpt.recode --vqvae-bf16`, as make pretrain's exports store it),
judged as scripts.publish_continuation judges a continuation. Counts go on from the published metrics.json: the
same GPT steps, chunk and crops; the distillation's steps added to the VQ-VAE's and its hours x --cores to the
CPU-hours (its token CSVs were counted when they were made).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.bench import trained_steps
from scripts.pipeline import read_json
from scripts.pretrain import PUBLISHED
from scripts.pretrain_draw import training_hours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="vqvae.train run folder distilled from the published VQ-VAE")
    parser.add_argument("--pretrain", type=Path, default=Path("outputs/pretrain"),
                        help="the make pretrain folder whose sets judge it")
    parser.add_argument("--cores", type=int, required=True, help="CPU cores the distillation trained on")
    parser.add_argument("--history", required=True, help="one line for the model card: how this version trained")
    parser.add_argument("--real", default="../shared/eval/real", help="folder of the real evaluation sets")
    args = parser.parse_args(argv)
    from gpt.recode import recode_export
    from scripts.publish_continuation import publish_version

    export = args.run.parent / f"{args.run.name}-export"
    recode_export(PUBLISHED, args.run / "vqvae", None, export, vqvae_bf16=True)
    base = read_json(PUBLISHED / "metrics.json")
    counts = {key: base[key] for key in ("chunk", "steps", "gpu_hours", "gpu", "distinct_crops") if key in base}
    counts.update({"cpu_hours": round(base["cpu_hours"] + training_hours(args.run) * args.cores, 3),
                   "vq_steps": base["vq_steps"] + trained_steps(args.run)})
    publish_version(export, counts, args.history, args.pretrain, args.real, PUBLISHED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
