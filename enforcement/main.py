"""`bedrockctl enforcer run`: the long-running enforcer.

One loop: take decisions from the stream and apply them (ack after each is durable), lift expired blocks
every few seconds, reconcile on a timer (and once at start, to catch what happened while it was down).
A dependency that fails (Redis, MySQL, AWS) is retried with backoff while the decisions stay unacked;
/health turns 503 when no iteration has succeeded for a while. SIGTERM finishes the current decision.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import redis
from botocore.exceptions import BotoCoreError, ClientError

from bedrock_usage import db, logs, redis_errors
from bedrock_usage.heartbeat import Heartbeat
from bedrock_usage.http import serve
from bedrock_usage.ids import digest
from bedrock_usage.quota import Decision
from bedrock_usage.retry import backoff_delay
from enforcement import metering_watch, store
from enforcement.assembly import EnforcerParts, account_of, assemble_enforcer
from enforcement.model import handling_order
from enforcement.settings import EnforcerSettings
from enforcement.stream import StreamedDecision
from enforcement.unpriced_alerts import alert_unpriced

log = logging.getLogger("enforcer")

EXPIRY_EVERY_SECONDS = 5.0
TRANSIENT: tuple[type[BaseException], ...] = (
    *redis_errors.TRANSIENT,  # Redis full (noeviction) included: the lock, the stream group need memory
    redis.exceptions.LockError,
    *db.TRANSIENT_ERRORS,
    BotoCoreError, ClientError,
)


def _dependency(error: BaseException) -> str:
    if redis_errors.is_full(error):
        return "redis_full"
    if isinstance(error, redis.RedisError):
        return "redis"
    if isinstance(error, db.TRANSIENT_ERRORS):
        return "mysql"
    return "aws"


class Loop:
    def __init__(self, parts: EnforcerParts, settings: EnforcerSettings) -> None:
        self.parts, self.settings = parts, settings
        self.stop = threading.Event()
        self.heart = Heartbeat()
        self._next_expiry = 0.0
        self._next_reconcile = 0.0  # at once: whatever happened while the enforcer was down
        self._next_metering = 0.0

    def healthy(self) -> tuple[bool, str]:
        return self.heart.healthy()

    def once(self) -> int:
        parts = self.parts
        entries = parts.stream.read(count=100, block_ms=1000)
        decided: list[tuple[StreamedDecision, Decision]] = []
        for entry in entries:
            try:
                decision = entry.decision()
            except (KeyError, ValueError) as error:
                # A malformed entry can never apply: keep it with its reason, acknowledge it, go on.
                store.dead_letter(parts.session.conn, dedupe_key=digest("decision-stream", entry.entry_id),
                                  source="decision-stream", reason="malformed_decision", detail=repr(error),
                                  raw=repr(entry.fields).encode(), now=parts.enforcer.clock())
                parts.session.conn.commit()
                parts.stream.ack([entry.entry_id])
                log.error("malformed decision dead-lettered", extra={"entry": entry.entry_id, "error": repr(error)})
                continue
            decided.append((entry, decision))
        # One dear call can use up the daily and the monthly cost quota at once: the block that stands is
        # applied first (model.handling_order), and the person's message names it.
        for entry, decision in sorted(decided, key=lambda pair: handling_order(pair[1])):
            parts.decisions.handle(decision, entry.published_at)
            parts.stream.ack([entry.entry_id])
        now = time.monotonic()
        if now >= self._next_expiry:
            parts.enforcer.expire_due()
            parts.metrics.stream_lag.set(parts.stream.lag())
            self._next_expiry = now + EXPIRY_EVERY_SECONDS
        if now >= self._next_reconcile:
            parts.reconciler.run_once()
            self._next_reconcile = time.monotonic() + self.settings.reconcile_interval_seconds
        if now >= self._next_metering:  # calls without a cost; models without a price (issue 10)
            parts.metering.run_once()
            parts.metrics.unpriced_alerts.inc(len(alert_unpriced(parts.session.conn, parts.enforcer.clock())))
            self._next_metering = time.monotonic() + metering_watch.EVERY_SECONDS
        self.heart.beat()
        return len(entries)

    def run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            try:
                self.once()
                attempt = 0
            except TRANSIENT as error:
                attempt += 1
                self.heart.failed(error)
                self.parts.metrics.dependency_errors.labels(_dependency(error)).inc()
                delay = backoff_delay(attempt, cap=30.0)
                if redis_errors.is_full(error):
                    log.error(redis_errors.FULL_MESSAGE, extra={"attempt": attempt})
                log.warning("dependency failed; decisions stay unacknowledged, retrying", extra={
                    "error": self.heart.last_error, "attempt": attempt, "delay_s": round(delay, 2)})
                self.parts.session.reset()
                self.parts.stream.replay_pending()
                self.stop.wait(delay)


def run(settings: EnforcerSettings) -> int:
    logs.setup("enforcer", settings.log_level)
    attempt = 0
    while True:  # who we are (STS) before anything: the account the enforcer may deny in
        try:
            account = account_of(settings)
            break
        except TRANSIENT as error:
            attempt += 1
            log.warning("cannot ask STS who we are, retrying", extra={"error": repr(error)})
            time.sleep(backoff_delay(attempt, cap=30.0))
    parts = assemble_enforcer(settings, account_id=account)
    loop = Loop(parts, settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = serve(settings.enforcer_metrics_port, loop.healthy)  # the default registry: the loop's metrics
    log.info("enforcer started", extra={
        "mode": settings.enforcement_mode, "account": parts.enforcer.account_id,
        "protected": list(settings.protected_principals), "metrics_port": server.server_address[1]})
    if settings.shadow:
        log.warning("SHADOW mode: decisions are recorded and notified, no IAM policy is changed")
    attempt = 0
    while not loop.stop.is_set():  # start-up needs Redis and IAM too: same patience as the loop
        try:
            parts.stream.ensure_group()
            if parts.iam is not None:
                created = parts.iam.ensure_policies()
                if created:
                    log.info("deny policies created", extra={"policies": created})
            break
        except TRANSIENT as error:
            attempt += 1
            log.warning("start-up dependency failed, retrying", extra={"error": loop.heart.failed(error)})
            loop.stop.wait(backoff_delay(attempt, cap=30.0))
    loop.run()
    server.shutdown()
    parts.close()
    log.info("enforcer stopped")
    return 0
