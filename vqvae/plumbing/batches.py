"""Batch samplers that shard across DDP ranks themselves and resume where a run stopped.

Lightning restores neither the position of a batch sampler nor of a plain sampler mid-epoch: a resumed
run would replay the start of the epoch. A `ShardedBatchSampler` subclass says which batches an epoch has
(`epoch_batches`, seeded by the epoch); this class shards them across ranks, advances the epoch on every
`iter()` (Lightning calls `set_epoch` on samplers only) and skips the batches a resumed run already trained
on (`set_epoch(epoch, skip)`, from `vqvae.plumbing.trainer.resume_position`). `build_trainer` sets
`use_distributed_sampler=False` so Lightning does not wrap it.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch


def dist_world() -> tuple[int, int]:
    """(world size, rank) of the initialised process group, else (1, 0)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class ShardedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Subclasses implement `epoch_batches(epoch)` (every batch of an epoch, in order) and `num_batches()`.

    With `pad` the batch list wraps around to a multiple of `num_replicas`, so every rank steps the same
    number of times (training); without it (validation, where ranks need not step together) every batch is
    seen exactly once, ranks differ by at most one batch, and a rank left with none gets a wrapped one.
    """

    def __init__(self, num_replicas: int | None = None, rank: int | None = None, pad: bool = True) -> None:
        world, world_rank = dist_world()
        self.num_replicas = world if num_replicas is None else num_replicas
        self.rank = world_rank if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank={self.rank} must be in [0, num_replicas={self.num_replicas})")
        self.pad = pad
        self.epoch = 0
        self._skip = 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        raise NotImplementedError

    def num_batches(self) -> int:
        raise NotImplementedError

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The next `iter()` gives epoch `epoch` from its batch `skip` on (this rank's batches); later ones
        go on from epoch + 1."""
        if epoch < 0 or skip < 0:
            raise ValueError(f"epoch={epoch} and skip={skip} must be >= 0")
        self.epoch, self._skip = int(epoch), int(skip)

    def __len__(self) -> int:
        total = self.num_batches()
        if not self.pad and total:
            return max(1, len(range(self.rank, total, self.num_replicas)))
        return math.ceil(total / self.num_replicas)

    def _this_rank(self, epoch: int) -> tuple[list[list[int]], int]:
        """This rank's batches of `epoch` and how many to skip; advances the epoch."""
        skip = self._skip
        self.epoch, self._skip = epoch + 1, 0
        batches = self.epoch_batches(epoch)
        if not batches:
            return [], 0
        if self.pad:
            padded = [batches[i % len(batches)] for i in range(len(self) * self.num_replicas)]
            return padded[self.rank::self.num_replicas], skip
        return batches[self.rank::self.num_replicas] or [batches[self.rank % len(batches)]], skip

    def __iter__(self) -> Iterator[list[int]]:
        mine, skip = self._this_rank(self.epoch)
        yield from mine[skip:]


class SequentialBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Validation order: rank r takes rows r, r + W, r + 2W, ... (W ranks) in batches of `batch_size`, so
    every row counts once over all ranks and the first rows of each rank are the first rows of the set. A
    rank left with no row gets row 0, so that it still logs."""

    def __init__(self, num_items: int, batch_size: int, num_replicas: int | None = None,
                 rank: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        world, world_rank = dist_world()
        num_replicas = world if num_replicas is None else num_replicas
        rank = world_rank if rank is None else rank
        rows = list(range(rank, num_items, num_replicas)) or [0]
        self.batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches
