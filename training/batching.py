"""Length-bucketed batches of padded id tensors (padding itself is rnntext's, shared with serving)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def bucketed(items: Sequence[T], lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[T]]:
    """Batches of similar length (little padding), in random order; every item once per call."""
    order = sorted(range(len(items)), key=lambda i: (lengths[i], rng.random()))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        yield [items[i] for i in chunk]


def shard(batches: Iterator[list[T]], rank: int, world: int) -> Iterator[list[T]]:
    """Every `world`-th batch for this rank (DistributedDataParallel); one process keeps them all."""
    for i, batch in enumerate(batches):
        if i % world == rank:
            yield batch
