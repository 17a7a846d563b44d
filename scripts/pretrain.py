"""`make pretrain`: the broad-domain Korean + English recognizer, trained in resumable chunks and published.

    python -m scripts.pretrain [--output outputs/pretrain] [--chunks 2] [--hours H] [--publish] [--fresh]

Once: split the word lists (5% of each language held out), render the held-out test sets from held-out
words in held-out font families (scripts/broad_fonts.py), render the VQ-VAE's crops from the training fonts
and train the VQ-VAE (config/vqvae-pretrain.yaml). Then each chunk renders a new shard of broad crops (new
seed: every chunk adds distinct crops), encodes it, trains the GPT (config/gpt2-pretrain.yaml) on the last
--window shards up to the chunk's step count, exports it, and evaluates it on the held-out sets and the real
crops of ../shared/eval/real (evaluation only). Every finished step leaves a marker in OUT/logs, so running
the command again continues where it stopped (the GPT from its last.ckpt). With no VQ-VAE run in OUT (a new
machine or session) it continues from the published model instead: its VQ-VAE encodes the new shards, its GPT
weights start a new run with its own rate schedule and loss weights (CONTINUE_OVERRIDES), and chunks, steps,
distinct crops and CPU-hours count on from the published model's (OUT/continues.json), so new shards are new
crops.
`rm -rf OUT` starts over from there; `--fresh` (first call on a new OUT) trains a new VQ-VAE instead, for a
change of recipe that changes the codes, and starts the GPT from the published one moved onto the new codes
(gpt.train translates each code's embedding from the old codes it covers; from scratch when nothing is
published); its counts too go on from the published model's.

OUT/curve.json and OUT/curve.png hold exact accuracy per held-out set against CPU-hours (wall hours x the
cores used). With --publish the best chunk is copied to resources/models/ocr-ko-en (safetensors, with a
model card) when its held-out accuracy beats the published model's.
"""
from __future__ import annotations

import argparse
import os
import string
import sys
import time
from pathlib import Path

from scripts.bench import trained_steps
from scripts.broad_fonts import split_fonts
from scripts.pipeline import Pipeline, StepFailed, print_table, read_json
from scripts.words import word_pool, word_split, write_word_list
from vqvae.plumbing.io import write_json_atomic

VQ_CONFIG, GPT_CONFIG = "config/vqvae-pretrain.yaml", "config/gpt2-pretrain.yaml"
PUBLISHED = Path("resources/models/ocr-ko-en")
REAL_SETS = ("real_en", "real_ko", "real_ko_plates")
TEST_SETS = {  # name -> (languages, vertical share, share of crops cut at the ink)
    "heldout_ko_horizontal": ("ko", 0.0, 0.0),
    "heldout_ko_vertical": ("ko", 1.0, 0.0),
    "heldout_en": ("en", 0.0, 0.0),
    # The same texts in the same fonts, every crop cut at its ink (render_text --tight-share), as text detectors' tight
    # boxes cut them: rendered only with margins of 2-25% of the font size, the held-out sets never asked for it,
    # and the chunk-69 model read them 7-14 points worse (BENCHMARKS.md, session 42).
    "heldout_ko_horizontal_tight": ("ko", 0.0, 1.0),
    "heldout_ko_vertical_tight": ("ko", 1.0, 1.0),
    "heldout_en_tight": ("en", 0.0, 1.0),
}
TIGHT = "_tight"
# The held-out English words (heldout_en's texts, seed and settings) in held-out display families
# (scripts.broad_fonts.HELD_OUT_DISPLAY): the held-out sets' families are text faces, and signs are lettered in display
# ones. Scored and reported beside the held-out sets, not in held_out_score, which stays comparable across versions.
DISPLAY_SET = "heldout_en_display"
CORES = len(os.sched_getaffinity(0))
# What a run continued from the published model changes (its cosine ended at its floor): a warm restart at a quarter of
# the peak rate, decaying over four chunks (what one 180-minute session trains: a chunk took 30 minutes on 2 cores in
# session 19, which trained four, and a cosine cut short by the session's end leaves the rate high; it was five chunks,
# then three), and the image-token loss at a quarter weight. At half the peak every restart first lost 5-14 points for
# one to four chunks; from the chunk-35 model a quarter dipped for a third of its 12 154 steps and read 5.0 points more
# after 80 minutes on one core (BENCHMARKS.md, session 9: not paired with half the peak on the same crops); from chunk
# 43, three chunks of 12 000 steps dipped for one and read 4.5 points more (session 19). Raising the rate from 0.12 to
# 0.62 of the peak at chunk 9 cost 5 points of held-out mean for two chunks, then passed the old curve; the six-chunk
# restart of chunks 20-25 ended 5.4 points higher, the seven-chunk one of chunks 26-32 0.1. From the chunk-32 model, 24
# minutes of such a restart read 48.1% with the image loss at full weight, 50.1% at 0.25 and at 0 (same crops, side by
# side; BENCHMARKS.md); full weight stays the default of a run from scratch, where it made glyphs learnable. From chunk
# 51, a restart at 2e-4 skipped the dip and led on validation for 7 000 steps, then tied 5e-4 at 10 000 (session 22):
# a session's chunks run 12 000 steps or more, so 5e-4 stays.
CONTINUE_OVERRIDES = ["optim.lr=5.0e-4", "optim.decay_steps=16000", "loss.image_weight=0.25"]
# What a --fresh run's GPT changes, moved onto new codes from the published model: the full rate and image-token
# loss of a run from scratch (the pair ran with both, its code embeddings then at random), decaying over three
# chunks (an hour on 2 cores: what a session trains). The pair's 24-minute cosine ended at 49.4%; a first chunk at
# 0.9 of the peak rate, on a five-chunk cosine, read 27.1% (BENCHMARKS.md).
FRESH_OVERRIDES = ["optim.decay_steps=12000"]
# Exit 1: the command finished and listed some bad rows (a font that drew no ink for a text, a crop that
# cannot be normalized) in its .bad.csv; the rest of the data is complete.
BAD_ROWS = (0, 1)
AUGMENTED_TOKENS = "tokens-augmented.csv"  # a shard's second encoding, beside tokens.csv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="outputs/pretrain", help="run folder (default: %(default)s)")
    parser.add_argument("--chunks", type=int, default=2, help="chunks to train in this call (default: %(default)s)")
    parser.add_argument("--hours", type=float, default=None, help="start no new chunk after this many hours")
    parser.add_argument("--shard-size", type=int, default=40000, help="new crops rendered per chunk")
    parser.add_argument("--steps-per-chunk", type=int, default=4000, help="GPT optimizer steps per chunk")
    parser.add_argument("--window", type=int, default=3, help="a chunk trains on its last N shards")
    parser.add_argument("--vq-crops", type=int, default=24000, help="crops the VQ-VAE trains on")
    parser.add_argument("--num-test", type=int, default=300, help="crops per held-out test set")
    parser.add_argument("--real", default="../shared/eval/real", help="folder of the real evaluation sets")
    parser.add_argument("--publish", action="store_true", help=f"publish an improved model to {PUBLISHED}")
    parser.add_argument("--fresh", action="store_true",
                        help="train a new VQ-VAE in OUT instead of encoding with the published one (a recipe change "
                             "that changes the codes, e.g. config/vqvae-pretrain.yaml); the GPT starts from the "
                             "published one moved onto the new codes; later calls on OUT go on with that run")
    parser.add_argument("--tesseract", action="store_true", help="also score Tesseract on the held-out sets")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def link_fonts(folder: Path) -> tuple[Path, Path, Path]:
    """Folders of links to the training, held-out and held-out display fonts (`render_text --fonts` takes a folder),
    each holding exactly its part of `split_fonts()`: a link a new rule moved elsewhere is removed."""
    split = split_fonts()
    if not split.held_out or len(split.train) < 20:
        raise StepFailed(f"only {len(split.train)} training and {len(split.held_out)} held-out fonts are installed: "
                         f"run scripts/install_pretrain_fonts.sh (pip and Debian fonts)")
    folders = []
    for name, files in zip(("train", "heldout", "heldout_display"), split):
        (folder / name).mkdir(parents=True, exist_ok=True)
        names = {path.name for path in files}
        for link in (folder / name).iterdir():
            if link.is_symlink() and link.name not in names:
                link.unlink()
        for path in files:
            link = folder / name / path.name
            if not link.is_symlink():
                link.symlink_to(path.resolve())
        folders.append(folder / name)
    return folders[0], folders[1], folders[2]


def shard_render_args(out: Path, chunk: int, size: int = 40000, seed: int = 0) -> list:
    """`scripts.render_text` arguments of chunk `chunk`'s shard in run folder `out`: `size` new crops (seed 100 +
    chunk, so no two chunks render the same crops) in the training fonts, the held-out words left out, with heavy
    augmentation (session 24's pair: a heavy shard beside a medium one read 9 more of 305 real crops and 7 more of
    900 held-out ones than two medium shards; the held-out and validation sets stay medium), and a fifth of the
    Korean texts 1-4 syllables drawn uniformly (session 26's pair: a shard at 0.4 beside a plain one, the same share
    over the two, read 38 more of 900 held-out crops than two plain shards, p 0.0001; session 31's, 0.5 against 0.2,
    only 4 more, noise), and a quarter of the crops cut at their ink (session 42: chunk 69 continued on a shard with
    half of its crops tight beside one with none read 53 more of the 900 tight held-out crops, 4 more of the 900 loose
    ones, the real crops the same). The one place this rule lives:
    scripts/cpu_continuation.sh renders its shards with it too."""
    data = out / "data"
    return ["--output", data / f"shard_{chunk:03d}", "--num-samples", size, "--seed", seed + 100 + chunk,
            "--fonts", out / "fonts" / "train", "--exclude-words", data / "heldout_words_all.txt", "--augment", "heavy",
            "--syllable-share", 0.2, "--tight-share", 0.25]


def shard_encodings(shard: Path) -> list[Path]:
    """The token CSVs a shard trains with: tokens.csv, and its augmented encoding where it has one (a shard
    encoded before session 23 has none)."""
    augmented = shard / AUGMENTED_TOKENS
    return [shard / "tokens.csv", *([augmented] if augmented.is_file() else [])]


def write_held_out_words(data: Path, seed: int = 0) -> Path:
    """The words never rendered for training, 5% of each language's wordfreq top 20 000 (split by `seed`): written to
    DATA/heldout_words_{ko,en}.txt, which the held-out sets draw from, and DATA/heldout_words_all.txt, which every
    training render leaves out (`render_text --exclude-words`) and this returns."""
    data.mkdir(parents=True, exist_ok=True)
    held_words = {language: word_split(language, seed)[1] for language in ("ko", "en")}
    for language, words in held_words.items():
        write_word_list(data / f"heldout_words_{language}.txt", words)
    write_word_list(data / "heldout_words_all.txt", held_words["ko"] + held_words["en"])
    return data / "heldout_words_all.txt"


def write_charset(path: Path, words: list[str]) -> None:
    """Every character the renderer can draw from the pools, plus printable ASCII: a charset fixed before
    the first chunk, so later shards never change the model's ids."""
    chars = set("".join(words)) | set(string.printable.strip()) | set("₩·%&")
    path.write_text("".join(sorted(chars)), encoding="utf-8")


def cpu_hours(pipe: Pipeline) -> float:
    """Wall hours of every finished step of the recognizer (this call's and earlier calls'; not those of
    make pretrain-draw, which shares the folder), times the cores used."""
    seconds = sum(float(p.read_text().split("\n")[0]) for p in (pipe.out_dir / "logs").glob("*.done")
                  if not p.name.startswith("draw-"))
    return round(seconds * CORES / 3600, 3)


def fresh_run(out: Path, fresh: bool) -> bool:
    """Whether OUT trains its own VQ-VAE: asked for with --fresh at its first call, and remembered (in
    OUT/fresh) so a later call, or one after an interruption during the VQ-VAE, does not continue the published
    model instead. StepFailed for --fresh on a folder that already continues the published model."""
    marker = out / "fresh"
    if fresh and not marker.is_file():
        if (out / "continues.json").is_file():
            raise StepFailed(f"{out} already continues the published model ({out / 'continues.json'}); "
                             f"give --fresh a new --output folder")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("this folder trains its own VQ-VAE (python -m scripts.pretrain --fresh)\n")
    return marker.is_file()


def published_vq_config(out: Path, vqvae_dir: Path | None = None, name: str = "published-vqvae.yaml") -> Path:
    """A training config that loads a published VQ-VAE folder (default the recognizer's), for `vqvae.encode`:
    config/vqvae-pretrain.yaml with the model block and max_length recorded in the folder, so a new recipe in that
    file (for --fresh runs) does not stop continuations of the published model. Keys the folder leaves out (an older
    folder, such as the drawer's, has no line_codes) take ModelConfig's defaults, as loading the folder does, never
    the recipe's. Written to OUT/NAME."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from vqvae.checkpoint import read_vqvae_dir_config
    from vqvae.config import ModelConfig
    from vqvae.plumbing.config import save_config

    saved = read_vqvae_dir_config(vqvae_dir or PUBLISHED / "vqvae")
    model = {**asdict(ModelConfig()), **saved["model"]}
    config = OmegaConf.merge(OmegaConf.load(VQ_CONFIG), {"model": model, "data": {"max_length": saved["max_length"]}})
    save_config(config, out / name)
    return out / name


def chunks_done(out: Path) -> int:
    return len(list((out / "logs").glob("evaluate-chunk*.done")))


def continued_row(out: Path, from_published: bool) -> dict:
    """Where this folder's counts start: the published model's chunk, steps, distinct crops, CPU-hours (and
    GPU-hours, where its lineage had some) and VQ-VAE steps when the folder continues it (kept in
    OUT/continues.json at its first call, since publishing later replaces the published model), else zeros with
    chunk -1."""
    from scripts.publish import continued_counts

    record = out / "continues.json"
    if not from_published and not record.is_file():
        return {"chunk": -1, "steps": 0, "distinct_crops": 0, "cpu_hours": 0.0, "vq_steps": 0}
    return continued_counts(record, PUBLISHED, ("chunk", "steps", "distinct_crops", "cpu_hours", "vq_steps",
                                                "gpu_hours", "gpu"))


def draw_curve(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name in curve[-1]["accuracy"]:  # a set added later (heldout_en_display) starts where it was first scored
        points = [(c["cpu_hours"], 100 * c["accuracy"][name]) for c in curve if name in c["accuracy"]]
        axis.plot(*zip(*points), marker="o", label=name)
    axis.set_xlabel("CPU-hours (wall hours x cores)")
    axis.set_ylabel("exact accuracy (%)")
    axis.set_title("make pretrain: held-out fonts and words, and real crops")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def held_out_score(entry: dict) -> float:
    """What publishing compares: mean exact accuracy over the held-out synthetic sets."""
    return sum(entry["accuracy"][name] for name in TEST_SETS) / len(TEST_SETS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    pipe = Pipeline(out, resume=True)
    data, runs = out / "data", out / "runs"
    start = time.monotonic()
    try:
        train_fonts, held_fonts, display_fonts = link_fonts(out / "fonts")
        write_held_out_words(data, args.seed)
        write_charset(data / "charset.txt", word_pool("ko", 20000) + word_pool("en", 20000))
        exclude = ["--exclude-words", data / "heldout_words_all.txt"]

        for name, (language, vertical, tight) in TEST_SETS.items():
            offset = list(TEST_SETS).index(name.removesuffix(TIGHT))  # a tight set: its loose twin's seed and texts
            pipe.run(f"render-{name}", "scripts.render_text", "--output", data / name, "--num-samples", args.num_test,
                     "--seed", args.seed + 10 + offset, "--languages", language, "--vertical-share", vertical,
                     "--words-file", data / f"heldout_words_{language}.txt", "--words-only",
                     "--max-vertical-chars", 6, "--fonts", held_fonts,
                     *(["--tight-share", tight] if tight else []), ok=BAD_ROWS)  # a loose set's command as it was
        pipe.run(f"render-{DISPLAY_SET}", "scripts.render_text", "--output", data / DISPLAY_SET, "--num-samples",
                 args.num_test, "--seed", args.seed + 10 + list(TEST_SETS).index("heldout_en"), "--languages", "en",
                 "--vertical-share", 0.0, "--words-file", data / "heldout_words_en.txt", "--words-only",
                 "--max-vertical-chars", 6, "--fonts", display_fonts, ok=BAD_ROWS)
        pipe.run("render-val", "scripts.render_text", "--output", data / "val", "--num-samples", 1000,
                 "--seed", args.seed + 2, "--fonts", train_fonts, *exclude, ok=BAD_ROWS)
        vq_run, gpt_run = runs / "vqvae", runs / "gpt"
        # A new run folder (a new machine, a new session) continues from the published model when there is
        # one: its VQ-VAE encodes, and its GPT is where training starts. A --fresh folder trains its own VQ-VAE
        # and starts its GPT from the published one too, moved onto the new codes (gpt.train translates the code
        # embeddings on another VQ-VAE's tokens; with them at random, 24 minutes read 49.4% of the held-out crops
        # where the same GPT from scratch read 0.2%, BENCHMARKS.md).
        from_published = (not fresh_run(out, args.fresh) and not (vq_run / "checkpoints" / "last.ckpt").is_file()
                          and (PUBLISHED / "vqvae").is_dir())
        gpt_resumes = (gpt_run / "checkpoints" / "last.ckpt").is_file()
        gpt_from_published = ((out / "continues.json").is_file()
                              or (not gpt_resumes and (PUBLISHED / "config.json").is_file()))
        if from_published:
            print(f"no VQ-VAE run in {vq_run}: continuing from the published model {PUBLISHED}", flush=True)
            vq_args = (published_vq_config(out), PUBLISHED / "vqvae")
        else:
            pipe.run("render-vq-train", "scripts.render_text", "--output", data / "vq_train", "--num-samples",
                     args.vq_crops, "--seed", args.seed + 1, "--fonts", train_fonts, *exclude, ok=BAD_ROWS)
            pipe.run("vqvae-train", "vqvae.train", VQ_CONFIG, f"data.train={data / 'vq_train' / 'labels.csv'}",
                     f"data.val={data / 'val' / 'labels.csv'}", f"run_dir={vq_run}", f"seed={args.seed}")
            vq_args = (vq_run / "config.yaml", vq_run / "checkpoints" / "last.ckpt")
        base = continued_row(out, gpt_from_published)
        init = [f"init_from={PUBLISHED}"] if gpt_from_published and not gpt_resumes else []
        continued = CONTINUE_OVERRIDES if from_published else FRESH_OVERRIDES if gpt_from_published else []
        pipe.run("encode-val", "vqvae.encode", *vq_args, "--dataset", data / "val" / "labels.csv",
                 "--output", data / "val" / "tokens.csv", "--skip-bad", ok=BAD_ROWS)

        test_csvs = [data / name / "labels.csv" for name in (*TEST_SETS, DISPLAY_SET)]
        test_csvs += [Path(args.real) / name / "labels.csv" for name in REAL_SETS
                      if (Path(args.real) / name / "labels.csv").is_file()]
        curve_path = out / "curve.json"
        curve = read_json(curve_path) if curve_path.is_file() else []
        if gpt_from_published and not curve:
            # A continuation's curve starts at the model it continues, scored on this folder's sets: a renderer
            # change since it was published changes the sets, and its chunks must beat it on the same crops.
            pipe.run("evaluate-published", "gpt.evaluate", PUBLISHED, *test_csvs, "--json", out / "eval-published.json",
                     "--ignore-space", ok=BAD_ROWS)
            results = read_json(out / "eval-published.json")["results"]
            curve = [{**base, "export": str(PUBLISHED), "accuracy": {r["dataset"]: r["accuracy"] for r in results}}]
        for _ in range(args.chunks):
            if args.hours is not None and (time.monotonic() - start) / 3600 > args.hours:
                print(f"--hours {args.hours} reached: no new chunk", flush=True)
                break
            chunk = base["chunk"] + 1 + chunks_done(out)
            run_chunks = chunk - base["chunk"]  # chunks of this folder's GPT run, this one included
            shard = data / f"shard_{chunk:03d}"
            pipe.run(f"render-shard{chunk}", "scripts.render_text",
                     *shard_render_args(out, chunk, args.shard_size, args.seed), ok=BAD_ROWS)
            pipe.run(f"encode-shard{chunk}", "vqvae.encode", *vq_args, "--dataset", shard / "labels.csv",
                     "--output", shard / "tokens.csv", "--skip-bad", ok=BAD_ROWS)
            # Each crop once more with its borders moved and its looks jittered (gpt.read --votes' copies): a reading
            # depends on where the code cells fall on the glyphs, and one framing per crop taught one. From chunk
            # 52, 10 000 steps over both encodings read 1.1 points more held-out mean and 11 more of 305 real crops
            # than 10 000 steps over the same crops' first encoding alone (session 23, BENCHMARKS.md).
            pipe.run(f"encode-shard{chunk}-augmented", "vqvae.encode", *vq_args, "--dataset", shard / "labels.csv",
                     "--output", shard / AUGMENTED_TOKENS, "--augment", "--seed", args.seed + chunk, "--skip-bad",
                     ok=BAD_ROWS)
            first = max(base["chunk"] + 1, chunk - args.window + 1)
            window = [path for k in range(first, chunk + 1) for path in shard_encodings(data / f"shard_{k:03d}")]
            pipe.run(f"gpt-train-chunk{chunk}", "gpt.train", GPT_CONFIG, "data.train=" + ",".join(map(str, window)),
                     f"data.val={data / 'val' / 'tokens.csv'}", f"data.base_charset={data / 'charset.txt'}",
                     f"run_dir={gpt_run}", f"trainer.max_steps={run_chunks * args.steps_per_chunk}",
                     f"seed={args.seed}", *continued, *init)
            init = []  # later chunks resume from the run's own last.ckpt
            export = runs / f"gpt-export-chunk{chunk}"
            # bfloat16 VQ-VAE weights: the 4 096-code VQ-VAE is 26 MB in float32, over a published version's 25 MB.
            pipe.run(f"export-chunk{chunk}", "gpt.export", gpt_run / "config.yaml",
                     gpt_run / "checkpoints" / "last.ckpt", "--output", export, "--vqvae-bf16")
            evaluation = out / f"eval-chunk{chunk}.json"
            pipe.run(f"evaluate-chunk{chunk}", "gpt.evaluate", export, *test_csvs, "--json", evaluation,
                     "--by", "font", "--by", "label_length", "--ignore-space", ok=BAD_ROWS)
            results = read_json(evaluation)
            curve.append({"chunk": chunk, "steps": base["steps"] + run_chunks * args.steps_per_chunk,
                          "cpu_hours": round(base["cpu_hours"] + cpu_hours(pipe), 3),
                          # the lineage's GPU time (a continuation trained on a lent GPU), for the model card
                          "gpu_hours": base.get("gpu_hours", 0.0), "gpu": base.get("gpu", ""),
                          "distinct_crops": base["distinct_crops"] + run_chunks * args.shard_size,
                          "vq_steps": base["vq_steps"] if from_published else trained_steps(vq_run),
                          "export": str(export),
                          "accuracy": {r["dataset"]: r["accuracy"] for r in results["results"]}})
            write_json_atomic(curve, curve_path)
            draw_curve(curve, out / "curve.png")
            print(f"chunk {chunk}: {curve[-1]['accuracy']} ({curve[-1]['cpu_hours']} CPU-hours)", flush=True)
    except StepFailed as error:
        print(f"\npretrain stopped: {error}", file=sys.stderr)
        return 1
    if curve:
        print("\nLearning curve (exact accuracy, spaces ignored):")
        sets = list(curve[-1]["accuracy"])
        print_table([{"chunk": c["chunk"], "GPT steps": c["steps"], "CPU-hours": c["cpu_hours"],
                      "distinct crops": c["distinct_crops"],
                      **{n: f"{100 * c['accuracy'][n]:.1f}%" if n in c["accuracy"] else "-" for n in sets}}
                     for c in curve], ["chunk", "GPT steps", "CPU-hours", "distinct crops", *sets])
    if args.tesseract:
        from scripts.bench import tesseract_scores

        scores = tesseract_scores({name: (data / name / "labels.csv", language, vertical)
                                   for name, (language, vertical, _) in TEST_SETS.items()}, ignore_space=True)
        write_json_atomic(scores or {}, out / "tesseract.json")
        print(f"Tesseract on the held-out sets: {scores or 'not installed'}")
    if args.publish and curve:
        from scripts.publish import publish_if_better, recognizer_card

        best = max(curve, key=held_out_score)
        if best["chunk"] == base["chunk"]:
            print(f"not published: no chunk beats the model this folder continues ({100 * held_out_score(best):.1f}%)")
            return 0
        # The published model was scored on other sets unless this folder published it.
        published_here = read_json(PUBLISHED / "metrics.json")["chunk"] > base["chunk"] if gpt_from_published else True
        publish_if_better(Path(best["export"]), PUBLISHED, held_out_score(best),
                          *recognizer_card(best, held_out_score(best),
                                           read_json(out / f"eval-chunk{best['chunk']}.json"), args.shard_size),
                          baseline=None if published_here else held_out_score(curve[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
