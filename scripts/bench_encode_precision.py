"""The VQ-VAE encoder in float32 against bf16 autocast on the CPU: seconds, codes that agree, and what the shipped
GPT reads from each set of codes (exact, spaces ignored), on the same crops. bf16 pays only on a CPU with native
bf16 (AVX-512 BF16 or AMX); `lscpu | grep -o avx512_bf16` says whether this one has it.

    python -m scripts.bench_encode_precision outputs/pretrain/data/heldout_*/labels.csv [--model DIR] [--rounds 2]

Encoding here is this process's model.encode over template batches of 64 (the encoder inputs loaded first and
not timed), float32 and bf16 alternated --rounds times; reading is gpt.recognition.recognize_grids (its own
precision, "auto"), the same for both sets of codes.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from gpt.metrics import text_metrics
from gpt.pretrained import SHIPPED_MODEL, load_pretrained
from gpt.recognition import recognize_grids
from vqvae.data import CropDataset, TemplateBatchSampler, collate_crops
from vqvae.encoding import _as_conv_input
from vqvae.plumbing.io import read_labelled_csv


def template_batches(dataset: CropDataset) -> list[tuple[list[int], torch.Tensor]]:
    """The encoder inputs of `dataset`, loaded once, in the template batches of 64 `vqvae.encoding` uses."""
    batches = []
    for batch in TemplateBatchSampler(dataset, 64, shuffle=False, num_replicas=1, rank=0):
        images, indices = collate_crops([dataset[key] for key in batch])
        batches.append((indices.tolist(), images))
    return batches


def encode(model: torch.nn.Module, batches: list[tuple[list[int], torch.Tensor]], count: int,
           bf16: bool) -> tuple[list[np.ndarray], float]:
    """Grids in crop order and the seconds model.encode took, under bf16 autocast or not."""
    grids: list[np.ndarray] = [np.empty(0)] * count
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for indices, images in batches:
            for index, grid in zip(indices, model.encode(_as_conv_input(images, torch.device("cpu"))).numpy()):
                grids[index] = grid.astype(np.int64)
    return grids, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csvs", nargs="+", help="labelled CSVs (img_path,text)")
    parser.add_argument("--model", default=str(SHIPPED_MODEL), help="recognition export (default: the shipped one)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    pretrained = load_pretrained(args.model, load_tokenizer=False)
    frames = [read_labelled_csv(path) for path in args.csvs]
    paths = [path for frame in frames for path in frame["abs_path"]]
    labels = [text for frame in frames for text in frame["text"]]
    vqvae = pretrained.vqvae
    dataset = CropDataset(paths, pretrained.max_length, vqvae.downsample, progress=False, line_codes=vqvae.line_codes)
    if dataset.failures:
        print(f"{len(dataset.failures)} crops could not be normalized and are left out: "
              f"{[(f.path, f.reason) for f in dataset.failures[:3]]}...", file=sys.stderr)
    batches = template_batches(dataset)
    kept = sorted(index for indices, _ in batches for index in indices)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    grids = {}
    for _ in range(args.rounds):
        for bf16 in (False, True):
            grids[bf16], took = encode(vqvae, batches, len(paths), bf16)
            seconds[bf16].append(took)
    agree = np.mean(np.concatenate([(grids[False][i] == grids[True][i]).ravel() for i in kept]))
    print(f"{len(kept)} of {len(paths)} crops encoded; encoder seconds float32 {seconds[False]}, bf16 {seconds[True]} "
          f"({min(seconds[False]) / min(seconds[True]):.2f}x); codes equal: {100 * agree:.2f}%")
    for bf16 in (False, True):
        texts = [text for text, _ in recognize_grids(pretrained, [grids[bf16][i] for i in kept], progress=False)]
        found = text_metrics(texts, [labels[i] for i in kept], ignore_space=True)
        print(f"read from {'bf16' if bf16 else 'float32'} codes: exact {100 * found['accuracy']:.1f}%, "
              f"1-NED {found['one_minus_ned']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
