"""Move a GPT export onto another VQ-VAE's codes, each new code's embedding translated from the old codes it
covers (gpt.code_translation), so the model keeps what it learned instead of relearning every code.

    python -m gpt.recode EXPORT --vqvae-of OTHER_EXPORT --crops labels.csv --output DIR [--num-crops 2000]
    python -m gpt.recode resources/models/ocr-ko-en-draw --vqvae-of resources/models/ocr-ko-en \\
        --crops outputs/pretrain/data/val/labels.csv --output outputs/draw-recoded

Encodes up to --num-crops crops of the labelled CSV with both VQ-VAEs (they must downsample alike), pairs the
codes cell by cell and writes EXPORT's GPT with OTHER_EXPORT's VQ-VAE as a new export folder: gpt.finetune and
gpt.train then continue it on tokens of that VQ-VAE. gpt.train does the same by itself when `init_from` is an
export of another VQ-VAE than its token CSVs' (it pairs the first training CSV's crops with their tokens).
When OTHER_EXPORT's VQ-VAE is EXPORT's own on strips of another thickness (vqvae.restrip), nothing is paired:
the codes are the same, so every embedding is kept, and the image part takes the new length (its positions
moved as gpt.modeling.with_image_positions does). Nor when it has EXPORT's codebook and decoder with a distilled
encoder (`vqvae.train` with distill_from), on strips of the same thickness (the GPT is written as it is, with the
faster encoder) or another (the shipped drawing model moved onto the shipped recognizer's VQ-VAE); --crops is
then not needed. --vqvae-of also takes a VQ-VAE folder (a vqvae.train run's vqvae/):

    python -m gpt.recode resources/models/ocr-ko-en --vqvae-of outputs/distill/vqvae --output outputs/ocr-fast
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from transformers import GPT2LMHeadModel

from gpt.code_translation import translate_codebook
from gpt.modeling import with_image_positions, with_new_codebook
from gpt.pretrained import VQVAE_DIR, load_pretrained, read_layout
from gpt.vocab import Vocab
from vqvae.encoding import encode_paths
from vqvae.plumbing.cli import run_cli
from vqvae.plumbing.io import read_labelled_csv
from vqvae.templates import LINE_CODES
from vqvae.tokens import read_sidecar, string_to_grid

log = logging.getLogger("gpt.recode")


def sample_rows(count: int, num_crops: int, seed: int) -> np.ndarray:
    """Up to `num_crops` of `count` row indices, seeded, in order."""
    if count <= num_crops:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, num_crops, replace=False))


def is_restriped(vqvae: torch.nn.Module, line_codes: int, target_fingerprint: Optional[str]) -> bool:
    """Whether `target_fingerprint` names `vqvae`'s own weights on strips `line_codes` codes thick (vqvae.restrip
    writes such a copy): the same codes, on grids of another width, so no code needs translating."""
    from vqvae.checkpoint import fingerprint

    restriped = copy.copy(vqvae)
    restriped.line_codes = int(line_codes)
    return restriped.line_codes != vqvae.line_codes and fingerprint(restriped) == target_fingerprint


def shares_codes(vqvae: torch.nn.Module, other: torch.nn.Module) -> bool:
    """Whether `other` has `vqvae`'s codebook and decoder, whatever its encoder (vqvae.distill) and strip thickness
    (vqvae.restrip): every code id means what it meant, so a GPT keeps every code embedding."""
    mine, theirs = vqvae.state_dict(), other.state_dict()
    shared = {key for key in mine if not key.startswith("encoder.")}
    return (shared == {key for key in theirs if not key.startswith("encoder.")}
            and all(mine[key].shape == theirs[key].shape and torch.equal(mine[key].float(), theirs[key].float())
                    for key in shared))


def vqvae_of_tokens(tokens: dict) -> Optional[torch.nn.Module]:
    """The VQ-VAE a token CSV's sidecar names (`checkpoint`, with `config` for a training checkpoint) when it is
    still where it was and has the recorded fingerprint, else None."""
    from vqvae.checkpoint import fingerprint, load_vqvae, load_vqvae_dir

    checkpoint, config = tokens.get("checkpoint"), tokens.get("config")
    if not checkpoint or not Path(checkpoint).exists():
        return None
    try:
        vqvae = load_vqvae_dir(checkpoint) if Path(checkpoint).is_dir() else load_vqvae(config, checkpoint)[0]
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return vqvae if fingerprint(vqvae) == tokens.get("fingerprint") else None


def recode_for_tokens(model: GPT2LMHeadModel, vocab: Vocab, init_dir: str | Path, token_csv: str | Path,
                      num_codes: int, num_crops: int = 2000, seed: int = 0) -> tuple[GPT2LMHeadModel, Vocab]:
    """gpt.train's move of an `init_dir` export onto the tokens of `token_csv` (another VQ-VAE's, `num_codes`
    codes): the CSV's crops and grids on one side, the same crops encoded by the export's VQ-VAE on the other.
    Tokens of the export's own VQ-VAE on strips of another thickness (`vqvae.restrip`) are the same codes: the
    model is returned as it is, its code embeddings kept, to learn the new layout; so are tokens of a VQ-VAE with the
    export's codebook and decoder and another encoder (`vqvae.distill`), found where the sidecar says it was."""
    from vqvae.checkpoint import load_vqvae_dir

    old_vqvae = load_vqvae_dir(Path(init_dir) / VQVAE_DIR)
    tokens = read_sidecar(token_csv)
    line_codes = int(tokens.get("line_codes", LINE_CODES))
    if is_restriped(old_vqvae, line_codes, tokens.get("fingerprint")):
        log.info("%s holds %s's codes on %d-code strips (it read %d-code ones): its code embeddings carry over",
                 token_csv, init_dir, line_codes, old_vqvae.line_codes)
        return model, vocab
    encoder = vqvae_of_tokens(tokens)
    if encoder is not None and shares_codes(old_vqvae, encoder):
        log.info("%s was encoded by %s, which has %s's codebook and decoder (another encoder or thickness): its "
                 "code embeddings carry over", token_csv, tokens["checkpoint"], init_dir)
        return model, vocab
    frame = read_labelled_csv(token_csv, required=("img_path", "text", "visual_tokens"))
    rows = sample_rows(len(frame), num_crops, seed)
    grids = [string_to_grid(text) for text in frame["visual_tokens"].iloc[rows]]
    model, vocab, seen = translate_codebook(model, vocab, old_vqvae, int(read_layout(init_dir)["max_length"]),
                                            list(frame["abs_path"].iloc[rows]), grids, num_codes)
    log.info("code embeddings translated from %s's codebook over %d crops of %s: %d of %d codes seen (the rest "
             "start at random)", init_dir, len(rows), token_csv, seen, num_codes)
    return model, vocab


def recode_export(export_dir: str | Path, target_dir: str | Path, crops_csv: Optional[str | Path], output: str | Path,
                  num_crops: int = 2000, seed: int = 0, translate: bool = True,
                  vqvae_bf16: bool = False) -> tuple[Path, int]:
    """Write `export_dir`'s GPT, moved onto `target_dir`'s VQ-VAE, to `output`; returns (folder, codes seen).
    `translate=False` draws the code embeddings anew instead (the baseline scripts/bench_recode.sh measures);
    `vqvae_bf16` stores the VQ-VAE in bfloat16 (gpt.export's --vqvae-bf16)."""
    from gpt.export import write_export

    if num_crops < 1:
        raise ValueError(f"--num-crops {num_crops}: give at least 1 crop to pair the codes on")
    source = load_pretrained(export_dir, load_tokenizer=False)
    target_vqvae, target_length, target_config = target_vqvae_of(target_dir)
    visual = source.max_visual_length
    if shares_codes(source.vqvae, target_vqvae):  # restriped (vqvae.restrip), distilled (vqvae.distill) or both
        visual += target_length - int(source.layout["max_length"])  # on thicker strips, the same longest line
        model = with_image_positions(source.model, source.max_visual_length, visual,
                                     image_first=source.order == "image_first")  # as it is on strips as thick
        vocab, seen = source.vocab, source.vocab.num_codes
    elif translate:
        if crops_csv is None:
            raise ValueError(f"{target_dir}'s VQ-VAE has other codes than {export_dir}'s: give --crops, a labelled "
                             f"CSV whose crops pair them")
        frame = read_labelled_csv(crops_csv)
        paths = list(frame["abs_path"].iloc[sample_rows(len(frame), num_crops, seed)])
        new_grids, _ = encode_paths(target_vqvae, paths, target_length, num_workers=0, progress=False)
        model, vocab, seen = translate_codebook(source.model.train(), source.vocab, source.vqvae,
                                                int(source.layout["max_length"]), paths, new_grids,
                                                target_vqvae.num_codes)
    else:
        vocab, seen = Vocab(source.vocab.chars, target_vqvae.num_codes), 0
        model = with_new_codebook(source.model.train(), source.vocab, vocab)
    info = {"global_step": source.layout.get("global_step"),
            "checkpoint": f"{source.directory}, moved onto {target_dir}'s VQ-VAE",
            "undrawn_chars": source.layout.get("undrawn_chars")}  # a move draws nothing new
    folder = write_export(output, model, vocab, source.order, visual, int(source.layout["max_text_length"]),
                          target_vqvae.cpu(), target_config, target_length, info, vqvae_bf16)
    return folder, seen


def target_vqvae_of(directory: str | Path) -> tuple[torch.nn.Module, int, dict]:
    """(VQ-VAE, its max_length, its model config) of an export folder or of a VQ-VAE folder (config.json with a
    "model" block, e.g. a vqvae.train run's vqvae/)."""
    from vqvae.checkpoint import load_vqvae_dir, read_vqvae_dir_config

    directory = Path(directory)
    folder = directory / VQVAE_DIR if (directory / VQVAE_DIR).is_dir() else directory
    saved = read_vqvae_dir_config(folder)
    if "model" not in saved or "max_length" not in saved:
        raise ValueError(f"--vqvae-of {directory}: neither an export (with {VQVAE_DIR}/) nor a VQ-VAE folder "
                         f"(config.json with model and max_length)")
    return load_vqvae_dir(folder), int(saved["max_length"]), saved["model"]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.recode", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("export", help="the export folder to move (its GPT)")
    parser.add_argument("--vqvae-of", required=True,
                        help="the export folder, or VQ-VAE folder, whose VQ-VAE it moves onto")
    parser.add_argument("--crops", default=None,
                        help="labelled CSV of crops to pair the codes on (needed unless the codes are the same)")
    parser.add_argument("--output", required=True, help="export folder to write (replaced if it exists)")
    parser.add_argument("--num-crops", type=int, default=2000, help="crops paired (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which crops, when the CSV holds more")
    parser.add_argument("--vqvae-bf16", action="store_true", help="store the VQ-VAE's weights in bfloat16: half the "
                        "size; its codes are then the rounded weights' (evaluate the export)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 on success, 2 on a usage or input error (the message says the fix)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    folder, seen = recode_export(args.export, args.vqvae_of, args.crops, args.output, args.num_crops, args.seed,
                                 vqvae_bf16=args.vqvae_bf16)
    print(f"wrote {folder}: {args.export}'s GPT on {args.vqvae_of}'s VQ-VAE ({seen} codes carried over)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
