"""`make pretrain-draw`: the drawing model, reverse fine-tuned from the shipped recognizer, judged and published.

    python -m scripts.pretrain_draw [--output outputs/pretrain] [--minutes 85] [--publish]

Fine-tunes config/gpt2-pretrain-finetune.yaml from the shipped recognizer (resources/models/ocr-ko-en) to draw text:
text first, then the image tokens, on every token shard `make pretrain` left in OUT/data (run that first: it
renders the shards and encodes them with the shipped VQ-VAE). The time budget becomes a step count once
(the learning rate decays to it); running the command again resumes from OUT/runs/draw, and a larger
--minutes trains on to the new total (the budget counts the earlier calls' time) and judges anew. Then
scripts.bench_draw draws 8 candidates for each of 200 held-out prompts and judges the best by the recognizer
and Tesseract (OUT/draw-bench). With --publish the export goes to resources/models/ocr-ko-en-draw (with a
model card) when its best-of-8 legibility by the recognizer beats the published one's.

When a drawing model is published and OUT holds no drawing run, the folder continues the published model
instead of starting from the recognizer (at half the rate: CONTINUE_OPTIM); its steps and CPU-hours count on
from the published model's (OUT/draw-continues.json), and it is published only if it beats the published
model judged first on the same prompts by today's recognizer (OUT/draw-bench-published). When the recognizer's
VQ-VAE changed since the drawing model was published, the drawing model is first moved onto the new codes
(gpt.recode, into OUT/runs/draw-recoded), each new code's embedding translated from the old codes it covers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL
from scripts.pipeline import Pipeline, StepFailed, csv_rows, read_json
from scripts.pretrain import CORES
from vqvae.plumbing.cli import run_cli

DRAW_CONFIG = "config/gpt2-pretrain-finetune.yaml"
# A warm restart of a published model whose rate ended at its floor: half the peak, as make pretrain does.
CONTINUE_OPTIM = ["optim.lr=7.5e-4"]


def minutes_as_max_time(minutes: float) -> str:
    seconds = int(minutes * 60)
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def training_hours(run_dir: Path) -> float:
    """Wall hours the run trained, over every call that resumed it (Lightning's Timer, kept in last.ckpt)."""
    import torch

    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return float(state["callbacks"]["Timer"]["time_elapsed"]["train"]) / 3600


def draw_card(summary: dict, steps: int, cpu_hours: float, rows: int, base_steps: int = 0,
              how: str = "") -> str:
    """README.md of the published drawing model (`base_steps`: those of the published model it continued; `how`:
    how those last steps trained, e.g. "at half the rate")."""
    def row(name: str, s: dict) -> str:
        tess = f"{100 * s['tesseract_exact']:.1f}%" if "tesseract_exact" in s else "n/a"
        return (f"| {name} | {s['prompts']} | {100 * s['recognizer_exact']:.1f}% | "
                f"{100 * s['any_candidate_exact']:.1f}% | {tess} |")
    table = "\n".join([row("all", summary["overall"]), *(row(k, v) for k, v in summary["by_group"].items()),
                       *(row(k, v) for k, v in summary["by_length"].items())])
    return f"""# ocr-ko-en-draw: draws Korean + English text from a prompt (Inverse DALL-E)

The default model of `python -m gpt.generate "text" --output DIR`. The shipped recognizer
(`resources/models/ocr-ko-en`) fine-tuned in reverse: the prompt's characters first (after `<s>`, or
`<vertical>` for vertical text), then the image tokens of a strip (DESIGN.md §2), decoded by the VQ-VAE in
`vqvae/`. Candidates are reranked by the recognizer reading them back.

## Training (`make pretrain-draw`, scripts/pretrain_draw.py)
- data: {f"the {rows:,} crops its last {steps - base_steps:,} steps trained on; the earlier steps on earlier crops"
  if base_steps else
  f"the {rows:,} rendered crops of `make pretrain`'s shards (broad fonts, colours, noise, 30% vertical)"},
  as text-then-image sequences; 10% of prompts dropped to the empty text (classifier-free guidance)
- {steps:,} optimizer steps (batch 32) from the recognizer's weights, image loss weighted 4x{
  f" (the last {steps - base_steps:,} continuing the published drawing model {how})" if base_steps else ""}
- compute: {cpu_hours} CPU-hours (each run's training wall hours x the cores it used), no GPU

## Legibility (`python -m scripts.bench_draw`)
{summary['overall']['prompts']} prompts of held-out words (never rendered for training), 1-10 characters, Korean
horizontal and vertical, English in three cases, two-word phrases; {summary['num_candidates']} candidates
each (temperature {summary['sampling']['temperature']}, guidance {summary['sampling']['guidance_scale']}), the
best by the recognizer's rerank judged by the recognizer and by Tesseract (`kor`/`eng --psm 7`, vertical
`kor_vert --psm 5`). Exact match, case-sensitive, spaces ignored.

| prompts | n | recognizer reads best | any of {summary['num_candidates']} read | Tesseract reads best |
|---|---|---|---|---|
{table}

Speed: {summary['images_per_s']} images/s on 2 CPU cores, candidates and reranking included.

## Known limits
- Trained for {cpu_hours} CPU-hours: the recognizer reads back
  {100 * summary['overall']['recognizer_exact']:.0f}% of the best drawings exactly, Tesseract
  {100 * summary['overall'].get('tesseract_exact', float('nan')):.0f}%; phrases (two words) and Hangul read back worst.
- The recognizer that reranks is the one that judges, so its figure is optimistic; the
  Tesseract column is the independent one.
- Styles (fonts, and the blur or noise its crops had) come from its training crops, grey only: the crop
  normalization keeps no colour.
"""


def main(argv: list[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 a step failed (its log named), 2 no shards to train on."""
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="outputs/pretrain", help="make pretrain's folder (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=85, help="training time budget (default: %(default)s)")
    parser.add_argument("--num-prompts", type=int, default=200, help="held-out prompts judged")
    parser.add_argument("--publish", action="store_true", help=f"publish an improved model to {SHIPPED_DRAW_MODEL}")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    out = Path(args.output)
    shards = sorted((out / "data").glob("shard_*/tokens.csv"))
    if not shards:
        raise FileNotFoundError(f"no token shards in {out / 'data'}: run make pretrain first (it renders and "
                                f"encodes them)")
    pipe = Pipeline(out, resume=True)
    run_dir, bench = out / "runs" / "draw", out / "draw-bench"
    base = continued_draw_row(out, run_dir)
    init, optim = (SHIPPED_DRAW_MODEL, CONTINUE_OPTIM) if base["steps"] else (SHIPPED_MODEL, [])
    recoded = bool(base["steps"]) and draws_other_codes(shards[0])
    try:
        if recoded:
            # The recognizer moved to a new VQ-VAE since the drawing model was published: the drawing model is
            # moved onto its codes first, each new code's embedding translated from the old codes it covers
            # (gpt.recode; it then drew 46.9% of 64 prompts legibly before any training, 0.0% with new codes
            # drawn at random); onto the same VQ-VAE on thicker strips (vqvae.restrip) every code is kept as it is.
            init = run_dir.with_name("draw-recoded")
            pipe.run("draw-recode", "gpt.recode", SHIPPED_DRAW_MODEL, "--vqvae-of", SHIPPED_MODEL, "--crops",
                     out / "data" / "val" / "labels.csv", "--output", init, "--seed", args.seed)
        if base["steps"]:
            pipe.run("draw-bench-published", "scripts.bench_draw", SHIPPED_DRAW_MODEL, "--output",
                     out / "draw-bench-published", "--num-prompts", args.num_prompts, "--seed", args.seed)
        pipe.run("draw-train", "gpt.finetune", DRAW_CONFIG, f"init_from={init}", *optim,
                 "data.train=" + ",".join(map(str, shards)), f"data.val={out / 'data' / 'val' / 'tokens.csv'}",
                 f"run_dir={run_dir}", f"trainer.max_time={minutes_as_max_time(args.minutes)}", f"seed={args.seed}")
        pipe.run("draw-bench", "scripts.bench_draw", run_dir / "export", "--output", bench, "--num-prompts",
                 args.num_prompts, "--seed", args.seed, after=["draw-train"])
    except StepFailed as error:
        print(f"\npretrain-draw stopped: {error}", file=sys.stderr)
        return 1
    print((out / "logs" / "draw-bench.log").read_text(encoding="utf-8").split("\n", 1)[1])
    if args.publish:
        from scripts.publish import publish_if_better

        summary = read_json(bench / "legibility.json")
        steps = base["steps"] + json.loads((run_dir / "export" / "layout.json").read_text())["global_step"]
        cpu_hours = round(base["cpu_hours"] + training_hours(run_dir) * CORES, 2)
        rows = csv_rows(shards)
        score = summary["overall"]["recognizer_exact"]
        # The published model's own figure came from another judge unless this folder published it.
        published_here = not base["steps"] or read_json(SHIPPED_DRAW_MODEL / "metrics.json")["steps"] > base["steps"]
        baseline = None if published_here else \
            read_json(out / "draw-bench-published" / "legibility.json")["overall"]["recognizer_exact"]
        moved = ", after its codes were translated onto the recognizer's new VQ-VAE (gpt.recode)" if recoded else ""
        card = draw_card(summary, steps, cpu_hours, rows, base["steps"], f"at half the rate{moved}")
        publish_if_better(run_dir / "export", SHIPPED_DRAW_MODEL, score, card,
                          {"steps": steps, "cpu_hours": cpu_hours, **summary}, baseline=baseline)
    return 0


def draws_other_codes(shard: Path) -> bool:
    """Whether the published drawing model draws the codes of another VQ-VAE than the shipped recognizer's, which
    encoded `shard` (a make pretrain folder continuing the published recognizer)."""
    from gpt.pretrained import read_layout
    from vqvae.tokens import read_sidecar

    drawer, recognizer = (read_layout(model)["vqvae_fingerprint"] for model in (SHIPPED_DRAW_MODEL, SHIPPED_MODEL))
    return drawer != recognizer and read_sidecar(shard).get("fingerprint") == recognizer


def continued_draw_row(out: Path, run_dir: Path) -> dict:
    """Steps and CPU-hours this folder's drawing run counts on from: the published drawing model's when the
    folder's first call found one and no run of its own (kept in OUT/draw-continues.json), else zeros."""
    from scripts.publish import continued_counts

    record = out / "draw-continues.json"
    fresh = (run_dir / "checkpoints" / "last.ckpt").is_file() or not (SHIPPED_DRAW_MODEL / "metrics.json").is_file()
    if fresh and not record.is_file():
        return {"steps": 0, "cpu_hours": 0.0}
    return continued_counts(record, SHIPPED_DRAW_MODEL, ("steps", "cpu_hours"))


if __name__ == "__main__":
    sys.exit(main())
