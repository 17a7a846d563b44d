"""Convert between scene-text LMDB datasets and the labelled CSV (DESIGN §1).

The LMDB layout is the one of the common benchmarks (MJSynth, SynthText, IIIT5k, IC13, ...): keys
`num-samples` (ASCII integer N), `image-%09d` (encoded JPEG/PNG bytes) and `label-%09d` (UTF-8 text) for
indices 1..N. This tool also writes and reads an optional `meta-%09d` (a JSON object of the CSV's extra
columns) so that CSV -> LMDB -> CSV keeps them; other tools ignore that key.

    python -m scripts.lmdb_dataset to-csv LMDB_DIR [LMDB_DIR ...] --output DIR
    python -m scripts.lmdb_dataset from-csv CSV [CSV ...] --output LMDB_DIR
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import lmdb
import pandas as pd
from tqdm import tqdm

from scripts.convert_common import ConversionSummary, distinct_names, image_suffix
from vqvae.plumbing.io import (ImageReadError, atomic_path, decode_image, normalize_text, read_labelled_csv,
                               write_csv_atomic)
from vqvae.plumbing.cli import run_cli

NUM_SAMPLES_KEY = b"num-samples"
# Columns that to-csv adds itself: which LMDB a row came from and its 1-based index there.
SOURCE_COLUMN, INDEX_COLUMN = "lmdb_source", "lmdb_index"
STORED_AS_IS = (".png", ".jpg")   # every LMDB reader decodes these; other formats are re-encoded as PNG
_PAGE = 4096


def image_key(index: int) -> bytes:
    return b"image-%09d" % index


def label_key(index: int) -> bytes:
    return b"label-%09d" % index


def meta_key(index: int) -> bytes:
    return b"meta-%09d" % index


def find_lmdbs(root: str | os.PathLike) -> list[Path]:
    """LMDB environments (folders holding `data.mdb`) at or below `root`, sorted.

    Benchmarks ship as trees (`evaluation/IIIT5k_3000/data.mdb`, ...), so a parent folder is accepted.
    """
    root = Path(root)
    if (root / "data.mdb").is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"LMDB folder {str(root)!r} does not exist")
    found = sorted(p.parent for p in root.rglob("data.mdb"))
    if not found:
        raise FileNotFoundError(f"no LMDB (a folder with data.mdb) at or below {str(root)!r}; "
                                f"pass the folder that holds data.mdb and lock.mdb")
    return found


def _num_samples(txn: lmdb.Transaction, name: str) -> int:
    """N from `num-samples`, or (key absent) the largest label index found by scanning the keys."""
    raw = txn.get(NUM_SAMPLES_KEY)
    if raw is not None:
        try:
            return int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"LMDB {name}: num-samples is {raw[:40]!r}, not an integer") from None
    largest = 0
    cursor = txn.cursor()
    if cursor.set_range(b"label-"):
        for key in cursor.iternext(keys=True, values=False):
            if not key.startswith(b"label-"):
                break
            suffix = key[len(b"label-"):]
            if suffix.isdigit():
                largest = max(largest, int(suffix))
    return largest


def lmdb_to_csv(lmdb_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
                csv_name: str = "labels.csv", verify: bool = True) -> ConversionSummary:
    """Write the images of every LMDB found under `lmdb_dirs` to `output_dir/images/<lmdb>/image-%09d.<ext>`
    (the stored bytes as they are; PNG re-encoding only for formats other tools may not read) and
    `output_dir/<csv_name>` with `img_path,text,<meta columns>,lmdb_source,lmdb_index`, atomically.

    `verify` decodes every image to catch corrupt ones (otherwise only the magic number is checked).
    Returns the summary (its report not yet written).
    """
    envs: list[Path] = []
    for root in lmdb_dirs:
        envs.extend(find_lmdbs(root))
    envs = list(dict.fromkeys(Path(os.path.abspath(e)) for e in envs))
    output_dir = Path(output_dir)
    summary = ConversionSummary(what="samples")
    rows: list[dict] = []
    for env_path, name in zip(envs, distinct_names(envs)):
        try:
            env = lmdb.open(str(env_path), readonly=True, lock=False, readahead=False, meminit=False)
        except lmdb.Error as error:
            summary.skip("unreadable_lmdb", name, str(env_path), f"{type(error).__name__}: {error}")
            continue
        with env, env.begin(buffers=False) as txn:
            num_samples = _num_samples(txn, name)
            if num_samples == 0:
                summary.skip("empty_lmdb", name, str(env_path),
                             "no samples (num-samples is 0 or absent and there are no label-* keys)")
                continue
            for index in tqdm(range(1, num_samples + 1), desc=f"reading LMDB {name}", unit="img",
                              dynamic_ncols=True):
                row = _read_sample(txn, index, name, output_dir, verify, summary)
                if row is not None:
                    rows.append(row)
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in ("img_path", "text",
                                                                           SOURCE_COLUMN, INDEX_COLUMN)))
    frame = pd.DataFrame(rows, columns=["img_path", "text", *extra, SOURCE_COLUMN, INDEX_COLUMN])
    write_csv_atomic(frame.fillna(""), output_dir / csv_name)
    summary.kept = len(rows)
    return summary


def _read_sample(txn: lmdb.Transaction, index: int, name: str, output_dir: Path, verify: bool,
                 summary: ConversionSummary) -> dict | None:
    where = f"{name}#{index}"
    label_raw, data = txn.get(label_key(index)), txn.get(image_key(index))
    if label_raw is None:
        summary.skip("missing_label", where, "", f"no key {label_key(index).decode()}")
        return None
    try:
        text = normalize_text(label_raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        summary.skip("label_not_utf8", where, "", f"{label_raw[:40]!r}: {error.reason} at byte {error.start}")
        return None
    if not text.strip():
        summary.skip("empty_label", where, "", "the label is blank")
        return None
    if not data:
        summary.skip("missing_image", where, "", f"no key {image_key(index).decode()} (or it is empty)")
        return None
    suffix = image_suffix(data)
    if verify or suffix not in STORED_AS_IS:
        try:
            image = decode_image(data, where)  # within the pixel limit, or not decoded at all
        except ImageReadError as error:
            summary.skip("unreadable_image", where, "", f"{len(data)} bytes starting {data[:8]!r}: {error}")
            return None
        if suffix not in STORED_AS_IS:
            data, suffix = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes(), ".png"
    rel = f"images/{name}/image-{index:09d}{suffix}"
    with atomic_path(output_dir / rel) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    row = {"img_path": rel, "text": text}
    meta_raw = txn.get(meta_key(index))
    if meta_raw is not None:
        try:
            meta = json.loads(meta_raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
        if isinstance(meta, dict):
            row.update({str(k): v for k, v in meta.items() if k not in row})
        else:
            summary.note("bad_meta", where, rel, f"{meta_key(index).decode()} is not a JSON object; ignored")
    row[SOURCE_COLUMN], row[INDEX_COLUMN] = name, index
    return row


def _estimate_map_size(paths: Sequence[str]) -> int:
    """Bytes for an LMDB holding these files: values over ~2 KB take whole overflow pages, so round each
    file up to pages, double it for B-tree and label overhead, and add 64 MB of slack."""
    total = 0
    for path in paths:
        try:
            total += -(-(os.path.getsize(path) + 64) // _PAGE) * _PAGE
        except OSError:
            pass
    return 2 * total + (64 << 20)


class _Writer:
    """Puts key/value pairs into an LMDB in batches, growing the map when it fills up."""

    def __init__(self, path: str, map_size: int, batch_size: int = 1000):
        self.env = lmdb.open(path, map_size=map_size, subdir=True, meminit=False)
        self.pending: list[tuple[bytes, bytes]] = []
        self.batch_size = batch_size

    def put(self, key: bytes, value: bytes) -> None:
        self.pending.append((key, value))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in self.pending:
                        txn.put(key, value)
                self.pending = []
            except lmdb.MapFullError:  # the transaction was aborted; retry the batch with twice the map
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def close(self) -> None:
        self.flush()
        self.env.sync(True)
        self.env.close()


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder `new` onto `target`, replacing an earlier LMDB there (never other data)."""
    if target.exists():
        leftovers = {p.name for p in target.iterdir()} - {"data.mdb", "lock.mdb"}
        if not target.is_dir() or leftovers:
            raise FileExistsError(f"--output {str(target)!r} exists and is not an LMDB folder "
                                  f"(it holds {sorted(leftovers)[:5]}); choose a new folder or remove it")
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def csv_to_lmdb(csv_paths: Sequence[str | os.PathLike], output: str | os.PathLike, verify: bool = True,
                with_meta: bool = True) -> ConversionSummary:
    """Write the rows of labelled CSV(s) into a new LMDB folder `output` (indices 1..N in row order).

    PNG and JPEG bytes are stored as they are; other image formats are re-encoded as PNG (noted in the
    report). Extra columns go to `meta-%09d` unless `with_meta` is False. The LMDB is built beside `output`
    and moved onto it at the end, so a failed run leaves any earlier LMDB there untouched.
    Returns the summary (its report not yet written).
    """
    frames = [read_labelled_csv(p) for p in csv_paths]
    output = Path(output)
    if output.exists() and (not output.is_dir() or set(os.listdir(output)) - {"data.mdb", "lock.mdb"}):
        raise FileExistsError(f"--output {str(output)!r} exists and is not an LMDB folder; "
                              f"choose a new folder or remove it")
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = ConversionSummary(what="samples")
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        writer = _Writer(str(tmp), _estimate_map_size([p for f in frames for p in f["abs_path"]]))
        num_samples = 0
        for csv_path, frame in zip(csv_paths, frames):
            extra = [c for c in frame.columns if c not in ("img_path", "text", "abs_path")]
            records = frame.to_dict("records")
            for row_number, row in enumerate(tqdm(records, desc=f"writing LMDB from {Path(csv_path).name}",
                                                  unit="img", dynamic_ncols=True), start=2):
                where = f"{csv_path}:{row_number}"   # the CSV line (line 1 is the header)
                data = _encoded_image(row["abs_path"], row["img_path"], where, verify, summary)
                if data is None:
                    continue
                if not row["text"].strip():
                    summary.skip("empty_label", where, row["img_path"], "the text is blank")
                    continue
                num_samples += 1
                writer.put(image_key(num_samples), data)
                writer.put(label_key(num_samples), row["text"].encode("utf-8"))
                if with_meta and extra:
                    meta = {c: row[c] for c in extra}
                    writer.put(meta_key(num_samples), json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        writer.put(NUM_SAMPLES_KEY, str(num_samples).encode("ascii"))
        writer.close()
        _replace_dir(tmp, output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    summary.kept = num_samples
    return summary


def _encoded_image(path: str, shown: str, where: str, verify: bool, summary: ConversionSummary) -> bytes | None:
    """Bytes to store for one image file (PNG/JPEG as they are, others re-encoded), or None if skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        summary.skip("missing_image", where, shown, f"{path!r} does not exist")
        return None
    except OSError as error:
        summary.skip("unreadable_image", where, shown, f"{path!r}: {error}")
        return None
    suffix = image_suffix(data)
    if suffix in STORED_AS_IS and not verify:
        return data
    try:
        image = decode_image(data, path)  # within the pixel limit, or not decoded at all
    except ImageReadError as error:
        summary.skip("unreadable_image", where, shown, str(error))
        return None
    if suffix in STORED_AS_IS:
        return data
    summary.note("reencoded_png", where, shown, f"{suffix or 'unknown'} format stored as PNG")
    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.lmdb_dataset",
        description="Convert scene-text LMDB datasets (num-samples, image-%09d, label-%09d; 1-based) to "
                    "and from the labelled CSV.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
exit status: 0 if nothing was skipped for an error, 1 if any sample was skipped (the output is written
  either way and every skip is listed in <output>.bad.csv), 2 for bad arguments or unusable inputs.

examples:
  python -m scripts.lmdb_dataset to-csv data_lmdb_release/evaluation --output resources/benchmarks
  python -m scripts.lmdb_dataset from-csv resources/rendered/labels.csv --output resources/rendered_lmdb
""")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{to-csv,from-csv}")
    to_csv = commands.add_parser(
        "to-csv", help="LMDB(s) -> images + labels.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write every sample of the LMDB(s) as an image file plus a row of DIR/labels.csv "
                    "(img_path,text,<meta columns>,lmdb_source,lmdb_index). A folder holding several LMDBs "
                    "(folders with data.mdb) is searched recursively; each gets images/<name>/.",
        epilog="""\
skips (counted, listed in DIR/labels.csv.bad.csv, all errors: exit 1): missing_label, label_not_utf8,
  empty_label, missing_image, unreadable_image, empty_lmdb (an LMDB with no samples), unreadable_lmdb.
Re-running overwrites the same image files (named by index) and rewrites the CSV: no duplicated rows.""")
    to_csv.add_argument("lmdb_dirs", nargs="+", metavar="LMDB_DIR", help="LMDB folder(s), or folders above them")
    to_csv.add_argument("--output", required=True, help="output folder: images/ and the CSV")
    to_csv.add_argument("--csv-name", default="labels.csv", help="name of the CSV inside --output")
    to_csv.add_argument("--no-verify", action="store_true",
                        help="trust PNG/JPEG bytes without decoding them (faster; corrupt images slip through)")
    from_csv = commands.add_parser(
        "from-csv", help="labelled CSV(s) -> LMDB",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the rows of labelled CSV(s) into a new LMDB, indices 1..N in row order. PNG and "
                    "JPEG files are stored byte for byte, other formats as PNG; extra columns go to "
                    "meta-%09d as JSON (ignored by other tools; to-csv restores them).",
        epilog="""\
skips (counted, listed in LMDB_DIR.bad.csv, all errors: exit 1): missing_image, unreadable_image,
  empty_label. The LMDB is built beside --output and replaces an earlier LMDB there only when complete,
  so re-running gives the same LMDB, never duplicated samples. --output must be new or an LMDB folder.""")
    from_csv.add_argument("csv_paths", nargs="+", metavar="CSV", help="labelled CSV(s) (img_path,text,...)")
    from_csv.add_argument("--output", required=True, metavar="LMDB_DIR", help="LMDB folder to create or replace")
    from_csv.add_argument("--no-verify", action="store_true",
                          help="store PNG/JPEG files without decoding them (faster)")
    from_csv.add_argument("--no-meta", action="store_true", help="do not store extra columns as meta-%%09d")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 some rows failed (reported), 2 a usage or input error."""
    return run_cli(build_parser().parse_args, run, argv)


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    if args.command == "to-csv":
        summary = lmdb_to_csv(args.lmdb_dirs, args.output, args.csv_name, verify=not args.no_verify)
        return summary.finish(Path(args.output) / args.csv_name)
    summary = csv_to_lmdb(args.csv_paths, args.output, verify=not args.no_verify, with_meta=not args.no_meta)
    return summary.finish(Path(args.output))


if __name__ == "__main__":
    sys.exit(main())
