"""Memory that gpt.train's data takes: the peak while the token CSVs become sequences, and what stays after.

    python -m scripts.bench_data_memory --train a/tokens.csv,b/tokens.csv --val val/tokens.csv [--base-charset C]

Runs `GPTDataModule.prepare` (what gpt.train does before the model is built) in this process and prints, in MB,
the peak resident memory (getrusage) and the resident memory afterwards (/proc/self/statm), with the sequences'
own size. Run it with and without MALLOC_TRIM_THRESHOLD_ set: a heap that is never trimmed keeps the peak.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys

from omegaconf import OmegaConf

from gpt.config import DataConfig
from gpt.data import GPTDataModule

MB = 2 ** 20


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="token CSVs, comma-separated (data.train)")
    parser.add_argument("--val", required=True, help="token CSV(s) of the validation set (data.val)")
    parser.add_argument("--base-charset", help="data.base_charset")
    args = parser.parse_args(argv)
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig),
                          {"train": args.train, "val": args.val, "base_charset": args.base_charset})
    data = GPTDataModule(cfg).prepare()
    ids, part = data.train_set.ids, data.train_set.loss_part
    figures = {"train_rows": len(data.train_set), "sequence_length": int(ids.shape[1]),
               "sequences_mb": round((ids.nbytes + part.nbytes) / MB, 3),
               "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KB on Linux
               "after_mb": round(resident_mb(), 1),
               "malloc_trim_threshold": os.environ.get("MALLOC_TRIM_THRESHOLD_")}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
