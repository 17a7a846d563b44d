"""Token datasets for the GPT: token CSVs (+ sidecars) -> fixed-length id tensors, built once at start.

Every row becomes one sequence of `max_visual_length + max_text_length` ids laid out by `gpt.vocab.Vocab`
(image part and text part, in the configured order) and a `loss_part` row saying which loss counts
each position. Batches are cut from the precomputed tensors with one index op (`__getitems__`): no
per-row Python runs while training.
"""
from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from gpt.config import DataConfig, path_list
from gpt.vocab import ORDERS, Vocab
from vqvae.plumbing.batches import SequentialBatchSampler, ShardedBatchSampler
from vqvae.plumbing.io import read_labelled_csv, write_csv_atomic
from vqvae.plumbing.trainer import resume_position
from vqvae.tokens import TOKENS_COLUMN, read_sidecar, string_to_grid

log = logging.getLogger(__name__)

SKIPPED_COLUMNS = ("split", "csv", "row", "img_path", "text", "reason")


def sidecar_num_codes(meta: dict, where: str) -> int:
    for key in ("num_codes", "codebook_size"):
        if key in meta:
            return int(meta[key])
    raise ValueError(f"sidecar of {where} records no codebook size (key 'num_codes'); re-create the token "
                     f"CSV with `python -m vqvae.encode`")


def read_token_csvs(paths: Sequence[str | os.PathLike], split: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read token CSVs and their sidecars; all must come from one VQ-VAE.

    Returns the rows of all files (columns as read plus `csv` and `row`, the 0-based row in its file)
    and the first file's sidecar.
    """
    if not paths:
        raise ValueError(f"data.{split} is empty; give one token CSV, a list, or comma-separated paths")
    frames, meta, first = [], None, None
    for path in paths:
        frame = read_labelled_csv(path, required=("img_path", "text", TOKENS_COLUMN))
        found = read_sidecar(path)
        if meta is None:
            meta, first = found, str(path)
        else:
            check_same_sidecar(meta, first, found, str(path))
        frame["csv"] = str(path)
        frame["row"] = np.arange(len(frame))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), meta


def check_same_sidecar(expected: dict, expected_where: str, found: dict, found_where: str) -> None:
    """Refuse token files from different VQ-VAEs (or a different codebook size), naming both."""
    if found.get("fingerprint") != expected.get("fingerprint"):
        raise ValueError(f"{found_where} was encoded by VQ-VAE {found.get('fingerprint')!r} but {expected_where} "
                         f"by VQ-VAE {expected.get('fingerprint')!r}; a GPT reads tokens of one VQ-VAE only: "
                         f"re-encode one of them with the other's checkpoint")
    if sidecar_num_codes(found, found_where) != sidecar_num_codes(expected, expected_where):
        raise ValueError(f"{found_where} has {sidecar_num_codes(found, found_where)} codes but {expected_where} "
                         f"has {sidecar_num_codes(expected, expected_where)}; re-encode with one VQ-VAE")


def read_base_charset(path: str | os.PathLike) -> str:
    """Characters of a base charset file: a charset.json (its `chars`) or a UTF-8 text file (all its
    characters except line breaks)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.base_charset={str(path)!r} does not exist; give a charset.json or a "
                                f"UTF-8 text file of characters, or set data.base_charset=null")
    if path.suffix == ".json":
        import json

        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "chars" not in data:
            raise ValueError(f"{path} is JSON without a 'chars' list; it is not a charset.json")
        return "".join(data["chars"])
    return path.read_text(encoding="utf-8").replace("\r", "").replace("\n", "")


class TokenDataset(Dataset):
    """Precomputed sequences: `ids` (N, L) int32, `loss_part` (N, L) int8 (PART_* of gpt.vocab) and the
    labels `texts` (N,). Items are dicts {"input_ids": (L,) int64, "loss_part": (L,) int8, "index": ()}."""

    def __init__(self, ids: np.ndarray, loss_part: np.ndarray, texts: Sequence[str]):
        assert ids.shape == loss_part.shape and ids.shape[0] == len(texts), "ids, parts and texts must align"
        self.ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        self.loss_part = torch.from_numpy(np.ascontiguousarray(loss_part, dtype=np.int8))
        self.texts = list(texts)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index].long(), "loss_part": self.loss_part[index],
                "index": torch.tensor(index)}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """A whole batch in one index op (used by DataLoader instead of per-item __getitem__)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return {"input_ids": self.ids[index].long(), "loss_part": self.loss_part[index], "index": index}


class LengthGroupedBatchSampler(ShardedBatchSampler):
    """Shuffled batches, each of images of similar length.

    Per epoch: a permutation seeded by (seed, epoch), cut into pools of `pool_batches` batches, each pool
    sorted by image length and cut into batches, the batches shuffled. With trimmed image padding
    (Vocab.trim_image_padding) a batch then costs about its own crops' tokens, not the longest crop's.
    Sharded across DDP ranks, and resumed mid-epoch, by `ShardedBatchSampler`."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int = 0, pool_batches: int = 50,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None):
        super().__init__(num_replicas, rank, pad=True)
        self.lengths, self.batch_size = np.asarray(lengths), batch_size
        self.seed, self.pool_batches = seed, pool_batches

    def num_batches(self) -> int:
        pool = self.batch_size * self.pool_batches
        full, rest = divmod(len(self.lengths), pool)
        return full * self.pool_batches + math.ceil(rest / self.batch_size)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        return [batches[index] for index in rng.permutation(len(batches))]


def batch_as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """collate_fn for `TokenDataset.__getitems__`, whose batches are already stacked."""
    return batch


@dataclass
class PreparedSplit:
    dataset: TokenDataset
    frame: pd.DataFrame  # the rows kept, in dataset order
    skipped: list[dict]  # rows left out (SKIPPED_COLUMNS)
    num_unknown_chars: int


def encode_frame(frame: pd.DataFrame, vocab: Vocab, order: str, max_visual_length: int, max_text_length: int,
                 skip_too_long: bool, split: str) -> PreparedSplit:
    """Lay out every row of a token frame (from `read_token_csvs`) as a sequence.

    Rows whose label has more than max_text_length - 2 characters, or whose grid needs more than
    max_visual_length tokens, raise ValueError naming the CSV and row, or with `skip_too_long` are left
    out and returned in `skipped`. Characters outside the charset become <unk>, counted with a warning.
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not one of {ORDERS}")
    grids, keep, skipped = [], [], []
    texts = frame["text"].tolist()
    for position, (grid_text, text, csv, row, img_path) in enumerate(tqdm(
            zip(frame[TOKENS_COLUMN], texts, frame["csv"], frame["row"], frame["img_path"]),
            total=len(frame), desc=f"reading {split} tokens", leave=False, disable=len(frame) < 10_000)):
        try:
            grid = string_to_grid(grid_text)
        except ValueError as error:
            raise ValueError(f"{csv} row {row} ({img_path}): {error}; re-encode this CSV") from None
        reasons = []
        if len(text) > max_text_length - 2:
            reasons.append(f"label has {len(text)} characters > max_text_length - 2 = {max_text_length - 2}")
        needed = grid.shape[0] * (grid.shape[1] + 1)
        if needed > max_visual_length:
            reasons.append(f"{grid.shape[0]}x{grid.shape[1]} grid needs {needed} tokens > "
                           f"max_visual_length = {max_visual_length}")
        if reasons:
            if not skip_too_long:
                raise ValueError(f"{csv} row {row} ({img_path}): {'; '.join(reasons)}. Raise data.max_text_length"
                                 f" / data.max_visual_length, or set data.skip_too_long=true to skip such rows")
            skipped.append({"split": split, "csv": csv, "row": int(row), "img_path": img_path, "text": text,
                            "reason": "; ".join(reasons)})
            continue
        grids.append(grid)
        keep.append(position)
    kept = frame.iloc[keep].reset_index(drop=True)
    kept_texts = kept["text"].tolist()
    if not kept_texts:
        raise ValueError(f"no {split} row fits max_visual_length={max_visual_length} and max_text_length="
                         f"{max_text_length} ({len(skipped)} skipped); raise the limits")
    unknown = Counter(c for text in kept_texts for c in text if c not in vocab._char_to_id)
    num_unknown = sum(unknown.values())
    if num_unknown:
        log.warning("%s: %d characters (%d distinct, e.g. %s) are not in the charset and become <unk>",
                    split, num_unknown, len(unknown), "".join(c for c, _ in unknown.most_common(20)))
    try:
        # A drawer must be told the orientation (Vocab.sequences); CSVs without the column are horizontal text.
        vertical = (kept["orientation"] == "vertical").tolist() if "orientation" in kept.columns else None
        ids, part = vocab.sequences(grids, kept_texts, order, max_visual_length, max_text_length, vertical)
    except ValueError as error:  # out-of-range codes: name the file, not only the index
        raise ValueError(f"{split} data ({', '.join(sorted(set(kept['csv'])))}): {error}") from None
    return PreparedSplit(TokenDataset(ids, part, kept_texts), kept, skipped, num_unknown)


class GPTDataModule(pl.LightningDataModule):
    """Train/val token datasets for one vocab and layout.

    Call `prepare()` (the CLI does, before building the model, because the vocab sizes the model):
    it reads the CSVs, checks that train and val come from one VQ-VAE, builds the charset from the
    training texts (+ data.base_charset) unless a `vocab` is given, and writes run_dir/charset.json and,
    when rows were skipped, run_dir/skipped.csv.
    """

    def __init__(self, cfg: DataConfig, order: str = "image_first", run_dir: Optional[str | os.PathLike] = None,
                 vocab: Optional[Vocab] = None, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.cfg, self.order, self.vocab = cfg, order, vocab
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.train_set: Optional[TokenDataset] = None
        self.val_set: Optional[TokenDataset] = None
        self.vqvae_meta: dict[str, Any] = {}
        self.max_visual_length: int = 0
        self.max_text_length: int = int(cfg.max_text_length)
        self.skipped: list[dict] = []

    def prepare(self) -> "GPTDataModule":
        cfg = self.cfg
        train_paths, val_paths = path_list(cfg.train), path_list(cfg.val)
        train_frame, meta = read_token_csvs(train_paths, "train")
        val_frame, val_meta = read_token_csvs(val_paths, "val")
        check_same_sidecar(meta, train_paths[0], val_meta, val_paths[0])
        num_codes = sidecar_num_codes(meta, train_paths[0])
        self.vqvae_meta = dict(meta)
        if cfg.max_visual_length is None:
            if "max_length" not in meta:
                raise ValueError(f"data.max_visual_length is unset and the sidecar of {train_paths[0]} records no "
                                 f"max_length; set data.max_visual_length")
            self.max_visual_length = int(meta["max_length"])
        else:
            self.max_visual_length = int(cfg.max_visual_length)
        if self.vocab is None:
            base = read_base_charset(cfg.base_charset) if cfg.base_charset else None
            self.vocab = Vocab.build(train_frame["text"], num_codes, base)
        elif self.vocab.num_codes != num_codes:
            raise ValueError(f"the model's vocab has {self.vocab.num_codes} codes but {train_paths[0]} was "
                             f"encoded with {num_codes}; use tokens of the model's VQ-VAE")
        args = (self.vocab, self.order, self.max_visual_length, self.max_text_length, cfg.skip_too_long)
        train = encode_frame(train_frame, *args, split="train")
        val = encode_frame(val_frame, *args, split="val")
        self.train_set, self.val_set = train.dataset, val.dataset
        self.skipped = train.skipped + val.skipped
        if self.run_dir is not None:
            self.vocab.save(self.run_dir / "charset.json")
            report = self.run_dir / "skipped.csv"
            if self.skipped:
                write_csv_atomic(pd.DataFrame(self.skipped, columns=list(SKIPPED_COLUMNS)), report)
            else:  # missing_ok: under torchrun/SLURM every rank runs this at the same time
                report.unlink(missing_ok=True)
        if self.skipped:
            log.warning("skipped %d rows that do not fit (train %d, val %d)%s", len(self.skipped),
                        len(train.skipped), len(val.skipped),
                        f"; listed in {self.run_dir / 'skipped.csv'}" if self.run_dir else "")
        log.info("train %d rows, val %d rows, vocab %d ids (%d characters, %d codes), sequence %d + %d",
                 len(self.train_set), len(self.val_set), self.vocab.size, self.vocab.num_chars, num_codes,
                 self.max_visual_length, self.max_text_length)
        return self

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is None:
            self.prepare()

    def _loader(self, dataset: TokenDataset, batch_sampler: torch.utils.data.Sampler[list[int]]) -> DataLoader:
        workers = int(self.cfg.num_workers)
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=batch_as_is,
                          persistent_workers=workers > 0, pin_memory=False)

    def train_dataloader(self) -> DataLoader:
        ids = self.train_set.ids
        lengths = ((ids != self.vocab.vpad_id) & (ids != self.vocab.pad_id)).sum(dim=1).numpy()
        sampler = LengthGroupedBatchSampler(lengths, int(self.cfg.batch_size), self.seed)
        if self.trainer is not None:
            # A resumed run goes on with the epoch (order) and batch where it stopped.
            sampler.set_epoch(*resume_position(self.trainer))
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, SequentialBatchSampler(len(self.val_set), int(self.cfg.batch_size)))
