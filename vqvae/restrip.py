"""A VQ-VAE folder for another strip thickness: the same weights, another `model.line_codes` (DESIGN §2).

    python -m vqvae.restrip resources/models/ocr-ko-en-draw/vqvae outputs/thick6/vqvae --line-codes 6 --max-length 300

The VQ-VAE is convolutional, so its weights encode a thicker strip as they do the one they were trained on: the
then-shipped 4-code one's reconstructions of held-out Korean crops were 69.0% legible to Tesseract on 6-code
strips against 57.0% on 4-code ones (BENCHMARKS.md). The copy gets its own fingerprint (a thickness other than 4 is
hashed with the weights), so its tokens are never taken for the original's; weights stored in bfloat16 stay so.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from vqvae.checkpoint import build_model_config, fingerprint, load_vqvae_dir, read_vqvae_dir_config, save_vqvae_dir
from vqvae.modeling import VQVAE
from vqvae.plumbing.cli import run_cli


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path,
                        help="a VQ-VAE folder (config.json, model.safetensors), e.g. an export's vqvae/")
    parser.add_argument("output", type=Path, help="the new folder")
    parser.add_argument("--line-codes", type=int, required=True, help="codes across a line of text (default 4)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens per crop (default: the source's, scaled by the thickness: the same longest line)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if args.output.resolve() == args.source.resolve():
        raise ValueError(f"output {args.output} is the source folder: give a new one")
    saved = read_vqvae_dir_config(args.source)
    source = load_vqvae_dir(args.source)
    config = dataclasses.replace(build_model_config(saved["model"], str(args.source)), line_codes=args.line_codes)
    model = VQVAE(config)  # checks the thickness
    model.load_state_dict(source.state_dict())
    source_line_codes = source.line_codes
    dtype = torch.bfloat16 if fingerprint(source, torch.bfloat16) == fingerprint(source) else torch.float32
    # The longest line keeps its length in rows per thickness: rows of (line_codes + 1) tokens.
    max_length = args.max_length or int(saved["max_length"]) // (source_line_codes + 1) * args.line_codes // \
        source_line_codes * (args.line_codes + 1)
    meta = {key: value for key, value in saved.items() if key not in ("format_version", "model", "fingerprint")}
    save_vqvae_dir(model, config, args.output, meta={**meta, "max_length": max_length}, dtype=dtype)
    print(f"wrote {args.output}: line_codes {source_line_codes} -> {args.line_codes}, max_length {saved['max_length']} "
          f"-> {max_length}, fingerprint {fingerprint(model, dtype)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
