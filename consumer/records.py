"""What the processor takes in: one Kinesis record (or one document of a file)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputRecord:
    data: bytes
    shard_id: str | None = None
    sequence_number: str | None = None
    arrival_ms: int | None = None  # approximate arrival in Kinesis, epoch ms


def in_batches(records: Iterable[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    """`records`, `size` at a time (the last batch shorter): how files and the replay's sources are fed."""
    batch: list[InputRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
