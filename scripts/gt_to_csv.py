"""Turn ground-truth text files (one image and its text per line) into a labelled CSV (DESIGN §1).

Each line is detected on its own:

    word_1.png<TAB>Genaxis Theatre           tab-separated: the text is everything after the first tab
    word_2.png, "say \\"hi\\", then go"        ICDAR: quoted text may hold commas and \\" or "" quotes
    word_3.png, PROPER                       comma-separated, unquoted
    word_4.png PROPER                        neither tab nor comma: split at the first space

    python -m scripts.gt_to_csv GT_FILE [GT_FILE ...] --output CSV [--image-root DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm import tqdm

from scripts.convert_common import ConversionSummary, path_for_csv
from vqvae.plumbing.io import ImageReadError, load_image, normalize_text, write_csv_atomic
from vqvae.plumbing.cli import run_cli

FORMATS = ("auto", "tab", "icdar", "space")
_ICDAR = re.compile(r'^(?P<path>.*?)\s*,\s*"(?P<text>.*)"\s*$')
_ESCAPE = re.compile(r'\\(["\\])|""')


class LineFormatError(ValueError):
    """A ground-truth line that does not hold an image path and a text."""


def unescape_quoted(text: str) -> str:
    """Inside ICDAR quotes: `\\"` and `""` mean `"`, `\\\\` means a backslash; anything else is literal."""
    return _ESCAPE.sub(lambda m: m.group(1) or '"', text)


def parse_line(line: str, line_format: str = "auto") -> tuple[str, str]:
    """(path, text) of one ground-truth line (newline already removed).

    `line_format` is one of FORMATS; "auto" picks tab, then ICDAR quoted, then comma, then space.
    Raises LineFormatError naming what was expected.
    """
    if line_format in ("auto", "tab") and "\t" in line:
        path, text = line.split("\t", 1)
        return path.strip(), text
    if line_format in ("auto", "icdar"):
        match = _ICDAR.match(line)
        if match:
            return match["path"].strip(), unescape_quoted(match["text"])
        if "," in line:
            path, text = line.split(",", 1)
            return path.strip(), text.strip()
    if line_format in ("auto", "space"):
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            return parts[0], parts[1].strip()
    expected = {"auto": "a tab, a comma or a space", "tab": "a tab", "icdar": "a comma",
                "space": "a space"}[line_format]
    raise LineFormatError(f"no separator ({expected}) between an image path and a text in {line[:80]!r}")


def resolve_image(path: str, base: Path) -> str:
    """Absolute path of a GT entry: absolute as written, else relative to `base`. Windows separators
    (`\\`) are read as `/` on other systems."""
    if os.sep == "/" and "\\" in path:
        path = path.replace("\\", "/")
    return os.path.normpath(path if os.path.isabs(path) else base / path)


def gt_to_csv(gt_files: Sequence[str | os.PathLike], output: str | os.PathLike, image_root: str | None = None,
              line_format: str = "auto", encoding: str = "utf-8", absolute: bool = False,
              verify: bool = False) -> ConversionSummary:
    """Write `output` (img_path,text) from the GT files, atomically; returns the summary (report not written).

    Relative paths resolve against `image_root` when given, else against each GT file's folder, and are
    rewritten relative to the output CSV's folder (absolute with `absolute=True`). `verify` decodes each
    image (otherwise only its existence is checked).
    """
    if line_format not in FORMATS:
        raise ValueError(f"line format {line_format!r}; use one of {FORMATS}")
    for gt_file in gt_files:
        if not Path(gt_file).is_file():
            raise FileNotFoundError(f"ground-truth file {str(gt_file)!r} does not exist")
    if image_root is not None and not Path(image_root).is_dir():
        raise FileNotFoundError(f"--image-root {image_root!r} is not a folder")
    summary = ConversionSummary(what="rows")
    rows: list[dict] = []
    first_text: dict[str, str] = {}
    for gt_file in gt_files:
        base = Path(image_root) if image_root is not None else Path(gt_file).resolve().parent
        with open(gt_file, "rb") as f:
            for line_number, raw in enumerate(tqdm(f, desc=f"reading {Path(gt_file).name}", unit="line",
                                                   dynamic_ncols=True), start=1):
                where = f"{gt_file}:{line_number}"
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as error:
                    summary.skip("not_decodable", where, "", f"{raw[:40]!r} is not {encoding} ({error.reason}); "
                                 f"pass --encoding (e.g. cp949, latin-1)")
                    continue
                line = line.lstrip("\ufeff").rstrip("\r\n")   # a BOM starts many ICDAR files
                if not line.strip():
                    continue
                try:
                    path, text = parse_line(line, line_format)
                except LineFormatError as error:
                    summary.skip("unparsable_line", where, "", str(error))
                    continue
                text = normalize_text(text)
                if not path or not text.strip():
                    summary.skip("empty_text" if path else "empty_path", where, path, f"line {line[:80]!r}")
                    continue
                image = resolve_image(path, base)
                if image in first_text:
                    same = first_text[image] == text
                    summary.skip("duplicate" if same else "conflicting_label", where, path,
                                 "listed before with the same text" if same else
                                 f"listed before as {first_text[image]!r}; the first is kept", error=not same)
                    continue
                if not os.path.isfile(image):
                    summary.skip("missing_image", where, path, f"{image!r} does not exist")
                    continue
                if verify:
                    try:
                        load_image(image)
                    except ImageReadError as error:
                        summary.skip("unreadable_image", where, path, str(error))
                        continue
                first_text[image] = text
                rows.append({"img_path": path_for_csv(image, output, absolute), "text": text})
    write_csv_atomic(pd.DataFrame(rows, columns=["img_path", "text"]), output)
    summary.kept = len(rows)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.gt_to_csv",
        description="Convert ground-truth text files (`path<TAB>text` or ICDAR `path, \"text\"` lines, "
                    "detected per line) into a labelled CSV img_path,text.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
lines (with --format auto, each line is tried in this order):
  path<TAB>text        the text is everything after the first tab, kept as written
  path, "text"         ICDAR; \\" and "" inside the quotes are quotes, \\\\ is a backslash
  path, text           comma, unquoted (spaces around the text removed)
  path text            no tab or comma: split at the first whitespace
  Blank lines and a leading byte-order mark are ignored. Text is stored as Unicode NFC.

paths:
  Relative paths are read against --image-root, else against the GT file's own folder, and are written
  relative to the output CSV's folder (absolute with --absolute), so img_path resolves from the CSV.

skips (counted, listed in CSV.bad.csv):
  expected (exit 0): duplicate (same image and text listed again)
  errors (exit 1):   missing_image, unreadable_image (--verify), conflicting_label (same image, another
                     text; the first is kept), unparsable_line, not_decodable (see --encoding), empty_text,
                     empty_path
  The CSV is rewritten on every run (no duplicated rows); exit 2 for bad arguments.

example:
  python -m scripts.gt_to_csv icdar2015/test/gt.txt iiit5k/test_gt.txt --output resources/real/test.csv
""")
    parser.add_argument("gt_files", nargs="+", metavar="GT_FILE", help="ground-truth text file(s)")
    parser.add_argument("--output", required=True, metavar="CSV", help="labelled CSV to write")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder that relative image paths start from (default: each GT file's folder)")
    parser.add_argument("--format", dest="line_format", choices=FORMATS, default="auto",
                        help="line format; auto detects it per line (default)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the GT files (default utf-8)")
    parser.add_argument("--absolute", action="store_true", help="write absolute image paths")
    parser.add_argument("--verify", action="store_true", help="decode every image to catch corrupt files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 some lines failed (reported), 2 a usage or input error."""
    return run_cli(build_parser().parse_args, run, argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    try:
        "".encode(args.encoding)
    except LookupError:
        raise ValueError(f"unknown --encoding {args.encoding!r}; try utf-8, cp949 or latin-1") from None
    summary = gt_to_csv(args.gt_files, args.output, args.image_root, args.line_format, args.encoding,
                        args.absolute, args.verify)
    return summary.finish(args.output)


if __name__ == "__main__":
    sys.exit(main())
