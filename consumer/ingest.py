"""`bedrockctl ingest PATH...`: files through the same processor core as the stream.

Accepted: JSON Lines of EventBridge events, CloudTrail records or invocation log records (`.jsonl`), a
CloudTrail log file or a single event (`.json`), invocation logs as Bedrock delivers them to S3 (`.json`
files holding one record per line), and any of these gzip'd (`.gz`). Each line (or whole document) is one
input record, numbered so that dead letters point back to `file:line`.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from bedrock_usage import db
from bedrock_usage.quota import format_usd
from bedrock_usage.retry import retry_transient
from consumer.assembly import ConsumerParts, assemble_consumer
from consumer.counters import TRANSIENT_ERRORS as REDIS_TRANSIENT
from consumer.metering import TRANSIENT_ERRORS as METERING_TRANSIENT
from consumer.processor import BatchResult
from consumer.records import InputRecord, in_batches
from consumer.settings import ConsumerSettings

BATCH = 5000


@dataclass
class Summary:
    files: int = 0
    records: int = 0
    calls: int = 0
    new: int = 0
    duplicates: int = 0
    rows_inserted: int = 0
    dead_letters: int = 0
    skipped: int = 0
    invocation_logs: int = 0
    logs_new: int = 0
    cost_nanos: int = 0
    beyond_horizon: int = 0
    decisions: dict[str, int] = field(default_factory=dict)

    def add(self, result: BatchResult) -> None:
        self.records += result.records
        self.calls += result.calls
        self.new += result.new
        self.duplicates += result.duplicates
        self.rows_inserted += result.rows_inserted
        self.dead_letters += result.dead_letters
        self.skipped += result.skipped
        self.invocation_logs += result.invocation_logs
        self.logs_new += result.logs_new
        self.cost_nanos += result.cost_nanos
        self.beyond_horizon += result.beyond_horizon
        for decision in result.decisions:
            self.decisions[decision.kind.value] = self.decisions.get(decision.kind.value, 0) + 1

    def line(self) -> str:
        decided = ", ".join(f"{n} {k}" for k, n in sorted(self.decisions.items())) or "none"
        return (
            f"ingested {self.records} records from {self.files} files: {self.calls} calls"
            f" ({self.new} new, {self.duplicates} duplicates, {self.rows_inserted} rows written,"
            f" {self.beyond_horizon} MySQL-only), {self.invocation_logs} invocation logs ({self.logs_new} new,"
            f" {format_usd(self.cost_nanos)}),"
            f" {self.skipped} skipped, {self.dead_letters} dead letters; decisions: {decided}"
        )


def documents(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, document) of a file in any format above, gzip'd or not."""
    return documents_in(path.read_bytes(), path.name)


def _several_documents(raw: bytes) -> bool:
    """A `.json` file of one record per line (Bedrock's S3 delivery of invocation logs), not one document."""
    if raw.count(b"\n") < 1:
        return False
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        first = raw.lstrip().split(b"\n", 1)[0]
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return True
    return False


def file_batches(path: Path, size: int = BATCH) -> Iterator[list[InputRecord]]:
    """The input records of one file, `size` at a time (also what `bedrockctl replay --files` reads)."""
    return in_batches((InputRecord(data, shard_id=None, sequence_number=str(number))
                       for number, data in documents(path)), size)


def ingest_paths(settings: ConsumerSettings, paths: Sequence[Path]) -> Summary:
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    summary = Summary()
    for path in paths:
        _ingest_file(assemble_consumer(settings, source=f"file:{path}", registry=CollectorRegistry()), path, summary)
    return summary


def _ingest_file(parts: ConsumerParts, path: Path, summary: Summary) -> None:
    transient = REDIS_TRANSIENT + db.TRANSIENT_ERRORS + METERING_TRANSIENT
    try:
        for batch in file_batches(path):
            summary.add(retry_transient(
                lambda b=batch: parts.processor.process(b),  # type: ignore[misc]
                transient, on_retry=lambda e, a: parts.reset_connections(), max_attempts=8,
            ))
        # People still being looked up: wait for their answers, then settle their held calls.
        if parts.people.finish_lookups(timeout=60):
            retry_transient(lambda: parts.processor.process([]), transient,
                            on_retry=lambda e, a: parts.reset_connections(), max_attempts=8)
    finally:
        parts.close()
    summary.files += 1


def documents_in(raw: bytes, name: str) -> Iterator[tuple[int, bytes]]:
    """(line number, document) of a file's bytes, read as `documents` reads a file named `name` (for sources
    that are not local files: `bedrockctl replay --s3`)."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    stem = name.removesuffix(".gz")
    if stem.endswith(".jsonl") or stem.endswith(".ndjson") or _several_documents(raw):
        for number, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                yield number, line
    else:
        yield 1, raw
