"""End-to-end OCR of image files with one export folder: VQ-encode, then recognise (DESIGN §4).

    python -m gpt.read outputs/bench/gpt word.png crops/ --output predictions.csv
    python -m gpt.read MODEL_DIR crops/ --timing

Each image is cut to its frame's inside when it has one, fitted to its template and encoded by the export's own
VQ-VAE (batched by template), and the GPT reads the code grid (on CPU both in loader processes, a batch at a
time). Folders are searched recursively for image files. Prints `path<TAB>text<TAB>confidence` per image, or writes a
CSV `img_path,text,confidence` with --output.
Files that cannot be read are reported on stderr (and in OUTPUT.bad.csv) and skipped; the exit status is
then 1. --timing prints images/s, files to texts.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import pandas as pd

from gpt.options import add_inference_options, check_inference_options, take_model_argument
from gpt.pretrained import load_pretrained
from gpt.reading import find_images, read_images
from vqvae.plumbing.cli import run_cli
from vqvae.plumbing.io import report_path_for, write_csv_atomic


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.read", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("images", nargs="+", metavar="[MODEL_DIR] IMAGE",
                        help="a recognition export folder (python -m gpt.export; default: the shipped model "
                             "resources/models/ocr-ko-en), then image files and/or folders (searched recursively)")
    parser.add_argument("--output", default=None, help="write a CSV img_path,text,confidence instead of printing")
    parser.add_argument("--timing", action="store_true", help="print images/s, files to texts")
    add_inference_options(parser, image_files=True)
    args = parser.parse_args(argv)
    check_inference_options(parser, args)
    take_model_argument(parser, args, "images", "image file or folder")
    return args


def format_timing(timing: dict[str, float]) -> str:
    """One line, e.g. `read 1024 images in 8.77 s: 116.7 images/s (files to texts; loading the model excluded)`."""
    return (f"read {int(timing['images'])} images in {timing['seconds']:.2f} s: {timing['images_per_s']:.1f} images/s "
            f"(files to texts; loading the model excluded)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 1 some images failed (reported), 2 a usage or input error."""
    return run_cli(parse_args, run, argv, logging.WARNING)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    paths = find_images(args.images)
    pretrained = load_pretrained(args.model_dir, device=args.device, load_tokenizer=False, load_vqvae=True)
    result = read_images(pretrained, paths, args.batch_size, args.num_workers, args.num_beams,
                         args.precision, not args.no_progress, args.votes)
    readable = [i for i, p in enumerate(result.predictions) if p is not None]
    if args.output:
        frame = pd.DataFrame({"img_path": [paths[i] for i in readable],
                              "text": [result.predictions[i][0] for i in readable],  # type: ignore[index]
                              "confidence": [result.predictions[i][1] for i in readable]})  # type: ignore[index]
        write_csv_atomic(frame, args.output)
        bad_path = result.report.write(report_path_for(args.output))
        print(f"wrote {len(frame)} rows to {args.output}", file=sys.stderr)
    else:
        bad_path = None
        for i in readable:
            text, confidence = result.predictions[i]  # type: ignore[misc]
            # Tabs and newlines inside a prediction would break the line format; show them escaped.
            shown = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            print(f"{paths[i]}\t{shown}\t{confidence:.6g}")
    for row in result.report.rows:
        print(f"failed: {row['img_path']}: {row['reason']}", file=sys.stderr)
    if args.timing:
        print(format_timing(result.timing()), file=sys.stderr)
    if len(result.report):
        where = f"; see {bad_path}" if bad_path else ""
        print(f"{len(result.report)} of {len(paths)} image(s) could not be read{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
