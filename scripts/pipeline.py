"""Runs the project's own commands one after another, as a user would, for make demo, bench and pretrain.

Each step is a real `python -m ...` subprocess (so the demo exercises the documented CLIs), its output
goes to `<out>/logs/<step>.log`, its wall time and command are recorded (a resumed run skips what is
done), and a failing step stops the run with the tail of its log.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vqvae.plumbing.io import write_json_atomic

# Training runs: keep glibc from returning big activation buffers to the OS between steps (measured up to
# 2.4x slower conv batches without it), and keep wandb and HF offline.
TRAINING_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "2147483647",
    "WANDB_MODE": "offline",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class StepFailed(RuntimeError):
    pass


@dataclass
class Pipeline:
    out_dir: Path
    resume: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    ran: set[str] = field(default_factory=set)  # steps run (not skipped) in this call

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        (self.out_dir / "logs").mkdir(parents=True, exist_ok=True)

    def run(self, name: str, module: str, *args: Any, check: bool = True, ok: tuple[int, ...] = (0,),
            after: Sequence[str] = ()) -> int:
        """Run `python -m module args...`; log to logs/<name>.log; return the exit code. Codes in `ok` count
        as done (e.g. 1 for a command that finished and reported some bad rows).

        With `resume`, a step that finished in an earlier call (logs/<name>.done: its seconds, then its
        command) is skipped when its command is the same and no step named in `after` (its inputs) ran in
        this call; a changed command (e.g. a larger time budget) runs it again."""
        argv = [sys.executable, "-m", module, *map(str, args)]
        command = " ".join(argv[1:])
        log_path = self.out_dir / "logs" / f"{name}.log"
        done_path = log_path.with_suffix(".done")
        if self.resume and done_path.is_file() and not set(after) & self.ran:
            seconds, _, recorded = done_path.read_text().partition("\n")
            # A marker written before commands were recorded holds the seconds only: it counts as done.
            if recorded.strip() in ("", command):
                self.timings[name] = float(seconds)
                print(f"==> [{name}] done in an earlier run ({self.timings[name]:.0f} s), skipped", flush=True)
                return 0
            print(f"==> [{name}] its command changed since the earlier run: running it again", flush=True)
        self.ran.add(name)
        done_path.unlink(missing_ok=True)
        print(f"==> [{name}] {command}", flush=True)
        start = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(" ".join(argv) + "\n")
            log.flush()
            code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **TRAINING_ENV})
        seconds = time.perf_counter() - start
        self.timings[name] = round(seconds, 1)
        print(f"    {'ok' if code == 0 else f'exit {code}'} in {seconds:.0f} s (log: {log_path})", flush=True)
        if code in ok:
            done_path.write_text(f"{seconds:.1f}\n{command}\n")
        if code not in ok and check:
            tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
            raise StepFailed(f"step {name!r} failed with exit code {code}; last lines of {log_path}:\n"
                             + "\n".join(tail))
        return code

    def total_minutes(self) -> float:
        return round(sum(self.timings.values()) / 60.0, 1)


def replace_dir(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the folder `source` to `target`, replacing what was there (exports other tools look for)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def csv_rows(paths: Sequence[str | os.PathLike]) -> int:
    """Data rows of CSV files with one header line each (token shards: one crop per line)."""
    total = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            total += sum(1 for _ in f) - 1
    return total


def print_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A plain-text table (also valid Markdown) of `rows` restricted to `columns`."""
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    return text


def save_results(path: str | os.PathLike, results: dict) -> None:
    write_json_atomic(results, path)
