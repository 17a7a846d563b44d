"""`gpt.read`'s crops/s with and without loader workers, for several batch sizes, alternated and repeated.

    python -m scripts.bench_read_workers outputs/pretrain/data/heldout_*/labels.csv [--workers 0 2] \
        [--batch-sizes 32 64 128] [--repeats 2] [--model DIR] [--json FILE]

Every setting reads every crop of the CSVs through `gpt.reading.read_images` once per repeat, the settings in
turn within each repeat (timings swing from run to run on a shared CPU: compare settings within a repeat).
`--workers 0` reads all in this process (each template batch encoded, then read with every thread); N > 0 has
N loader processes encode and read whole batches with one thread each. Prints crops/s per setting and repeat,
and how many crops each read right (spaces ignored): the settings must read the same texts.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpt.pretrained import SHIPPED_MODEL, load_pretrained
from gpt.reading import read_images
from vqvae.plumbing.io import read_labelled_csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="labelled CSVs (img_path,text) whose images are read")
    parser.add_argument("--model", default=str(SHIPPED_MODEL), help="recognition export (default: the shipped one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader processes to compare")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64], help="batch sizes to compare")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over all settings")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if min(args.workers) < 0 or min(args.batch_sizes) < 1 or args.repeats < 1:
        parser.error(f"--workers {args.workers} must be >= 0, --batch-sizes {args.batch_sizes} and --repeats "
                     f"{args.repeats} >= 1")
    frames = [read_labelled_csv(csv) for csv in args.datasets]
    paths = [path for frame in frames for path in frame["abs_path"]]
    labels = [str(text).replace(" ", "") for frame in frames for text in frame["text"]]
    pretrained = load_pretrained(Path(args.model), load_tokenizer=False, load_vqvae=True)
    read_images(pretrained, paths[:64], progress=False)  # warm-up: kernels, caches
    rows = []
    for repeat in range(args.repeats):
        for workers in args.workers:
            for batch_size in args.batch_sizes:
                result = read_images(pretrained, paths, batch_size=batch_size, num_workers=workers, progress=False)
                right = sum(p is not None and p[0].replace(" ", "") == label
                            for p, label in zip(result.predictions, labels))
                rows.append({"repeat": repeat, "workers": workers, "batch_size": batch_size,
                             "crops_per_s": round(result.timing()["images_per_s"], 1), "right": right,
                             "crops": len(paths)})
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
