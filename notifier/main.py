"""`bedrockctl notifier run`: the long-running notifier.

Every second: plan new notifications' deliveries, send those due, and once a day queue the admins'
summary. A dependency that fails (MySQL, Redis) is retried with backoff; a delivery that fails is the
outbox's business (retried, then dead). /health turns 503 when no iteration has succeeded for a while.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from bedrock_usage import db, logs, redis_errors
from bedrock_usage.heartbeat import Heartbeat
from bedrock_usage.http import serve
from bedrock_usage.retry import backoff_delay
from notifier.assembly import NotifierParts, assemble_notifier
from notifier.settings import NotifierSettings

log = logging.getLogger("notifier")

IDLE_SECONDS = 1.0
SUMMARY_CHECK_SECONDS = 60.0
# Every Redis outage, full (noeviction) included: the notifier only reads Redis today, which a full Redis
# still serves, but any write added later must wait a full Redis out, not crash-loop the notifier.
TRANSIENT: tuple[type[BaseException], ...] = (*redis_errors.TRANSIENT, *db.TRANSIENT_ERRORS)


class Loop:
    def __init__(self, parts: NotifierParts) -> None:
        self.parts = parts
        self.stop = threading.Event()
        self.heart = Heartbeat()
        self._next_summary = 0.0

    def healthy(self) -> tuple[bool, str]:
        return self.heart.healthy()

    def once(self) -> int:
        notifier = self.parts.notifier
        notifier.plan()
        sent = notifier.deliver()
        if time.monotonic() >= self._next_summary:
            if notifier.queue_summary(self.parts.usage_reader):
                log.info("daily summary queued")
            self._next_summary = time.monotonic() + SUMMARY_CHECK_SECONDS
        notifier.observe()
        self.heart.beat()
        return sent

    def run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            try:
                sent = self.once()
                attempt = 0
                if not sent:
                    self.stop.wait(IDLE_SECONDS)
            except TRANSIENT as error:
                attempt += 1
                self.heart.failed(error)
                if redis_errors.is_full(error):
                    log.error(redis_errors.FULL_MESSAGE, extra={"attempt": attempt})
                log.warning("dependency failed, retrying", extra={"error": self.heart.last_error,
                                                                  "attempt": attempt})
                self.parts.session.reset()
                self.stop.wait(backoff_delay(attempt, cap=30.0))


def run(settings: NotifierSettings) -> int:
    logs.setup("notifier", settings.log_level)
    parts = assemble_notifier(settings)
    loop = Loop(parts)

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = serve(settings.notifier_metrics_port, loop.healthy)
    log.info("notifier started", extra={"email": settings.email_backend, "channels": sorted(
        c.value for c in parts.notifier.channels), "metrics_port": server.server_address[1]})
    loop.run()
    server.shutdown()
    parts.close()
    log.info("notifier stopped")
    return 0
