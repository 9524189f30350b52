"""The KCL record processor (amazon_kclpy v3), run by the MultiLangDaemon, one process per shard.

stdout is the daemon's protocol channel: nothing here prints; logs go to stderr.

- process_records: run the batch through the processor core; on Redis/MySQL outages retry with
  capped backoff, *without* returning (returning would let the daemon move on) and without
  checkpointing; then checkpoint at the highest sequence number of the batch.
- A non-transient exception is a bug: kclpy would swallow it and the batch would be skipped
  (its loop catches everything but SystemExit), so we exit instead. The daemon loses the
  processor, the lease is re-taken and the batch is re-processed from the last checkpoint.
- lease_lost: return at once (another worker owns the shard; checkpointing would fail).
- shard_ended / shutdown_requested: every batch is durable before process_records returns, so there
  is nothing left to flush: checkpoint (at SHARD_END, resp. the last processed record).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor as kcl_v3
from prometheus_client import CollectorRegistry

from bedrock_usage import db, logs
from bedrock_usage.keys import Keys
from bedrock_usage.retry import retry_transient
from bedrock_usage.settings import Settings
from consumer.counters import TRANSIENT_ERRORS as REDIS_TRANSIENT
from consumer.processor import InputRecord
from consumer.runtime import Runtime, build, sync_limits

log = logging.getLogger("consumer.kcl")

TRANSIENT = REDIS_TRANSIENT + db.TRANSIENT_ERRORS
# Checkpoint errors worth retrying; ShutdownException means the lease is gone: give up quietly.
_RETRY_CHECKPOINT = {"ThrottlingException", "KinesisClientLibDependencyException"}


class RecordProcessor(kcl_v3.RecordProcessorBase):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime: Runtime | None = None
        self._shard = "unknown"
        self._last_sequence: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def initialize(self, initialize_input: Any) -> None:
        self._shard = initialize_input.shard_id
        log.info("shard initialised", extra={"shard": self._shard, "from": initialize_input.sequence_number})
        self._runtime = build(
            self._settings, source=f"kinesis:{self._settings.stream_name}", registry=CollectorRegistry()
        )
        retry_transient(lambda: sync_limits(self._require(), Keys(self._settings.redis_key_prefix)),
                        TRANSIENT, on_retry=self._on_retry)

    def process_records(self, process_records_input: Any) -> None:
        records = process_records_input.records
        runtime = self._require()
        runtime.metrics.millis_behind_latest.labels(self._shard).set(process_records_input.millis_behind_latest or 0)
        if not records:
            return
        batch = [
            InputRecord(r.binary_data, self._shard, r.sequence_number, r.timestamp_millis)
            for r in records
        ]
        try:
            result = retry_transient(lambda: runtime.processor.process(batch), TRANSIENT, on_retry=self._on_retry)
        except Exception:
            log.critical("unexpected error processing a batch; exiting so it is re-processed from the last"
                         " checkpoint", exc_info=True, extra={"shard": self._shard})
            sys.exit(1)
        highest = max(batch, key=lambda r: int(r.sequence_number or 0)).sequence_number
        self._checkpoint(process_records_input.checkpointer, highest)
        self._last_sequence = highest
        log.debug("batch done", extra={"shard": self._shard, "records": result.records, "new": result.new,
                                       "duplicates": result.duplicates, "decisions": len(result.decisions)})

    def lease_lost(self, lease_lost_input: Any) -> None:
        log.info("lease lost", extra={"shard": self._shard})
        self._close()

    def shard_ended(self, shard_ended_input: Any) -> None:
        log.info("shard ended", extra={"shard": self._shard})
        self._checkpoint(shard_ended_input.checkpointer, None)
        self._close()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        log.info("shutdown requested", extra={"shard": self._shard})
        if self._last_sequence is not None:
            self._checkpoint(shutdown_requested_input.checkpointer, self._last_sequence)
        self._close()

    # -- helpers --------------------------------------------------------------------------------

    def _require(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("process_records before initialize")
        return self._runtime

    def _on_retry(self, error: BaseException, attempt: int) -> None:
        runtime = self._require()
        dependency = "redis" if isinstance(error, REDIS_TRANSIENT) else "mysql"
        runtime.metrics.dependency_retries.labels(dependency).inc()
        runtime.reset_connections()

    def _checkpoint(self, checkpointer: Any, sequence_number: str | None) -> None:
        for attempt in range(5):
            try:
                checkpointer.checkpoint(sequence_number)
                if self._runtime:
                    self._runtime.metrics.checkpoints.inc()
                return
            except kcl.CheckpointError as error:
                if error.value not in _RETRY_CHECKPOINT:
                    log.warning("checkpoint refused", extra={"shard": self._shard, "error": error.value})
                    return
                time.sleep(0.5 * 2**attempt)
        log.error("checkpoint kept failing; the batch will be re-processed (idempotently) after a restart",
                  extra={"shard": self._shard})

    def _close(self) -> None:
        if self._runtime:
            self._runtime.close()
            self._runtime = None


def main() -> None:
    settings = Settings.from_env()
    logs.setup("consumer-shard", settings.log_level)
    kcl.KCLProcess(RecordProcessor(settings)).run()


if __name__ == "__main__":
    main()
