"""Helpers shared by the dataset converters (prepare_aihub, lmdb_dataset, gt_to_csv).

Every converter keeps the same bookkeeping: rows kept, rows skipped by reason (each reason either
*expected*, like AIHub's illegible marker `xxx`, or an *error*), notes on rows kept with a change
(a clipped box), a bad-row report beside the output and an exit status of 1 if any error skip happened.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

from vqvae.plumbing.io import BadRowReport, report_path_for

EXIT_OK, EXIT_SKIPPED_ERRORS = 0, 1

# Magic numbers of the encoded formats other tools read from LMDBs and CSVs; anything else is re-encoded.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"BM", ".bmp"),
          (b"GIF87a", ".gif"), (b"GIF89a", ".gif"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


@dataclass
class ConversionSummary:
    """Counts of a conversion run and the report of every row that was skipped or changed.

    `skip()` drops a row for a reason; `note()` keeps a row but records what was changed. Reasons are
    short snake_case codes; the report's `reason` column is `code: detail`.
    """
    what: str = "rows"
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    noted: Counter = field(default_factory=Counter)
    error_reasons: set[str] = field(default_factory=set)
    report: BadRowReport = field(default_factory=BadRowReport)

    def skip(self, reason: str, where: int | str, img_path: str, detail: str = "", error: bool = True) -> None:
        """Count one dropped row; `error=False` for expected skips (illegible marker, duplicates)."""
        self.skipped[reason] += 1
        if error:
            self.error_reasons.add(reason)
        self.report.add(where, img_path, f"{reason}: {detail}" if detail else reason)

    def note(self, reason: str, where: int | str, img_path: str, detail: str = "") -> None:
        """Count one kept row that was changed on the way (listed in the report, not an error)."""
        self.noted[reason] += 1
        self.report.add(where, img_path, f"{reason} (kept): {detail}" if detail else f"{reason} (kept)")

    @property
    def num_errors(self) -> int:
        return sum(n for reason, n in self.skipped.items() if reason in self.error_reasons)

    @property
    def exit_code(self) -> int:
        """1 if any row was skipped for an error, else 0."""
        return EXIT_SKIPPED_ERRORS if self.num_errors else EXIT_OK

    def format(self, output: str | os.PathLike, report_path: Path | None) -> str:
        """Human-readable summary: kept, skipped by reason (error or expected), notes, report path."""
        lines = [f"kept {self.kept} {self.what} -> {output}"]
        if self.skipped:
            lines.append(f"skipped {sum(self.skipped.values())} ({self.num_errors} for errors):")
            width = max(len(r) for r in self.skipped)
            for reason, count in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
                kind = "error" if reason in self.error_reasons else "expected"
                lines.append(f"  {reason:<{width}}  {count:>8}  ({kind})")
        else:
            lines.append("skipped 0")
        for reason, count in sorted(self.noted.items()):
            lines.append(f"kept with a change: {reason} {count}")
        if report_path is not None:
            lines.append(f"report of skipped/changed rows: {report_path}")
        return "\n".join(lines)

    def finish(self, output: str | os.PathLike, stream: TextIO | None = None) -> int:
        """Write `<output>.bad.csv` (or remove a stale one), print the summary, return the exit status."""
        report_path = self.report.write(report_path_for(output))
        print(self.format(output, report_path), file=stream or sys.stdout, flush=True)
        return self.exit_code


def stable_id(*parts: str, length: int = 10) -> str:
    """Short hex digest of `parts`: the same inputs give the same name on every run and machine."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


_UNSAFE = re.compile(r"[^\w.-]+", re.UNICODE)


def safe_name(name: str, max_length: int = 60) -> str:
    """A file-name-safe version of `name` (keeps letters of any script, digits, `.`, `_`, `-`)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "x"
    return cleaned[:max_length]


def distinct_names(folders: Sequence[str | os.PathLike]) -> list[str]:
    """A file-name-safe name per folder: its base name, with parent names prefixed (`signs-label`) until
    different folders get different names; the same folder given twice gets the same name."""
    parts = [Path(os.path.abspath(d)).parts for d in folders]
    num_distinct = len(set(parts))
    names: list[str] = []
    for depth in range(1, max((len(p) for p in parts), default=0) + 1):
        names = ["-".join(safe_name(s) for s in p[-depth:]) for p in parts]
        if len(set(names)) == num_distinct:
            break
    return names


def path_for_csv(image_path: str | os.PathLike, csv_path: str | os.PathLike, absolute: bool = False) -> str:
    """`image_path` written so it resolves from the CSV's folder (DESIGN §1): relative, or absolute
    when asked or when no relative path exists (another drive on Windows). Uses `/` separators."""
    image_path = os.path.abspath(image_path)
    if absolute:
        return Path(image_path).as_posix()
    try:
        return Path(os.path.relpath(image_path, os.path.dirname(os.path.abspath(csv_path)))).as_posix()
    except ValueError:
        return Path(image_path).as_posix()


def image_suffix(data: bytes) -> str | None:
    """File suffix (`.png`, `.jpg`, ...) of encoded image bytes from their magic number, None if unknown.

    WebP is RIFF....WEBP; everything else is matched on its leading bytes.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    return None

