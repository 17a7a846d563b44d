"""Reading speed of the shipped model (`gpt.read`, batched) against RapidOCR 3's recognizer, same crops, one run.

    python -m scripts.bench_speed DATA/labels.csv [more.csv ...] [--model DIR] [--json FILE]

Both read every crop of the CSVs with the whole machine (torch and onnxruntime use all cores), recognition
only (no detection): ours through `gpt.reading.read_images` (VQ encoding and GPT decoding, batched by shape),
RapidOCR through its public call `engine(path, use_det=False, use_cls=False)`, one image per call as its
own benchmark runs it. Each engine reads the set once to warm up, then once timed. RapidOCR is optional
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


def time_ours(model_dir: Path, paths: list[str]) -> float:
    pretrained = load_pretrained(model_dir, load_tokenizer=False, load_vqvae=True)
    read_images(pretrained, paths[:64], progress=False)  # warm-up: kernels, caches
    start = time.perf_counter()
    result = read_images(pretrained, paths, progress=False)
    return result.num_read / (time.perf_counter() - start)


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
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    paths = [p for csv in args.datasets for p in read_labelled_csv(csv)["abs_path"]]
    ours = time_ours(Path(args.model), paths)
    theirs = time_rapidocr(paths)
    figures = {"crops": len(paths), "ours_images_per_s": round(ours, 1),
               "rapidocr_images_per_s": None if theirs is None else round(theirs, 1),
               "ratio": None if theirs is None else round(ours / theirs, 2)}
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
