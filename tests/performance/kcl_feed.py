"""The MultiLangDaemon's side of the KCL protocol, for the benchmark: records reach our RecordProcessor the
way they do in production — JSON lines with base64 `data` (the messages tests/integration/test_kcl_protocol.py
scripts), read by amazon_kclpy's own KCLProcess loop over a pipe, in batches no larger than one GetRecords
call returns, with the daemon's replies to every checkpoint the processor asks for.

What the Java daemon does (fetching, encoding the messages) is done before the clock starts; what the
processor's process does (reading and decoding the JSON and base64, the processor core, checkpointing)
is timed.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from amazon_kclpy import kcl

from consumer.kcl_processor import RecordProcessor
from consumer.settings import ConsumerSettings

# What one GetRecords call returns at most (Kinesis quotas): 10 MB of record data or 10,000 records.
GETRECORDS_MAX_BYTES = 10 * 1024 * 1024
GETRECORDS_MAX_RECORDS = 10_000
SHARD = "shardId-000000000000"


def split(data: Sequence[bytes], *, max_records: int = GETRECORDS_MAX_RECORDS,
          max_bytes: int = GETRECORDS_MAX_BYTES) -> list[range]:
    """Consecutive batches of `data` (as index ranges), each within both GetRecords limits."""
    batches: list[range] = []
    start, size = 0, 0
    for i, raw in enumerate(data):
        if i > start and (i - start >= max_records or size + len(raw) > max_bytes):
            batches.append(range(start, i))
            start, size = i, 0
        size += len(raw)
    if start < len(data):
        batches.append(range(start, len(data)))
    return batches


def process_records_line(data: Sequence[bytes], batch: range, arrival_ms: int) -> bytes:
    """One processRecords message as the daemon writes it (sequence numbers = 1-based record index)."""
    return orjson.dumps({
        "action": "processRecords", "millisBehindLatest": 0,
        "records": [{"action": "record", "data": base64.b64encode(data[i]).decode(), "partitionKey": "k",
                     "sequenceNumber": str(i + 1), "subSequenceNumber": 0, "approximateArrivalTimestamp": arrival_ms}
                    for i in batch]}) + b"\n"


@dataclass
class KclRun:
    records: int
    batches: int
    largest_batch_bytes: int
    elapsed: float  # first processRecords written → the last batch checkpointed and shut down
    cpu: float  # this process's CPU time over `elapsed`
    batch_sent: list[float] = field(default_factory=list)  # wall time each processRecords was written
    checkpoints: list[str | None] = field(default_factory=list)


class Daemon:
    """Talks to one RecordProcessor, run by kclpy's KCLProcess in a thread, over two pipes."""

    def __init__(self, settings: ConsumerSettings) -> None:
        to_processor, self._ours_w = os.pipe()
        self._ours_r, from_processor = os.pipe()
        self._to = os.fdopen(self._ours_w, "wb")
        self._from = os.fdopen(self._ours_r, "r", encoding="utf-8")
        self.errors = io.StringIO()
        self._process = kcl.KCLProcess(RecordProcessor(settings), input_file=os.fdopen(to_processor, "r"),
                                       output_file=os.fdopen(from_processor, "w"), error_file=self.errors)
        self._thread = threading.Thread(target=self._process.run, name="kcl-process", daemon=True)

    def run(self, data: Sequence[bytes], batches: Sequence[range]) -> KclRun:
        self._thread.start()
        checkpoints: list[str | None] = []
        self._say({"action": "initialize", "shardId": SHARD, "sequenceNumber": "TRIM_HORIZON",
                   "subSequenceNumber": 0}, checkpoints)
        now_ms = int(time.time() * 1000)
        lines = [process_records_line(data, b, now_ms) for b in batches]  # the daemon's work: not timed
        sent: list[float] = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        for line in lines:
            sent.append(time.time())
            self._send(line, checkpoints)
        self._say({"action": "shutdownRequested"}, checkpoints)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        self._to.close()  # end of input: kclpy's loop returns
        self._thread.join(timeout=60)
        self._from.close()
        return KclRun(len(data), len(batches), max(len(line) for line in lines), elapsed, cpu, sent, checkpoints)

    def _say(self, message: dict[str, Any], checkpoints: list[str | None]) -> None:
        self._send(orjson.dumps(message) + b"\n", checkpoints)

    def _send(self, line: bytes, checkpoints: list[str | None]) -> None:
        """Write one message, answer the checkpoints it causes, return at its status reply."""
        self._to.write(line)
        self._to.flush()
        for reply in self._replies():
            if reply["action"] == "checkpoint":
                checkpoints.append(reply.get("sequenceNumber"))
                self._to.write(orjson.dumps({"action": "checkpoint", "sequenceNumber": reply.get("sequenceNumber"),
                                             "subSequenceNumber": 0, "error": None}) + b"\n")
                self._to.flush()
            elif reply["action"] == "status":
                return
        raise RuntimeError(f"the record processor stopped answering; its stderr: {self.errors.getvalue()[-2000:]}")

    def _replies(self) -> Iterator[dict[str, Any]]:
        for line in self._from:  # kclpy writes "\n<json>\n" per message
            if line.strip():
                yield orjson.loads(line)


def run_kcl(settings: ConsumerSettings, data: Sequence[bytes], batches: Sequence[range]) -> KclRun:
    return Daemon(settings).run(data, batches)
