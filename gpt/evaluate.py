"""Evaluate a recognition export on labelled image datasets: a per-dataset table and a combined row.

    python -m gpt.evaluate outputs/bench/gpt data/test_en/labels.csv data/test_ko/labels.csv --json results.json
    python -m gpt.evaluate MODEL_DIR labels.csv --ignore-case --ignore-space --predictions outputs/preds/
    python -m gpt.evaluate MODEL_DIR labels.csv --by font --by label_length

Each CSV (`img_path,text`, DESIGN §1) is read end to end like `python -m gpt.read` (VQ encoding, then GPT
decoding). Columns: dataset, samples, accuracy, 1-NED, CER, mean confidence, mean label length, images/s
(both stages), and failed (images that could not be read: listed on stderr, in the --json file and in
PREDICTIONS/DATASET.bad.csv; they are left out of the metrics and make the exit status 1). The combined
row pools every sample (not a mean of the datasets' rates). `--by COLUMN` adds a table per value of a CSV
column (e.g. `font`, `orientation`, `language` of `scripts.render_text` datasets) or of `label_length`.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from gpt.metrics import normalize_for_metrics, text_metrics
from gpt.options import add_inference_options, check_inference_options, take_model_argument
from gpt.pretrained import Pretrained, load_pretrained
from gpt.reading import read_images
from vqvae.plumbing.io import BadRowReport, read_labelled_csv, write_csv_atomic, write_json_atomic
from vqvae.plumbing.cli import run_cli

log = logging.getLogger(__name__)

# Folder names that say nothing about a dataset, so the dataset is named after its folder instead.
_GENERIC_STEMS = {"labels", "label", "gt", "data", "annotations", "test", "val", "index"}

TABLE_COLUMNS = ["dataset", "samples", "accuracy", "one_minus_ned", "cer", "mean_confidence",
                 "mean_label_length", "images_per_s", "failed"]
LABEL_LENGTH = "label_length"  # --by this: characters of the label, after the metrics' normalization
# Columns evaluate() adds to (or keeps per image in) a prediction frame: nothing to break the table down by.
_PER_SAMPLE_COLUMNS = ("img_path", "label", "text", "confidence", "correct")


def dataset_names(paths: Sequence[str | Path]) -> list[str]:
    """Short, distinct names: the CSV's stem, or its folder's name for stems like `labels`; duplicates get
    `#2`, `#3`..."""
    names = []
    for path in map(Path, paths):
        name = path.parent.name if path.stem.lower() in _GENERIC_STEMS and path.parent.name else path.stem
        base, number = name, 2
        while name in names:
            name, number = f"{base}#{number}", number + 1
        names.append(name)
    return names


def summary_row(name: str, predictions: Sequence[str], labels: Sequence[str], confidences: Sequence[float],
                seconds: float, failed: int, ignore_case: bool, ignore_space: bool) -> dict[str, Any]:
    """One table row: metrics of (predictions, labels) plus mean confidence, mean label length (characters
    after the same normalization as the metrics), images/s and the failed count."""
    metrics = text_metrics(predictions, labels, ignore_case=ignore_case, ignore_space=ignore_space)
    lengths = [len(normalize_for_metrics(label, ignore_case, ignore_space)) for label in labels]
    return {"dataset": name, "samples": metrics["num_samples"], "accuracy": metrics["accuracy"],
            "one_minus_ned": metrics["one_minus_ned"], "cer": metrics["cer"],
            "mean_confidence": float(np.mean(confidences)) if len(confidences) else float("nan"),
            "mean_label_length": float(np.mean(lengths)) if lengths else float("nan"),
            "images_per_s": len(predictions) / seconds if seconds > 0 else float("nan"), "failed": failed}


def evaluate(pretrained: Pretrained, csv_paths: Sequence[str], batch_size: int = 128,
             num_workers: Optional[int] = None, num_beams: int = 1, precision: str = "auto", ignore_case: bool = False,
             ignore_space: bool = False, progress: bool = True, votes: int = 1
             ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, BadRowReport]]:
    """Evaluate every labelled CSV. Returns (table with one row per dataset and a last row "combined",
    per-dataset prediction frames (input columns, `label`, `text`, `confidence`, `correct`),
    per-dataset reports of images that could not be read)."""
    if not csv_paths:
        raise ValueError("no dataset given: pass one or more labelled CSVs (img_path,text)")
    names = dataset_names(csv_paths)
    frames = [read_labelled_csv(path) for path in csv_paths]  # every CSV is checked before any work
    rows, predictions, reports = [], {}, {}
    pooled: dict[str, list] = {"pred": [], "label": [], "conf": []}
    total_seconds, total_failed = 0.0, 0
    for name, frame in zip(names, frames):
        result = read_images(pretrained, list(frame["abs_path"]), batch_size, num_workers, num_beams,
                             precision, progress, votes)
        for row in result.report.rows:  # name the image as its CSV gives it
            row["img_path"] = frame["img_path"].iat[int(row["row"])]
        readable = [i for i, p in enumerate(result.predictions) if p is not None]
        out = frame.iloc[readable].drop(columns="abs_path").rename(columns={"text": "label"}).reset_index(drop=True)
        out["text"] = [result.predictions[i][0] for i in readable]  # type: ignore[index]
        out["confidence"] = [result.predictions[i][1] for i in readable]  # type: ignore[index]
        out["correct"] = [normalize_for_metrics(p, ignore_case, ignore_space)
                          == normalize_for_metrics(g, ignore_case, ignore_space)
                          for p, g in zip(out["text"], out["label"])]
        seconds = result.seconds
        rows.append(summary_row(name, list(out["text"]), list(out["label"]), list(out["confidence"]), seconds,
                                len(result.report), ignore_case, ignore_space))
        predictions[name], reports[name] = out, result.report
        pooled["pred"] += list(out["text"])
        pooled["label"] += list(out["label"])
        pooled["conf"] += list(out["confidence"])
        total_seconds += seconds
        total_failed += len(result.report)
    rows.append(summary_row("combined", pooled["pred"], pooled["label"], pooled["conf"], total_seconds,
                            total_failed, ignore_case, ignore_space))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), predictions, reports


def breakdown(predictions: dict[str, pd.DataFrame], column: str, ignore_case: bool = False,
              ignore_space: bool = False) -> pd.DataFrame:
    """Accuracy, 1-NED, CER and mean confidence per value of `column` in each dataset's prediction frame
    (from `evaluate`; any column of its CSV) or per label length (`label_length`), then pooled over the
    datasets ("combined"). Values sort in their natural order (numbers as numbers). Datasets without the
    column are left out of this table (a warning names them); ValueError when none has it."""
    frames, without = [], []
    for name, frame in predictions.items():
        if column == LABEL_LENGTH:
            values = [len(normalize_for_metrics(label, ignore_case, ignore_space)) for label in frame["label"]]
        elif column in frame.columns and column not in _PER_SAMPLE_COLUMNS:
            values = list(frame[column])
        else:
            without.append(name)
            continue
        frames.append(pd.DataFrame({"dataset": name, column: values, "label": frame["label"],
                                    "text": frame["text"], "confidence": frame["confidence"]}))
    if not frames:
        have = sorted({c for f in predictions.values() for c in f.columns if c not in _PER_SAMPLE_COLUMNS})
        raise ValueError(f"--by {column}: no dataset has such a column; use one of {have + [LABEL_LENGTH]}")
    if without:
        log.warning("--by %s: %s have no such column and are left out of that table", column, without)
    pooled = pd.concat(frames, ignore_index=True)
    rows = []
    for name, group in [*pooled.groupby("dataset", sort=False), ("combined", pooled)]:
        for value, part in group.groupby(column, sort=True):
            metrics = text_metrics(list(part["text"]), list(part["label"]), ignore_case=ignore_case,
                                   ignore_space=ignore_space)
            rows.append({"dataset": name, column: value, "samples": metrics["num_samples"],
                         "accuracy": metrics["accuracy"], "one_minus_ned": metrics["one_minus_ned"],
                         "cer": metrics["cer"], "mean_confidence": float(part["confidence"].mean())})
    return pd.DataFrame(rows, columns=["dataset", column, "samples", "accuracy", "one_minus_ned", "cer",
                                       "mean_confidence"])


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text: rates in %, CER in %, speeds with one decimal."""
    shown = table.copy()
    for column in ("accuracy", "one_minus_ned", "cer", "mean_confidence"):
        shown[column] = [f"{100 * v:.2f}" if math.isfinite(v) else "-" for v in shown[column]]
    for column, digits in (("mean_label_length", 2), ("images_per_s", 1)):
        if column in shown:
            shown[column] = [f"{v:.{digits}f}" if math.isfinite(v) else "-" for v in shown[column]]
    shown = shown.rename(columns={"accuracy": "accuracy %", "one_minus_ned": "1-NED %", "cer": "CER %",
                                  "mean_confidence": "confidence %", "mean_label_length": "label length",
                                  "images_per_s": "images/s"})
    return shown.to_string(index=False)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("datasets", nargs="+", metavar="[MODEL_DIR] DATASET",
                        help="a recognition export folder (python -m gpt.export; default: the shipped model "
                             "resources/models/ocr-ko-en), then labelled CSVs img_path,text")
    parser.add_argument("--json", default=None, help="also write the table (and settings) as JSON here")
    parser.add_argument("--predictions", default=None, help="folder for per-sample predictions, DATASET.csv each")
    parser.add_argument("--ignore-case", action="store_true", help="compare case-insensitively")
    parser.add_argument("--ignore-space", action="store_true", help="drop all whitespace before comparing")
    parser.add_argument("--by", action="append", default=[], metavar="COLUMN",
                        help=f"also a table per value of this CSV column (e.g. font, orientation) or of "
                             f"{LABEL_LENGTH}; repeatable")
    add_inference_options(parser, image_files=True)
    args = parser.parse_args(argv)
    check_inference_options(parser, args)
    take_model_argument(parser, args, "datasets", "labelled CSV")
    return args


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return _json_safe(value.item())
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 ok, 1 some images could not be read (reported), 2 a usage or input error."""
    return run_cli(parse_args, run, argv, logging.WARNING)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    pretrained = load_pretrained(args.model_dir, device=args.device, load_tokenizer=False, load_vqvae=True)
    table, predictions, reports = evaluate(
        pretrained, args.datasets, args.batch_size, args.num_workers, args.num_beams, args.precision,
        args.ignore_case, args.ignore_space, not args.no_progress, args.votes)
    breakdowns = {column: breakdown(predictions, column, args.ignore_case, args.ignore_space)
                  for column in args.by}
    print(format_table(table))
    for column, by_table in breakdowns.items():
        print(f"\nby {column}:\n{format_table(by_table)}")
    bad_files = []
    if args.predictions:
        folder = Path(args.predictions)
        for name, frame in predictions.items():
            safe = name.replace("/", "_").replace("#", "_")
            write_csv_atomic(frame, folder / f"{safe}.csv")
            path = reports[name].write(folder / f"{safe}.bad.csv")
            if path:
                bad_files.append(str(path))
        print(f"per-sample predictions in {folder}/", file=sys.stderr)
    if args.json:
        records = [{k: _json_safe(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
        failures = {name: report.rows for name, report in reports.items() if len(report)}
        write_json_atomic({"model": str(args.model_dir), "datasets": [str(d) for d in args.datasets],
                           "ignore_case": args.ignore_case, "ignore_space": args.ignore_space,
                           "num_beams": args.num_beams, "votes": args.votes, "precision": args.precision,
                           "results": records[:-1], "combined": records[-1], "failed_images": failures,
                           "by": {column: [{k: _json_safe(v) for k, v in row.items()}
                                           for row in by_table.to_dict(orient="records")]
                                  for column, by_table in breakdowns.items()}}, args.json)
    num_failed = int(table["failed"].iloc[-1])
    if num_failed:
        for name, report in reports.items():
            for row in report.rows:
                print(f"failed: {name}: {row['img_path']}: {row['reason']}", file=sys.stderr)
        where = f"; listed in {bad_files}" if bad_files else ""
        print(f"{num_failed} image(s) could not be read and are not in the metrics{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
