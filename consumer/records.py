"""What the processor takes in: one Kinesis record (or one document of a file)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputRecord:
    data: bytes
    shard_id: str | None = None
    sequence_number: str | None = None
    arrival_ms: int | None = None  # approximate arrival in Kinesis, epoch ms
