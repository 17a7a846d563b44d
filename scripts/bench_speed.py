"""Reading speed of the shipped model (`gpt.read`, batched) against RapidOCR 3's recognizer, same crops, one run.

    python -m scripts.bench_speed DATA/labels.csv [more.csv ...] [--model DIR] [--num-beams 1 3] [--json FILE]
    python -m scripts.bench_speed DATA/labels.csv --batch-size 128 --no-rapidocr   # one of our settings against another
    python -m scripts.bench_speed DATA/labels.csv --votes 4    # ours reading each crop 4 times (gpt.read --votes)

Both read every crop of the CSVs with the whole machine (torch and onnxruntime use all cores), recognition
only (no detection): ours through `gpt.reading.read_images` as `gpt.read` runs it (VQ encoding and GPT decoding,
batched by template, in one loader process per core on CPU),
RapidOCR through its public call `engine(path, use_det=False, use_cls=False)`, one image per call as its
own benchmark runs it. Each engine reads the set once to warm up, then once timed (ours once per --num-beams,
in the order given). RapidOCR is optional
(`pip install rapidocr onnxruntime`, which ship their models); without it only our figure is printed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gpt.pretrained import SHIPPED_MODEL, load_pretrained
from gpt.reading import read_images
from vqvae.plumbing.io import read_labelled_csv


def time_ours(model_dir: Path, paths: list[str], beam_counts: list[int], batch_size: int = 64,
              votes: int = 1) -> dict[int, float]:
    """Images/s of gpt.reading.read_images for each number of beams."""
    pretrained = load_pretrained(model_dir, load_tokenizer=False, load_vqvae=True)
    read_images(pretrained, paths[:64], progress=False)  # warm-up: kernels, caches
    speeds = {}
    for num_beams in beam_counts:
        result = read_images(pretrained, paths, batch_size=batch_size, num_beams=num_beams, progress=False,
                             votes=votes)
        speeds[num_beams] = result.timing()["images_per_s"]  # files to texts, as gpt.read --timing prints it
    return speeds


def time_rapidocr(paths: list[str]) -> float | None:
    try:
        from rapidocr import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()
    for path in paths[:64]:
        engine(path, use_det=False, use_cls=False, use_rec=True)
    start = time.perf_counter()
    for path in paths:
        engine(path, use_det=False, use_cls=False, use_rec=True)
    return len(paths) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs whose images both engines read")
    parser.add_argument("--model", default=str(SHIPPED_MODEL), help="recognition export (default: the shipped one)")
    parser.add_argument("--num-beams", type=int, nargs="+", default=[1],
                        help="time ours with each of these beam counts (default: greedy)")
    parser.add_argument("--batch-size", type=int, default=64, help="crops per batch, ours (gpt.read's default: 64)")
    parser.add_argument("--votes", type=int, default=1, help="ours reads each crop this many times (gpt.read --votes)")
    parser.add_argument("--no-rapidocr", action="store_true", help="time ours only (comparing our settings)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if min(args.num_beams) < 1 or args.votes < 1:
        parser.error(f"--num-beams {args.num_beams} and --votes {args.votes}: each must be >= 1 (1 is greedy, "
                     f"one reading)")
    paths = [p for csv in args.datasets for p in read_labelled_csv(csv)["abs_path"]]
    ours = time_ours(Path(args.model), paths, args.num_beams, args.batch_size, args.votes)
    theirs = None if args.no_rapidocr else time_rapidocr(paths)
    figures = {"crops": len(paths), "rapidocr_images_per_s": None if theirs is None else round(theirs, 1)}
    for num_beams, speed in ours.items():
        suffix = ("" if num_beams == 1 else f"_beams{num_beams}") + ("" if args.votes == 1 else f"_votes{args.votes}")
        figures[f"ours{suffix}_images_per_s"] = round(speed, 1)
        figures[f"ratio{suffix}"] = None if theirs is None else round(speed / theirs, 2)
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
