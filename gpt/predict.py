"""Recognise token datasets with an export: `img_path,text,confidence` for each row (DESIGN §4).

    python -m gpt.predict outputs/bench/gpt data/val/tokens.csv --output outputs/val_predictions.csv
    python -m gpt.predict MODEL_DIR tokens_aug.csv --output pred.csv --merge-augmented --num-beams 3

The input is a token CSV (`python -m vqvae.encode`) whose sidecar must name the VQ-VAE the model was
trained with. The output keeps every input column, renames the label `text` to `label`, and writes the
prediction in `text` and its confidence (product of the chosen tokens' probabilities, in (0, 1]) in
`confidence`. With --merge-augmented, the augmented copies of one image (same img_path, e.g. the
`repeat` column of `vqvae.encode --repeats N`) vote, each with its confidence as weight: one row per image,
`confidence` = the winner's summed confidence / number of copies, plus `votes` and `copies` columns.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from gpt.options import add_inference_options, check_inference_options
from gpt.pretrained import load_pretrained
from gpt.recognition import predict_csv
from vqvae.plumbing.cli import run_cli
from vqvae.plumbing.io import report_path_for, write_csv_atomic


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.predict", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("model_dir", help="a recognition export folder (python -m gpt.export)")
    parser.add_argument("tokens_csv", help="a token CSV from python -m vqvae.encode (with its .json sidecar)")
    parser.add_argument("--output", required=True, help="CSV to write")
    parser.add_argument("--merge-augmented", action="store_true",
                        help="one row per img_path: augmented copies vote, weighted by confidence")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip rows whose grid does not parse or fit (listed in OUTPUT.bad.csv; exit 1)")
    add_inference_options(parser)
    args = parser.parse_args(argv)
    check_inference_options(parser, args)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 1 some rows skipped (--skip-bad), 2 a usage or input error."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    pretrained = load_pretrained(args.model_dir, device=args.device, load_tokenizer=False, load_vqvae=False)
    output, report = predict_csv(pretrained, args.tokens_csv, args.batch_size, args.num_beams,
                                 args.merge_augmented, args.skip_bad, args.precision, not args.no_progress)
    write_csv_atomic(output, args.output)
    bad_path = report.write(report_path_for(args.output))
    print(f"wrote {len(output)} rows to {args.output}")
    if len(report):
        print(f"{len(report)} row(s) skipped; see {bad_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
