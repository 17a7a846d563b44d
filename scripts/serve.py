"""Serve a local web page to read an image and draw a prompt in the browser (the API is in scripts/webapp.py).

    python -m scripts.serve                       # the shipped models (resources/models/ocr-ko-en, -draw)
    python -m scripts.serve --model exports/gpt --draw-model runs/gpt-finetune/export
    make serve ARGS="--model exports/gpt --port 8080"

Loads the models once, then serves http://127.0.0.1:PORT/ until Ctrl+C. On the page: drop, paste or pick a
crop of one line of text to see what the model reads, its confidence, the normalized input beside the
VQ-VAE's reconstruction of its tokens (what the model saw) and the time taken; type a prompt to draw N
candidates, each read back by the recognition model. Without a drawing model the page only reads. Nothing is
fetched from the internet. Exit status 2 for bad arguments or model folders.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL
from vqvae.plumbing.cli import DEVICE_HELP
from vqvae.plumbing.cli import run_cli

DEFAULT_MODEL = SHIPPED_MODEL  # used when --model is not given
DEFAULT_DRAW_MODEL = SHIPPED_DRAW_MODEL  # used when --draw-model is not given and --model is not either


def default_model_dir() -> Optional[Path]:
    """The shipped recognition export, if this checkout has it."""
    return DEFAULT_MODEL if DEFAULT_MODEL.is_dir() else None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    summary, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="python -m scripts.serve", description=summary, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, metavar="DIR",
                        help=f"recognition export that reads images (default: {DEFAULT_MODEL}, when present)")
    parser.add_argument("--draw-model", default=None, metavar="DIR",
                        help=f"text-to-image export (python -m gpt.finetune) that draws prompts (default: "
                        f"{DEFAULT_DRAW_MODEL} when present and --model is not given, else none)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    args = parser.parse_args(argv)
    if args.model is None:
        default = default_model_dir()
        if default is None:
            parser.error(f"--model DIR is required: there is no shipped model at {DEFAULT_MODEL}; pass a "
                         f"recognition export (python -m gpt.export ... --output DIR)")
        args.model = str(default)
        if args.draw_model is None and DEFAULT_DRAW_MODEL.is_dir():
            args.draw_model = str(DEFAULT_DRAW_MODEL)  # the shipped pair; a user's own reader draws nothing unasked
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} must be in 0..65535")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: serves until stopped (0), or 2 when a model cannot be loaded."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    # Imported here so --help answers without loading torch and the web stack.
    import uvicorn

    from gpt.pretrained import load_pretrained
    from scripts.webapp import OCRService, create_app

    reader = load_pretrained(args.model, device=args.device, load_tokenizer=False)
    drawer = load_pretrained(args.draw_model, device=args.device, load_tokenizer=False) if args.draw_model else None
    service = OCRService(reader, drawer)
    print(f"serving http://{args.host}:{args.port}/ (Ctrl+C stops)", file=sys.stderr)
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
