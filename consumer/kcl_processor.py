"""The KCL record processor (amazon_kclpy v3), run by the MultiLangDaemon, one process per shard.

stdout is the daemon's protocol channel: nothing here prints; logs go to stderr.

- process_records: run the batch through the processor core. On Redis/MySQL outages (Redis full under
  noeviction is one: bedrock_usage.redis_errors) retry with capped backoff, *without* returning
  (returning would let the daemon move on) and without checkpointing. Checkpoint at the batch's highest
  sequence number (compared as integers) once its effects are durable: at once for small (live) batches;
  for full batches (a backlog), the MySQL commit of one batch overlaps the counting of the next and the
  checkpoint follows one call later.
- A non-transient exception is a bug: kclpy would swallow it and the batch would be skipped
  (its loop catches everything but SystemExit), so we exit instead. The daemon then shuts down, is
  restarted (ECS), and re-processes from the last checkpoint — idempotently.
- lease_lost: return without checkpointing (another worker owns the shard).
- shard_ended / shutdown_requested: wait for the batch in flight, checkpoint (at SHARD_END, resp.
  the last processed record).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor as kcl_v3
from prometheus_client import CollectorRegistry

from bedrock_usage import db, logs, redis_errors
from bedrock_usage.keys import Keys
from bedrock_usage.redis_marker import RedisForgot
from bedrock_usage.retry import retry_transient
from consumer.assembly import ConsumerParts, assemble_consumer, sync_limits
from consumer.counters import TRANSIENT_ERRORS as REDIS_TRANSIENT
from consumer.metering import TRANSIENT_ERRORS as METERING_TRANSIENT
from consumer.processor import BatchInFlight
from consumer.records import InputRecord
from consumer.settings import ConsumerSettings

log = logging.getLogger("consumer.kcl")

TRANSIENT = REDIS_TRANSIENT + db.TRANSIENT_ERRORS + METERING_TRANSIENT
# Checkpoint errors worth retrying; ShutdownException means the lease is gone: give up quietly.
_RETRY_CHECKPOINT = {"ThrottlingException", "KinesisClientLibDependencyException"}


# Batches at least this big are pipelined: the next one is counted while this one is committed.
PIPELINE_MIN_RECORDS = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class _Unacknowledged:
    """A batch submitted to the processor and not checkpointed yet."""

    flight: BatchInFlight
    batch: list[InputRecord]
    highest: str  # sequence numbers compare as integers


class RecordProcessor(kcl_v3.RecordProcessorBase):  # type: ignore[misc]
    def __init__(self, settings: ConsumerSettings) -> None:
        self._settings = settings
        self._parts: ConsumerParts | None = None
        self._shard = "unknown"
        self._last_sequence: str | None = None
        self._unacknowledged: _Unacknowledged | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def initialize(self, initialize_input: Any) -> None:
        self._shard = initialize_input.shard_id
        log.info("shard initialised", extra={"shard": self._shard, "from": initialize_input.sequence_number})
        self._parts = assemble_consumer(
            self._settings, source=f"kinesis:{self._settings.stream_name}", registry=CollectorRegistry()
        )
        retry_transient(lambda: sync_limits(self._require(), Keys(self._settings.redis_key_prefix)),
                        TRANSIENT, on_retry=self._on_retry)

    def process_records(self, process_records_input: Any) -> None:
        records = process_records_input.records
        parts = self._require()
        parts.metrics.millis_behind_latest.labels(self._shard).set(process_records_input.millis_behind_latest or 0)
        if not records:
            # Caught up: acknowledge a backlog batch still in flight, then let the core do its idle work
            # (lookups answered since, settlements): nothing to checkpoint for the empty batch itself.
            if self._unacknowledged is not None:
                self._acknowledge(self._unacknowledged, process_records_input.checkpointer)
            self._guard(lambda: retry_transient(lambda: parts.processor.process([]), TRANSIENT,
                                                on_retry=self._on_retry))
            return
        batch = [
            InputRecord(r.binary_data, self._shard, r.sequence_number, r.timestamp_millis)
            for r in records
        ]
        highest = str(max(int(r.sequence_number or 0) for r in batch))
        flight = self._guard(lambda: retry_transient(
            lambda: parts.processor.submit(batch), TRANSIENT, on_retry=self._on_retry))
        previous, self._unacknowledged = self._unacknowledged, _Unacknowledged(flight, batch, highest)
        checkpointer = process_records_input.checkpointer
        if previous is not None:
            self._acknowledge(previous, checkpointer)
        if len(batch) < PIPELINE_MIN_RECORDS:
            # Live traffic: small batches, acknowledged at once. Catching up on a backlog (full batches),
            # the MySQL commit of one batch overlaps the counting of the next, and is acknowledged then.
            self._acknowledge(self._unacknowledged, checkpointer)

    def lease_lost(self, lease_lost_input: Any) -> None:
        log.info("lease lost", extra={"shard": self._shard})
        if self._unacknowledged is not None:  # let it finish (it is idempotent) but do not acknowledge it
            with contextlib.suppress(Exception):
                self._unacknowledged.flight.wait()
            self._unacknowledged = None
        self._close()

    def shard_ended(self, shard_ended_input: Any) -> None:
        log.info("shard ended", extra={"shard": self._shard})
        if self._unacknowledged is not None:
            self._acknowledge(self._unacknowledged, shard_ended_input.checkpointer)
        self._checkpoint(shard_ended_input.checkpointer, None)
        self._close()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        log.info("shutdown requested", extra={"shard": self._shard})
        if self._unacknowledged is not None:
            self._acknowledge(self._unacknowledged, shutdown_requested_input.checkpointer)
        elif self._last_sequence is not None:
            self._checkpoint(shutdown_requested_input.checkpointer, self._last_sequence)
        self._close()

    def _acknowledge(self, unacknowledged: _Unacknowledged, checkpointer: Any) -> None:
        """Wait until a batch is durable (redoing it if MySQL failed under it), then checkpoint it."""
        parts = self._require()
        try:
            result = unacknowledged.flight.wait()
        except TRANSIENT as error:
            self._on_retry(error, 0)
            result = self._guard(lambda: retry_transient(
                lambda: parts.processor.process(unacknowledged.batch), TRANSIENT, on_retry=self._on_retry))
        except Exception:
            self._die()
        if self._unacknowledged is unacknowledged:
            self._unacknowledged = None
        self._checkpoint(checkpointer, unacknowledged.highest)
        self._last_sequence = unacknowledged.highest
        log.debug("batch done", extra={"shard": self._shard, "records": result.records, "new": result.new,
                                       "duplicates": result.duplicates, "decisions": len(result.decisions)})

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run `fn`; an exception that is not a dependency outage is a bug: exit rather than let kclpy
        report the batch as processed."""
        try:
            return fn()
        except Exception:
            self._die()

    def _die(self) -> NoReturn:
        log.critical("unexpected error processing a batch; exiting so it is re-processed from the last"
                     " checkpoint", exc_info=True, extra={"shard": self._shard})
        sys.exit(1)

    # -- helpers --------------------------------------------------------------------------------

    def _require(self) -> ConsumerParts:
        if self._parts is None:
            raise RuntimeError("process_records before initialize")
        return self._parts

    def _on_retry(self, error: BaseException, attempt: int) -> None:
        parts = self._require()
        if redis_errors.is_full(error):
            # Not an outage that ends by itself: counters must expire or memory be raised. Say so.
            dependency = "redis_full"
            log.error(redis_errors.FULL_MESSAGE, extra={"shard": self._shard, "attempt": attempt})
        elif isinstance(error, RedisForgot):
            dependency = "redis_marker"  # Redis forgot, or was rebuilt since: repaired, the batch is redone
        else:
            dependency = ("redis" if isinstance(error, REDIS_TRANSIENT) else
                          "prices" if isinstance(error, METERING_TRANSIENT) else "mysql")
        parts.metrics.dependency_retries.labels(dependency).inc()
        parts.reset_connections()

    def _checkpoint(self, checkpointer: Any, sequence_number: str | None) -> None:
        for attempt in range(5):
            try:
                checkpointer.checkpoint(sequence_number)
                if self._parts:
                    self._parts.metrics.checkpoints.inc()
                return
            except kcl.CheckpointError as error:
                if error.value not in _RETRY_CHECKPOINT:
                    log.warning("checkpoint refused", extra={"shard": self._shard, "error": error.value})
                    return
                time.sleep(0.5 * 2**attempt)
        log.error("checkpoint kept failing; the batch will be re-processed (idempotently) after a restart",
                  extra={"shard": self._shard})

    def _close(self) -> None:
        if self._parts:
            self._parts.close()
            self._parts = None


def main() -> None:
    settings = ConsumerSettings.from_env()
    logs.setup("consumer-shard", settings.log_level)
    kcl.KCLProcess(RecordProcessor(settings)).run()


if __name__ == "__main__":
    main()
