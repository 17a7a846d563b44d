"""Images from text prompts with a text-to-image export, or unconditional samples with self-captions.

    python -m gpt.generate "안녕하세요" "OPEN 24H" --output out/gen           # the shipped models
    python -m gpt.generate "세로쓰기" --vertical --output out/gen --seed 1
    python -m gpt.generate MODEL_DIR "hello" --output out/gen --rerank-with RECOGNITION_DIR
    python -m gpt.generate --prompts-file prompts.txt --evaluate --output out/eval
    python -m gpt.generate --unconditional 16 --output out/free                # the shipped recognizer

The first argument is a model folder when it is one (gpt.export / gpt.finetune); otherwise every argument
is a prompt, drawn by the shipped drawing model (resources/models/ocr-ko-en-draw), and --unconditional
samples from the shipped recognizer (resources/models/ocr-ko-en). For prompts the model must be text-first:
each prompt's text part (with the <vertical> mark under --vertical) is the prefix and every candidate's
image part is sampled (all prompts x candidates batched, KV cache), parsed into a rectangular grid (repairs
reported), decoded by the export's VQ-VAE and cropped to the content. Candidates are reranked by the
shipped recognizer unless --rerank-with names another or --no-rerank is given: exact read-back first, then
the candidates more of its readings spell (the image as it is and copies with moved borders, as gpt.read --votes
reads), then log p(prompt | image). --unconditional N samples N image parts from an image-first (recognition) model
starting at <row>, then lets it read its own images greedily (self-captions).

Writes to --output: one folder per prompt (candidate_KK.png, best.png, sheet.png), results.csv and
results.json (prompt, candidate, path, grid size, repairs, read-back, confidence, score, votes, is_best, rank),
legibility.json with --evaluate, and results.csv.bad.csv listing candidates that could not be decoded
(exit status 1 then; 2 for bad arguments or inputs).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
from tqdm import tqdm

from gpt.drawing import (DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, Generated, check_prompts, generate_for_prompts,
                         generate_unconditional, make_sheet, rank_candidates, require_text_to_image, rerank)
from gpt.legibility import legibility_summary, tesseract_read, tesseract_status
from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained, model_and_inputs
from gpt.sampling import SamplingConfig
from vqvae.plumbing.cli import DEVICE_HELP, resolve_device, run_cli
from vqvae.plumbing.io import BadRowReport, report_path_for, save_image, write_csv_atomic, write_json_atomic


RESULT_COLUMNS = ("prompt_index", "prompt", "candidate", "path", "rows", "cols", "gen_logprob", "read_back",
                  "confidence", "score", "exact", "votes", "is_best", "rank", "repairs")


def read_prompts_file(path: str | Path) -> list[str]:
    """One prompt per line (UTF-8); blank lines are skipped, other whitespace is kept."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--prompts-file {str(path)!r} does not exist; give a UTF-8 file, one prompt a line")
    lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    return [line for line in lines if line.strip()]


def _slug(prompt: str) -> str:
    return re.sub(r"[^\w-]+", "_", prompt).strip("_")[:32] or "prompt"


# ---------------------------------------------------------------------------------------------- output
def write_outputs(items: list[Generated], output: Path, unconditional: bool, progress: bool = True) -> BadRowReport:
    """Candidate PNGs, best.png and sheet.png per prompt (or unconditional/sample_KKK.png and a captioned
    sheet), results.csv + results.json; returns the report of undecodable candidates."""
    report = BadRowReport()
    by_prompt: dict[int, list[Generated]] = {}
    for row, item in enumerate(items):
        by_prompt.setdefault(item.prompt_index, []).append(item)
        folder = "unconditional" if unconditional else f"{item.prompt_index:03d}_{_slug(item.prompt)}"
        name = f"sample_{item.candidate:03d}.png" if unconditional else f"candidate_{item.candidate:02d}.png"
        if item.image is None:
            report.add(row, f"{folder}/{name}", f"prompt {item.prompt!r} candidate {item.candidate}: {item.error}")
            continue
        item.path = f"{folder}/{name}"
    for item in tqdm([i for i in items if i.image is not None], desc="writing PNGs", unit="img",
                     disable=not progress):
        save_image(output / item.path, item.image)
    for group in by_prompt.values():
        shown = sorted([i for i in group if i.image is not None], key=lambda i: i.rank if i.rank >= 0 else i.candidate)
        if not shown:
            continue
        folder = output / Path(shown[0].path).parent
        if unconditional:
            captions = [f"#{i.candidate} {i.read_back} ({i.confidence:.2g})" for i in shown]
        else:
            captions = [f"#{i.candidate}{' best' if i.is_best else ''}"
                        + (f" '{i.read_back}' {i.score:.1f}" if not math.isnan(i.score) else "") for i in shown]
            best = next((i for i in shown if i.is_best), None)
            if best is not None:
                save_image(folder / "best.png", best.image)
        save_image(folder / "sheet.png", make_sheet([i.image for i in shown], captions))
    records = []
    for item in items:
        record = {key: value for key, value in asdict(item).items()
                  if key not in ("image_ids", "grid", "image", "error")}
        record["prompt_index"] = item.prompt_index if not unconditional else ""
        record["rows"], record["cols"] = (item.grid.shape if item.grid is not None else ("", ""))
        record["repairs"] = "; ".join(item.repairs) if item.image is not None else item.error
        records.append(record)
    columns = list(RESULT_COLUMNS)
    if unconditional:
        columns = [c for c in columns
                   if c not in ("prompt_index", "prompt", "score", "exact", "votes", "is_best", "rank")]
        columns[columns.index("read_back")] = "caption"
        for record in records:
            record["caption"] = record["read_back"]
    frame = pd.DataFrame(records)[columns]
    write_csv_atomic(frame, output / "results.csv")
    as_json = [{key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in r.items()}
               | {"repairs": list(item.repairs) if item.image is not None else [item.error]}
               for r, item in zip(frame.to_dict("records"), items)]
    write_json_atomic(as_json, output / "results.json")
    report.write(report_path_for(output / "results.csv"))
    return report


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    summary, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="python -m gpt.generate", description=summary, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompts", nargs="*", metavar="[MODEL_DIR] PROMPT",
                        help="texts to draw (characters of the model's charset), after an optional export folder: "
                        "text-to-image (gpt.finetune) for prompts, recognition (gpt.export) for --unconditional; "
                        "default: the shipped models")
    parser.add_argument("--prompts-file", default=None, help="UTF-8 file, one prompt a line (blank lines skipped)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--num-candidates", type=int, default=8, help="images per prompt (default 8)")
    parser.add_argument("--batch-size", type=int, default=32, help="image parts sampled per forward pass")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help=f"0 = greedy (default {DEFAULT_TEMPERATURE})")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely image tokens (0 = all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0 = off)")
    parser.add_argument("--guidance-scale", type=float, default=None,
                        help=f"classifier-free guidance of prompts (default {DEFAULT_GUIDANCE}; 1.0 = off; needs "
                        f"fine-tuning with cond_dropout > 0, as every fine-tuning config has)")
    parser.add_argument("--free-rows", action="store_true",
                        help="let rows end where the model says (default: every row as wide as the first; "
                        "ragged grids are then repaired and the repairs reported)")
    parser.add_argument("--vertical", action="store_true",
                        help="show the drawn strips as vertical lines (top to bottom), not turned back into "
                             "horizontal ones")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same images (whatever --batch-size)")
    parser.add_argument("--rerank-with", default=None, metavar="RECOGNITION_DIR",
                        help="recognition export that reads the candidates back to rank them (default: the shipped "
                        "recognizer)")
    parser.add_argument("--no-rerank", action="store_true",
                        help="rank candidates by the generator's own log-probability, reading nothing back")
    parser.add_argument("--unconditional", type=int, default=None, metavar="N",
                        help="N prompt-free samples from an image-first model, with self-captions")
    parser.add_argument("--evaluate", action="store_true",
                        help="write legibility.json (needs prompts and --rerank-with)")
    parser.add_argument("--tesseract-lang", default="kor+eng", help="Tesseract languages for --evaluate")
    parser.add_argument("--no-crop", action="store_true", help="keep the template padding in the PNGs")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    default = SHIPPED_MODEL if args.unconditional is not None else SHIPPED_DRAW_MODEL
    try:
        args.model_dir, args.prompts = model_and_inputs(args.prompts, default)
    except FileNotFoundError as error:
        parser.error(str(error))
    if args.rerank_with and args.no_rerank:
        parser.error("give --rerank-with or --no-rerank, not both")
    if args.rerank_with is None and not args.no_rerank and args.unconditional is None:
        if not SHIPPED_MODEL.is_dir():
            parser.error(f"the shipped recognizer {SHIPPED_MODEL} that reranks by default is missing: give "
                         f"--rerank-with RECOGNITION_DIR or --no-rerank")
        args.rerank_with = str(SHIPPED_MODEL)
    return args


def run(args: argparse.Namespace) -> int:
    """The CLI body (after argument parsing); returns the exit status."""
    prompts = list(args.prompts) + (read_prompts_file(args.prompts_file) if args.prompts_file else [])
    if args.unconditional is not None and prompts:
        raise ValueError("give prompts or --unconditional N, not both")
    if args.unconditional is None and not prompts:
        raise ValueError("no prompts: give them as arguments or with --prompts-file, or use --unconditional N")
    if args.vertical and args.unconditional is not None:
        raise ValueError("--vertical draws prompts; it does not apply to --unconditional")
    if args.evaluate and (not prompts or not args.rerank_with):
        raise ValueError("--evaluate needs prompts and a recognizer (drop --no-rerank)")
    if args.unconditional is not None and args.guidance_scale not in (None, 1.0):
        raise ValueError("--guidance-scale steers towards a prompt; --unconditional has none")
    guidance = 1.0 if args.unconditional is not None else (
        DEFAULT_GUIDANCE if args.guidance_scale is None else args.guidance_scale)
    sampling = SamplingConfig(args.temperature, args.top_k, args.top_p, guidance, args.seed,
                              rectangular=not args.free_rows)
    device, progress, crop = resolve_device(args.device), not args.no_progress, not args.no_crop
    output = Path(args.output)
    generator = load_pretrained(args.model_dir, device=device, load_tokenizer=False)
    if args.unconditional is not None:
        items = generate_unconditional(generator, args.unconditional, sampling, args.batch_size, crop, progress)
        report = write_outputs(items, output, unconditional=True, progress=progress)
        return _finish(items, report, output)
    # Check everything a user can get wrong before any sampling.
    require_text_to_image(generator)
    prompts = check_prompts(prompts, generator.vocab, generator.max_text_length, str(generator.directory),
                            generator.undrawn_chars)
    recognizer = None
    if args.rerank_with:
        recognizer = load_pretrained(args.rerank_with, device=device, load_tokenizer=False)
        recognizer.require_recognition()
    items = generate_for_prompts(generator, prompts, args.num_candidates, sampling, args.batch_size, crop, progress,
                                 args.vertical)
    if recognizer is not None:
        rerank(items, recognizer, generator.fingerprint, args.batch_size)
    else:
        rank_candidates(items, by_recognizer=False)
    report = write_outputs(items, output, unconditional=False, progress=progress)
    if args.evaluate:
        best = {item.prompt_index: item for item in items if item.is_best}
        best_paths = [str(output / best[i].path) if i in best else "" for i in range(len(prompts))]
        available, reason = tesseract_status(args.tesseract_lang)
        tesseract_texts = tesseract_read(best_paths, args.tesseract_lang) if available else None
        any_exact = [any(item.exact for item in items if item.prompt_index == i) for i in range(len(prompts))]
        summary = legibility_summary(prompts, [best[i].read_back if i in best else "" for i in range(len(prompts))],
                                     [best[i].score if i in best else float("-inf") for i in range(len(prompts))],
                                     any_exact, args.num_candidates, tesseract_texts, reason)
        summary.update({"model": str(args.model_dir), "recognizer": {"model": str(args.rerank_with),
                        **summary["recognizer"]}, "sampling": asdict(sampling)})
        write_json_atomic(summary, output / "legibility.json")
        tess = summary["tesseract"]
        print(f"legibility: recognizer reads back {summary['recognizer']['exact_rate']:.1%} of best candidates "
              f"exactly; Tesseract: " + (f"{tess['exact_rate']:.1%}" if tess["available"] else
                                         f"skipped ({tess['reason']})"))
    return _finish(items, report, output)


def _finish(items: list[Generated], report: BadRowReport, output: Path) -> int:
    print(f"wrote {sum(i.image is not None for i in items)} images and {output / 'results.csv'}")
    if len(report):
        print(f"{len(report)} candidate(s) could not be decoded; see {report_path_for(output / 'results.csv')}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(parse_args, lambda args, _: run(args), argv)  # PromptError is a ValueError: exit 2


if __name__ == "__main__":
    sys.exit(main())
