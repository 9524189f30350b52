"""The health page: each service's own /health answer and the few figures of its /metrics an admin looks
at first (consumer lag, pending decisions, outbox depth, unmetered calls), read with short timeouts and kept
for a few seconds, so that a service that hangs slows no page."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("console.health")

# The figures shown, by metric family (summed over their label sets; lag: the worst shard).
FIGURES: dict[str, tuple[str, str]] = {
    "bedrock_usage_millis_behind_latest": ("max", "consumer lag (ms behind the stream's tip)"),
    "bedrock_usage_enforcer_pending_decisions": ("sum", "decisions waiting for the enforcer"),
    "bedrock_usage_enforcer_denied_people": ("sum", "people denied in IAM"),
    "bedrock_usage_notifier_outbox_depth": ("sum", "messages waiting to be sent"),
    "bedrock_usage_notifier_oldest_pending_seconds": ("max", "oldest waiting message (s)"),
    "bedrock_usage_unmetered_calls": ("sum", "successful calls with no invocation log (24 h)"),
    "bedrock_usage_redis_unmarked": ("max", "Redis without its marker (1 = rebuilding)"),
}


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    url: str
    healthy: bool
    status: str  # the /health body, or why it could not be read
    figures: dict[str, float] = field(default_factory=dict)


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return int(reply.status), reply.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as error:  # 503 with its reason is an answer
        return int(error.code), error.read(4096).decode(errors="replace")


def figures_of(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        how = FIGURES.get(family.name)
        if how is None:
            continue
        values = [s.value for s in family.samples if s.name == family.name]
        if values:
            found[family.name] = max(values) if how[0] == "max" else sum(values)
    return found


def check(name: str, base: str, timeout: float = 2.0) -> ServiceHealth:
    try:
        status, body = _get(f"{base}/health", timeout)
    except Exception as error:  # whatever a service answers (or not), it is the answer: never a crash here
        return ServiceHealth(name, base, False, f"unreachable: {type(error).__name__}: {error}")
    figures: dict[str, float] = {}
    try:
        _, metrics = _get(f"{base}/metrics", timeout)
        figures = figures_of(metrics)
    except Exception:
        figures = {}
    return ServiceHealth(name, base, status == 200, body.strip()[:500] or str(status), figures)


class HealthBoard:
    """The services' health, checked in a background thread every `every_seconds`: a page reads the last
    answers and never waits for a service that hangs."""

    def __init__(self, services: Sequence[tuple[str, str]], *, every_seconds: float = 10.0) -> None:
        self._services, self._every = list(services), every_seconds
        self._found: list[ServiceHealth] | None = None
        self._lock = threading.Lock()
        self._started = False

    def _check_all(self) -> list[ServiceHealth]:
        if not self._services:
            return []
        with ThreadPoolExecutor(max_workers=len(self._services)) as pool:
            return list(pool.map(lambda s: check(*s), self._services))

    def _loop(self) -> None:
        while True:
            try:
                found = self._check_all()
                with self._lock:
                    self._found = found
            except Exception:  # the board keeps its last answers and tries again: a page never waits
                log.exception("health board: a round of checks failed")
            time.sleep(self._every)

    def services(self) -> list[ServiceHealth]:
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._loop, name="health-board", daemon=True).start()
            found = self._found
        if found is None:  # the first page after start waits for the first round (2 s at most)
            found = self._check_all()
            with self._lock:
                self._found = self._found or found
        return found

    def figure(self, name: str) -> float | None:
        values = [s.figures[name] for s in self.services() if name in s.figures]
        return sum(values) if values else None
