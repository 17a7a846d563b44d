"""`make pretrain-draw`: the drawing model, fine-tuned on crops rendered clean, judged and published.

    python -m scripts.pretrain_draw [--output outputs/pretrain-draw] [--minutes 85] [--crops 60000] [--seed 9001]
        [--syllable-share 0.2] [--publish]

Renders --crops crops by `make pretrain`'s rule (its training fonts and texts, its held-out words left out) with no
augmentation, black on white, and 1 000 validation crops (seed + 1), and encodes them with the VQ-VAE of the model
training starts from: the published drawing model when there is one, continued at half the rate
(CONTINUE_OPTIM; its steps and CPU-hours count on from it, OUT/draw-continues.json), else the shipped recognizer
(resources/models/ocr-ko-en). Then gpt.finetune config/gpt2-pretrain-finetune.yaml, text first, then the image
tokens; the time budget becomes a step count once (the learning rate decays to it); running the command again
resumes from OUT/run, and a larger --minutes trains on to the new total (the budget counts the earlier calls'
time). scripts.bench_draw draws 8 candidates for each of 200 held-out prompts and judges the best by the
recognizer and Tesseract (OUT/bench-run). With --publish the published drawer is judged on the same prompts by
today's recognizer (OUT/bench-published) and the export goes to resources/models/ocr-ko-en-draw (with a model card)
when its best-of-8 legibility by the recognizer beats both that and the published card's figure.

Why clean crops: the published drawer continued on them read back 61.0% -> 72.5% (Tesseract 46.0% -> 55.0%) where
its continuations on make pretrain's augmented shards had stalled (session 32, BENCHMARKS.md); a drawer learns the
glyphs, and the rerank wants crisp ones. Another --seed renders other crops for a further continuation;
scripts/paired_draw_clean.sh runs two such continuations side by side and averages them. From the recognizer (no
drawer published), clean crops are unmeasured: the first drawers learnt from augmented shards.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL
from scripts.pipeline import Pipeline, StepFailed, csv_rows, read_json
from scripts.pretrain import BAD_ROWS, CORES, link_fonts, published_vq_config, write_held_out_words
from vqvae.plumbing.cli import run_cli
from vqvae.plumbing.hardware import cpu_has_native_bf16

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
    precision = "bfloat16" if cpu_has_native_bf16() else "float32: this CPU has no native bf16"
    never_drawn = summary.get("never_drawn", "")
    refused = (f" {summary['refused_prompts']} prompts hold a character it never saw drawn ({never_drawn}): refused,"
               f" as gpt.generate refuses them, and counted unread." if summary.get("refused_prompts") else "")
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
  f"the {rows:,} crops rendered clean for it (`make pretrain`'s fonts and texts, black on white, 30% vertical)"},
  as text-then-image sequences; 10% of prompts dropped to the empty text (classifier-free guidance)
- {steps:,} optimizer steps (batch 32) from the recognizer's weights, image loss weighted 4x{
  f" (the last {steps - base_steps:,} continuing the published drawing model {how})" if base_steps else ""}
- compute: {cpu_hours} CPU-hours (each run's training wall hours x the cores it used), no GPU

## Legibility (`python -m scripts.bench_draw`)
{summary['overall']['prompts']} prompts of held-out words (never rendered for training), 1-10 characters, Korean
horizontal and vertical, English in three cases, two-word phrases; {summary['num_candidates']} candidates
each (temperature {summary['sampling']['temperature']}, guidance {summary['sampling']['guidance_scale']}), the
best by the recognizer's rerank judged by the recognizer and by Tesseract (`kor`/`eng --psm 7`, vertical
`kor_vert --psm 5`). Exact match, case-sensitive, spaces ignored.{refused}

| prompts | n | recognizer reads best | any of {summary['num_candidates']} read | Tesseract reads best |
|---|---|---|---|---|
{table}

Speed: {summary['images_per_s']} images/s on {CORES} CPU cores ({precision}), candidates and reranking included.

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
    """CLI entry: 0 ok, 1 a step failed (its log named) or the training fonts are not installed (the fix named)."""
    return run_cli(parse_args, run, argv)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="outputs/pretrain-draw", help="run folder (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=85, help="training time budget (default: %(default)s)")
    parser.add_argument("--crops", type=int, default=60000, help="clean crops rendered to train on")
    parser.add_argument("--seed", type=int, default=9001, help="the crops' render seed (validation's: seed + 1)")
    parser.add_argument("--syllable-share", type=float, default=0.2,
                        help="share of Korean texts drawn as 1-4 syllables uniform over the word pool's")
    parser.add_argument("--num-prompts", type=int, default=200, help="held-out prompts judged")
    parser.add_argument("--publish", action="store_true", help=f"publish an improved model to {SHIPPED_DRAW_MODEL}")
    return parser.parse_args(argv)


def render_clean(pipe: Pipeline, folder: Path, crops: int, seed: int, syllable_share: float, fonts: Path,
                 held_out_words: Path, vq_args: tuple) -> Path:
    """FOLDER/labels.csv: `crops` crops rendered by make pretrain's rule in `fonts`, `held_out_words` left out, with no
    augmentation; then FOLDER/tokens.csv, encoded by `vq_args` (vqvae.encode's config and checkpoint), which this
    returns. Steps are named after the folder, so a second call skips them."""
    pipe.run(f"render-{folder.name}", "scripts.render_text", "--output", folder, "--num-samples", crops,
             "--seed", seed, "--fonts", fonts, "--exclude-words", held_out_words, "--augment", "none",
             "--syllable-share", syllable_share, ok=BAD_ROWS)
    pipe.run(f"encode-{folder.name}", "vqvae.encode", *vq_args, "--dataset", folder / "labels.csv",
             "--output", folder / "tokens.csv", "--skip-bad", ok=BAD_ROWS, after=[f"render-{folder.name}"])
    return folder / "tokens.csv"


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    out = Path(args.output)
    pipe = Pipeline(out, resume=True)
    run_dir, bench = out / "run", out / "bench-run"
    base = continued_draw_row(out, run_dir)
    init, optim = (SHIPPED_DRAW_MODEL, CONTINUE_OPTIM) if base["steps"] else (SHIPPED_MODEL, [])
    try:
        train_fonts = link_fonts(out / "fonts")[0]
        held_out_words = write_held_out_words(out / "data")
        # The drawer draws the codes of the VQ-VAE it was trained with (its strips may differ from the recognizer's:
        # the rerank encodes each drawing anew with the recognizer's).
        vq_args = (published_vq_config(out, init / "vqvae", "init-vqvae.yaml"), init / "vqvae")
        train = render_clean(pipe, out / "data" / "train", args.crops, args.seed, args.syllable_share, train_fonts,
                             held_out_words, vq_args)
        val = render_clean(pipe, out / "data" / "val", 1000, args.seed + 1, 0.2, train_fonts, held_out_words, vq_args)
        pipe.run("train", "gpt.finetune", DRAW_CONFIG, f"init_from={init}", *optim, f"data.train={train}",
                 f"data.val={val}", f"run_dir={run_dir}", f"trainer.max_time={minutes_as_max_time(args.minutes)}",
                 "seed=0", after=["encode-train", "encode-val"])
        pipe.run("bench-run", "scripts.bench_draw", run_dir / "export", "--output", bench, "--num-prompts",
                 args.num_prompts, "--seed", 0, after=["train"])
        if args.publish and base["steps"]:
            pipe.run("bench-published", "scripts.bench_draw", SHIPPED_DRAW_MODEL, "--output", out / "bench-published",
                     "--num-prompts", args.num_prompts, "--seed", 0)
    except StepFailed as error:
        print(f"\npretrain-draw stopped: {error}", file=sys.stderr)
        return 1
    print((out / "logs" / "bench-run.log").read_text(encoding="utf-8").split("\n", 1)[1])
    if args.publish:
        from scripts.publish import publish_if_better

        summary = read_json(bench / "legibility.json")
        steps = base["steps"] + json.loads((run_dir / "export" / "layout.json").read_text())["global_step"]
        cpu_hours = round(base["cpu_hours"] + training_hours(run_dir) * CORES, 2)
        score = summary["overall"]["recognizer_exact"]
        # Unless this folder published it, the published model must be beaten on its card and judged anew here.
        published = read_json(SHIPPED_DRAW_MODEL / "metrics.json") if base["steps"] else {}
        published_here = not base["steps"] or published["steps"] > base["steps"]
        baseline = None if published_here else max(published["held_out_score"], read_json(
            out / "bench-published" / "legibility.json")["overall"]["recognizer_exact"])
        card = draw_card(summary, steps, cpu_hours, csv_rows([train]), base["steps"], "at half the rate")
        publish_if_better(run_dir / "export", SHIPPED_DRAW_MODEL, score, card,
                          {"steps": steps, "cpu_hours": cpu_hours, **summary}, baseline=baseline)
    return 0


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
