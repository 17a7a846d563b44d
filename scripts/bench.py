"""`make bench`: the benchmark recipe on a fixed CPU budget, from rendering to evaluation.

Renders Korean and English words (horizontal and vertical, printed-form crops: see render_domain) with
held-out test words, trains the VQ-VAE, encodes (once plain, once with context pairs), trains a recognition
GPT on each and keeps the one that reads better, fine-tunes it in reverse and measures generation legibility.
Numbers go to outputs/bench/results.json and a Markdown section printed at the end (paste into BENCHMARKS.md); the
exports stay in outputs/bench/gpt and outputs/bench/gpt-finetune for `gpt.evaluate` on other data.

    python -m scripts.bench [--output outputs/bench] [--budget-minutes 75]

The phase budgets scale with --budget-minutes (defaults sum to about 75 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from scripts.demo import GENERATION, field_aspect, max_time
from scripts.pipeline import Pipeline, StepFailed, print_table, read_json, replace_dir, save_results
from scripts.words import word_split, write_word_list

# Share of the budget per training phase; "gpt" is per variant (plain and context). The rest goes to rendering,
# encoding and evaluation: 7 minutes in the measured runs (BENCHMARKS.md).
SHARES = {"vqvae": 0.15, "gpt": 0.29, "finetune": 0.12}
# The rendered domain, the same for training and test crops: single words of up to MAX_CHARS characters, black
# on white in the default fonts, each cropped to its font's line box and extended with background to a
# fixed-width field (the FIELD_ROWS-row template), so a glyph has one size per font and a fixed place. Measured
# (BENCHMARKS.md): ink boxes with random margins under medium or light augmentation left the GPT at 0% exact.
MAX_CHARS, MAX_VERTICAL_CHARS = 10, 4  # 5 stacked syllables would need a longer template than 4
FIELD_ROWS = 5  # 5 x 24 for the 128 tokens of config/vqvae-bench.yaml: a 40 px line, Hangul about 3 code rows high
VQ_CONFIG = "config/vqvae-bench.yaml"

TEST_SETS = {  # name -> (languages, vertical share, word file)
    "ko_horizontal": ("ko", 0.0, "test_words_ko.txt"),
    "ko_vertical": ("ko", 1.0, "test_words_ko.txt"),
    "en": ("en", 0.0, "test_words_en.txt"),
}


def render_domain() -> list:
    """The scripts.render_text flags of the benchmark domain."""
    from omegaconf import OmegaConf

    aspect = field_aspect(int(OmegaConf.load(VQ_CONFIG).data.max_length), FIELD_ROWS)
    return ["--words-only", "--max-chars", MAX_CHARS, "--max-vertical-chars", MAX_VERTICAL_CHARS,
            "--augment", "none", "--line-box", "--min-aspect", f"{aspect:.4f}"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="outputs/bench", help="output folder (default: %(default)s)")
    parser.add_argument("--budget-minutes", type=float, default=75.0, help="total CPU budget the phases share")
    parser.add_argument("--num-train", type=int, default=40000, help="rendered training crops")
    parser.add_argument("--num-test", type=int, default=300, help="crops per held-out test set")
    parser.add_argument("--num-prompts", type=int, default=100, help="unseen prompts for legibility")
    parser.add_argument("--context-pairs", type=int, default=8000, help="context pairs in the second variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="skip the steps an earlier run of --output finished")
    return parser.parse_args(argv)


def trained_steps(run_dir: Path) -> int:
    """Optimizer steps a training run reached: its last checkpoint's global step, else its CSV log's last step
    (a run folder seeded with another run's checkpoint has no log of those steps; a published card once said
    "0 steps" so)."""
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if checkpoint.is_file():
        import torch

        return int(torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"])
    metrics = run_dir / "logs" / "metrics.csv"
    if not metrics.is_file():
        return 0
    frame = pd.read_csv(metrics)
    return int(frame["step"].max()) + 1 if "step" in frame and len(frame) else 0


def read_throughput(pipe: Pipeline, export: Path, image_dirs: list[Path]) -> dict:
    """End-to-end `gpt.read` throughput over the images in `image_dirs`, from its --timing line."""
    pipe.run("read-timing", "gpt.read", export, *image_dirs, "--output", pipe.out_dir / "read.csv", "--timing",
             "--no-progress", check=False)
    log = (pipe.out_dir / "logs" / "read-timing.log").read_text(encoding="utf-8", errors="replace")
    numbers = {}
    for key in ("vq", "gpt", "total"):
        match = re.search(rf"{key}[^\n]*?([\d.]+)\s*images/s", log, flags=re.IGNORECASE)
        if match:
            numbers[f"{key}_images_per_s"] = float(match.group(1))
    return numbers


def tesseract_scores(sets: dict[str, tuple[Path, str, float]], ignore_space: bool = False) -> dict | None:
    """Accuracy of Tesseract on labelled sets {name: (labels.csv, language "ko"/"en", vertical share)}, if it
    is installed (an independent reference). Vertical sets: `-l kor_vert --psm 5` (a vertical block), else `--psm 7`
    (a line)."""
    if shutil.which("tesseract") is None:
        return None
    from gpt.metrics import text_metrics
    from vqvae.plumbing.io import read_labelled_csv

    results = {}
    for name, (csv, language, vertical) in sets.items():
        frame = read_labelled_csv(csv)
        lang = {"ko": "kor_vert" if vertical else "kor", "en": "eng"}[language]
        psm = "5" if vertical else "7"
        predictions, start = [], time.perf_counter()
        for path in frame["abs_path"]:
            out = subprocess.run(["tesseract", path, "-", "-l", lang, "--psm", psm], capture_output=True, text=True)
            predictions.append(" ".join(out.stdout.split()))
        seconds = time.perf_counter() - start
        metrics = text_metrics(predictions, list(frame["text"]), ignore_space=ignore_space)
        metrics["images_per_s"] = len(frame) / seconds
        results[name] = metrics
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    pipe = Pipeline(out, resume=args.resume)
    data = out / "data"
    minutes = {k: args.budget_minutes * v for k, v in SHARES.items()}

    test_words = {}
    for language in ("ko", "en"):
        train, test = word_split(language, args.seed)
        test_words[language] = test
        write_word_list(data / f"test_words_{language}.txt", test)
    write_word_list(data / "test_words_all.txt", test_words["ko"] + test_words["en"])
    exclude = ["--exclude-words", data / "test_words_all.txt"]
    domain = render_domain()

    results: dict = {"machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
                     "budget_minutes": args.budget_minutes, "num_train": args.num_train,
                     "render_flags": " ".join(map(str, domain))}
    try:
        pipe.run("render-train", "scripts.render_text", "--output", data / "train", "--num-samples", args.num_train,
                 "--seed", args.seed, *exclude, *domain)
        pipe.run("render-val", "scripts.render_text", "--output", data / "val", "--num-samples", 1000,
                 "--seed", args.seed + 1, *exclude, *domain)
        for offset, (name, (language, vertical, words)) in enumerate(TEST_SETS.items()):
            pipe.run(f"render-test-{name}", "scripts.render_text", "--output", data / f"test_{name}",
                     "--num-samples", args.num_test, "--seed", args.seed + 10 + offset, "--languages", language,
                     "--vertical-share", vertical, "--words-file", data / words, *domain)

        vq_cfg, vq_run = VQ_CONFIG, out / "runs" / "vqvae"
        pipe.run("vqvae-train", "vqvae.train", vq_cfg, f"data.train={data / 'train' / 'labels.csv'}",
                 f"data.val={data / 'val' / 'labels.csv'}", f"run_dir={vq_run}",
                 f"trainer.max_time={max_time(minutes['vqvae'])}", f"seed={args.seed}")
        vq_ckpt = vq_run / "checkpoints" / "last.ckpt"
        pipe.run("vqvae-measure", "scripts.bench_vqvae", vq_cfg, vq_ckpt, "--dataset", data / "val" / "labels.csv",
                 "--json", out / "vqvae.json")
        pipe.run("tokens-wasted", "scripts.bench_tokens_wasted", "--dataset", data / "val" / "labels.csv",
                 "--json", out / "tokens_wasted.json")
        results["vqvae"] = read_json(out / "vqvae.json")
        results["vqvae"]["train_steps"] = trained_steps(vq_run)
        results["tokens_wasted"] = read_json(out / "tokens_wasted.json")

        pipe.run("encode-train", "vqvae.encode", vq_cfg, vq_ckpt, "--dataset", data / "train" / "labels.csv",
                 "--output", data / "train" / "tokens.csv", "--seed", args.seed)
        pipe.run("encode-train-context", "vqvae.encode", vq_cfg, vq_ckpt, "--dataset", data / "train" / "labels.csv",
                 "--output", data / "train" / "tokens-context.csv", "--context-pairs", args.context_pairs,
                 "--seed", args.seed)
        pipe.run("encode-val", "vqvae.encode", vq_cfg, vq_ckpt, "--dataset", data / "val" / "labels.csv",
                 "--output", data / "val" / "tokens.csv", "--seed", args.seed)

        test_csvs = [data / f"test_{name}" / "labels.csv" for name in TEST_SETS]
        variants = {}
        for variant, tokens in (("plain", "tokens.csv"), ("context", "tokens-context.csv")):
            run = out / "runs" / f"gpt-{variant}"
            pipe.run(f"gpt-train-{variant}", "gpt.train", "config/gpt2-bench.yaml",
                     f"data.train={data / 'train' / tokens}", f"data.val={data / 'val' / 'tokens.csv'}",
                     f"run_dir={run}", f"trainer.max_time={max_time(minutes['gpt'])}", f"seed={args.seed}",
                     # a context pair joins two labels, which may exceed max_text_length: skip those
                     # rows explicitly (listed in run_dir/skipped.csv) rather than fail
                     "data.skip_too_long=true")
            export = out / "runs" / f"gpt-{variant}-export"
            pipe.run(f"gpt-export-{variant}", "gpt.export", run / "config.yaml", run / "checkpoints" / "last.ckpt",
                     "--output", export)
            pipe.run(f"evaluate-{variant}", "gpt.evaluate", export, *test_csvs, "--json", out / f"eval-{variant}.json",
                     "--by", "font", "--by", "label_length")
            evaluation = read_json(out / f"eval-{variant}.json")
            steps = trained_steps(run)
            seconds = pipe.timings[f"gpt-train-{variant}"]
            gpt_cfg = read_yaml(run / "config.yaml")
            seq_len = gpt_cfg["data"]["max_visual_length"] + gpt_cfg["data"]["max_text_length"]
            variants[variant] = {"evaluation": evaluation, "train_steps": steps,
                                 "train_tokens_per_s": round(steps * gpt_cfg["data"]["batch_size"] * seq_len / seconds),
                                 "export": str(export)}
        # "reads better": exact accuracy first, 1-NED to break ties (both are 0 early in training)
        best = max(variants, key=lambda v: (variants[v]["evaluation"]["combined"]["accuracy"],
                                            variants[v]["evaluation"]["combined"]["one_minus_ned"]))
        results["gpt"] = {"variants": variants, "kept": best}
        replace_dir(variants[best]["export"], out / "gpt")

        image_dirs = [data / "test_en" / "images", data / "test_ko_vertical" / "images"]
        results["read"] = read_throughput(pipe, out / "gpt", image_dirs)

        # Unseen words may hold a character no training label had: generation refuses those (it cannot
        # draw what is not in the charset), so prompts come from held-out words the charset covers, no
        # longer than the training words. The fine-tuned export keeps this charset.
        charset = set(read_json(out / "gpt" / "charset.json")["chars"])
        candidates = [w for pair in zip(test_words["ko"], test_words["en"]) for w in pair]
        prompts = [w for w in candidates if set(w) <= charset and len(w) <= MAX_CHARS][: args.num_prompts]
        write_word_list(data / "prompts.txt", prompts)
        outside = sum(not set(w) <= charset for w in candidates)
        results["legibility_prompts"] = {"num_prompts": len(prompts), "languages": "ko and en alternating",
                                         "held_out_words_outside_charset": outside}

        ft_run = out / "runs" / "gpt-finetune"
        pipe.run("finetune", "gpt.finetune", "config/gpt2-bench-finetune.yaml", f"init_from={out / 'gpt'}",
                 f"data.train={data / 'train' / 'tokens.csv'}", f"data.val={data / 'val' / 'tokens.csv'}",
                 f"run_dir={ft_run}", f"trainer.max_time={max_time(minutes['finetune'])}", f"seed={args.seed}",
                 sample_prompts_override(prompts[:4]))
        replace_dir(ft_run / "export", out / "gpt-finetune")
        pipe.run("legibility", "gpt.generate", out / "gpt-finetune", "--prompts-file", data / "prompts.txt",
                 "--output", out / "generated", "--num-candidates", 8, "--batch-size", 64,
                 "--rerank-with", out / "gpt", "--evaluate", "--seed", args.seed, "--tesseract-lang", "kor+eng",
                 *GENERATION)
        results["legibility"] = read_json(out / "generated" / "legibility.json")
        # the step's own timing: a --resume run skips the step but keeps the time it took
        results["legibility"]["images_per_s"] = round(len(prompts) * 8 / pipe.timings["legibility"], 2)
        results["tesseract"] = tesseract_scores({name: (data / f"test_{name}" / "labels.csv", language, vertical)
                                                 for name, (language, vertical, _) in TEST_SETS.items()})
    except StepFailed as error:
        print(f"\nbench stopped: {error}", file=sys.stderr)
        results["stopped"] = str(error)[:2000]
        results["timings_s"] = pipe.timings
        save_results(out / "results.json", results)
        return 1

    results["timings_s"] = pipe.timings
    results["total_minutes"] = pipe.total_minutes()
    save_results(out / "results.json", results)
    print(markdown(results))
    return 0


def sample_prompts_override(prompts: list[str]) -> str:
    """The `samples.prompts=[...]` override for these words, quoted so that `123` or `null` stay strings (a word
    holding a double quote is left out: the bench's words-only domain has none)."""
    return "samples.prompts=[" + ",".join(f'"{w}"' for w in prompts if '"' not in w) + "]"


def read_yaml(path: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def markdown(results: dict) -> str:
    """The BENCHMARKS.md section for these results."""
    lines = [f"Machine: {results['machine']}; budget {results['budget_minutes']} min; "
             f"took {results.get('total_minutes')} min (`make bench`); crops rendered with "
             f"`{results['render_flags']}`.", ""]
    for variant, info in results["gpt"]["variants"].items():
        kept = " (kept)" if variant == results["gpt"]["kept"] else ""
        lines += [f"Recognition, {variant} training data{kept}: {info['train_steps']} steps, "
                  f"{info['train_tokens_per_s']} training tokens/s", ""]
        rows = [*info["evaluation"]["results"], info["evaluation"]["combined"]]
        lines.append(print_table(rows, ["dataset", "samples", "accuracy", "one_minus_ned", "cer",
                                        "mean_confidence", "images_per_s"]))
        lines.append("")
    vq = results["vqvae"]
    lines += [f"VQ-VAE: PSNR {vq['psnr_db']} dB, codebook usage {vq['codebook_usage']:.1%} of {vq['num_codes']} "
              f"(perplexity {vq['codebook_perplexity']}), encode {vq['encode_images_per_s']} images/s, "
              f"{vq['train_steps']} training steps.", ""]
    lines += [f"gpt.read: {results['read']}", "", f"Tokens wasted: {results['tokens_wasted']}", "",
              f"Legibility: {results['legibility']}", "", f"Tesseract: {results['tesseract'] or 'not installed'}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
