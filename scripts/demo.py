"""`make demo`: the whole pipeline on a small rendered dataset, on CPU, in under 15 minutes (13.4–13.5 in 3 runs).

Renders single English words in one monospaced font, black on white, each at one size and place in a
fixed-width field (a far narrower domain than the benchmark, chosen because the recognition GPT learns it in
CPU minutes; BENCHMARKS.md "What made the demo read" has the measurements behind each choice),
trains the VQ-VAE and the recognition GPT, evaluates on a held-out test set of words the models never saw,
reads a few image files, fine-tunes in reverse and draws a few prompts. Everything lands in outputs/demo/.

    python -m scripts.demo [--output outputs/demo] [--minutes-vqvae 2.25] [--minutes-gpt 6] [--minutes-finetune 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from gpt.pretrained import SHIPPED_MODEL
from scripts.broad_fonts import split_fonts
from scripts.fonts import default_font_files
from scripts.pipeline import Pipeline, StepFailed, print_table, read_json, replace_dir, save_results
from scripts.words import word_split, write_word_list
from vqvae.templates import make_templates

PROMPTS = ["hello", "coffee", "Seoul", "OPEN"]
# Mild classifier-free guidance and a cooler temperature: measured on one 4-minute fine-tune, the best of 4
# candidates read back exactly for 4 of these prompts (0 of 4 at temperature 1 without guidance); after the
# demo's own 3-minute fine-tuning, 2 and 3 of 4 in two runs.
GENERATION = ["--guidance-scale", 1.5, "--temperature", 0.5]
MAX_CHARS = 10  # the longest demo word; the GPT's text part is sized to it (<s> + 10 + </s>), not to 22
# Every crop is extended with background to the aspect of the 4-row template of the VQ-VAE config (4x23 for
# its 96 tokens), so every word lands in that template at one scale and a monospaced glyph always spans the
# same code columns. Measured in 6-minute GPT runs on the same words: tight crops in DejaVu Sans 1.7% exact;
# in fixed-width fields 9.0%; DejaVu Sans Mono in fixed-width fields 24.3% (BENCHMARKS.md). --line-box (one
# glyph size and place, not ink boxes with random margins) took the whole demo from 51-54% to 96.7%.
FONT = "DejaVuSansMono.ttf"
VQ_CONFIG = "config/vqvae-demo.yaml"
FIELD_ROWS = 4
DOMAIN = (f"single English words (up to {MAX_CHARS} characters), DejaVu Sans Mono, black on white, "
          f"at one size and place in a fixed-width field (a printed form's)")


def field_aspect(max_length: int, rows: int = FIELD_ROWS) -> float:
    """Aspect (cols / rows) of the `rows`-row template for `max_length` tokens."""
    for template in make_templates(max_length):
        if template.rows == rows:
            return template.aspect
    raise ValueError(f"max_length={max_length} has no {rows}-row template; pick one of at least "
                     f"{rows * 2} tokens")


def max_time(minutes: float) -> str:
    """Lightning's DD:HH:MM:SS."""
    seconds = int(minutes * 60)
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="outputs/demo", help="output folder (default: %(default)s)")
    parser.add_argument("--num-train", type=int, default=32000, help="rendered training crops")
    parser.add_argument("--num-test", type=int, default=300, help="rendered test crops (unseen words)")
    parser.add_argument("--minutes-vqvae", type=float, default=2.25)
    parser.add_argument("--minutes-gpt", type=float, default=6.0)
    parser.add_argument("--minutes-finetune", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="skip the steps an earlier run of --output finished")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    pipe = Pipeline(out, resume=args.resume)
    data = out / "data"

    # Unseen words: the test set is rendered only from words the training set never contains.
    train_words, test_words = word_split("en", args.seed)
    write_word_list(data / "train_words.txt", train_words)
    write_word_list(data / "test_words.txt", test_words)
    font = [path for path in default_font_files() if path.name == FONT]
    aspect = field_aspect(int(OmegaConf.load(VQ_CONFIG).data.max_length))
    render = ["--languages", "en", "--vertical-share", "0", "--words-only", "--max-chars", MAX_CHARS,
              "--augment", "none", "--min-aspect", f"{aspect:.4f}", "--line-box", "--fonts", *font]
    try:
        pipe.run("render-train", "scripts.render_text", "--output", data / "train", "--num-samples", args.num_train,
                 "--seed", args.seed, "--exclude-words", data / "test_words.txt", *render)
        pipe.run("render-val", "scripts.render_text", "--output", data / "val", "--num-samples", 300,
                 "--seed", args.seed + 1, "--exclude-words", data / "test_words.txt", *render)
        pipe.run("render-test", "scripts.render_text", "--output", data / "test", "--num-samples", args.num_test,
                 "--seed", args.seed + 2, "--words-file", data / "test_words.txt", *render)

        vq_cfg, vq_run = VQ_CONFIG, out / "runs" / "vqvae"
        pipe.run("vqvae-train", "vqvae.train", vq_cfg, f"data.train={data / 'train' / 'labels.csv'}",
                 f"data.val={data / 'val' / 'labels.csv'}", f"run_dir={vq_run}",
                 f"trainer.max_time={max_time(args.minutes_vqvae)}", f"seed={args.seed}")
        vq_ckpt = vq_run / "checkpoints" / "last.ckpt"
        for split in ("train", "val", "test"):
            pipe.run(f"encode-{split}", "vqvae.encode", vq_cfg, vq_ckpt, "--dataset", data / split / "labels.csv",
                     "--output", data / split / "tokens.csv", "--seed", args.seed)

        gpt_run, gpt_export = out / "runs" / "gpt", out / "gpt"
        pipe.run("gpt-train", "gpt.train", "config/gpt2-demo.yaml", f"data.train={data / 'train' / 'tokens.csv'}",
                 f"data.val={data / 'val' / 'tokens.csv'}", f"run_dir={gpt_run}",
                 f"data.max_text_length={MAX_CHARS + 2}", f"trainer.max_time={max_time(args.minutes_gpt)}",
                 f"seed={args.seed}")
        pipe.run("gpt-export", "gpt.export", gpt_run / "config.yaml", gpt_run / "checkpoints" / "last.ckpt",
                 "--output", gpt_export)
        pipe.run("evaluate", "gpt.evaluate", gpt_export, data / "test" / "labels.csv", "--json", out / "eval.json")
        samples = sorted((data / "test" / "images").iterdir())[:8]
        pipe.run("read", "gpt.read", gpt_export, *samples, "--output", out / "read.csv")

        ft_run = out / "runs" / "gpt-finetune"
        pipe.run("finetune", "gpt.finetune", "config/gpt2-demo-finetune.yaml", f"init_from={gpt_export}",
                 f"data.train={data / 'train' / 'tokens.csv'}", f"data.val={data / 'val' / 'tokens.csv'}",
                 f"run_dir={ft_run}", f"data.max_text_length={MAX_CHARS + 2}",
                 f"trainer.max_time={max_time(args.minutes_finetune)}", f"seed={args.seed}")
        replace_dir(ft_run / "export", out / "gpt-finetune")
        pipe.run("generate", "gpt.generate", out / "gpt-finetune", *PROMPTS, "--output", out / "generated",
                 "--num-candidates", 4, "--rerank-with", gpt_export, "--seed", args.seed,
                 *GENERATION)
        broad = read_broad_set(pipe, data, gpt_export, args.seed)
    except StepFailed as error:
        print(f"\ndemo stopped: {error}", file=sys.stderr)
        return 1

    evaluation = read_json(out / "eval.json")
    results = {"evaluation": evaluation, "timings_s": pipe.timings, "total_minutes": pipe.total_minutes(),
               "domain": DOMAIN}
    save_results(out / "results.json", results)
    print(f"\nDemo domain (narrow on purpose): {DOMAIN}; test words never appear in training.")
    rows = [*evaluation["results"], evaluation["combined"]]
    print_table(rows, ["dataset", "samples", "accuracy", "one_minus_ned", "cer", "mean_confidence", "images_per_s"])
    if broad is not None:
        print("\nOrdinary crops (held-out words and fonts, colours, noise, tight and loose crops, phrases): the "
              "shipped model beside the demo's narrow one (accuracy ignores spaces):")
        print_table(broad, ["model", "samples", "accuracy", "one_minus_ned", "cer", "images_per_s"])
    print(f"\nTotal {pipe.total_minutes()} min. Outputs:")
    for label, path in [("recognition export", out / "gpt"), ("text-to-image export", out / "gpt-finetune"),
                        ("evaluation", out / "eval.json"), ("read results", out / "read.csv"),
                        ("VQ-VAE reconstructions (PNG)", out / "runs" / "vqvae" / "samples"),
                        ("generated images (PNG)", out / "generated"), ("summary", out / "results.json"),
                        ("logs", out / "logs")]:
        print(f"  {label:32s} {path}")
    return 0


def read_broad_set(pipe: Pipeline, data: Path, narrow_export: Path, seed: int) -> list[dict] | None:
    """Render a broad held-out set (held-out words of both languages, in the held-out font families when
    installed, medium augmentation) and read it with the shipped model and the demo's narrow one. None when
    this checkout has no shipped model."""
    if not SHIPPED_MODEL.is_dir():
        print(f"no shipped model in {SHIPPED_MODEL}: the broad held-out reading is skipped", file=sys.stderr)
        return None
    held_words = [w for language in ("ko", "en") for w in word_split(language, seed)[1]]
    write_word_list(data / "broad_words.txt", held_words)
    fonts = split_fonts()[1] or default_font_files()  # held-out families, or the defaults if none installed
    pipe.run("render-broad", "scripts.render_text", "--output", data / "broad", "--num-samples", 200,
             "--seed", seed + 3, "--words-file", data / "broad_words.txt", "--fonts", *fonts, ok=(0, 1))
    rows = []
    for name, model in (("shipped (resources/models/ocr-ko-en)", SHIPPED_MODEL), ("demo (narrow)", narrow_export)):
        result = pipe.out_dir / f"eval-broad-{model.name}.json"
        pipe.run(f"evaluate-broad-{model.name}", "gpt.evaluate", model, data / "broad" / "labels.csv",
                 "--json", result, "--ignore-space", ok=(0, 1))
        rows.append({"model": name, **read_json(result)["combined"]})
    return rows


if __name__ == "__main__":
    sys.exit(main())
