"""The decision stream, read by the enforcer's consumer group with acknowledgements.

A decision is acknowledged (XACK) only after its IAM change, audit row and notification are durable.
Until then it stays in the group's pending list: after a crash or an outage the enforcer reads its own
pending entries again first, and entries a dead enforcer left pending (a restarted task has a new
consumer name) are claimed (XAUTOCLAIM) once idle long enough — checked on a timer, not only at start.
Applying a decision twice changes nothing, so redelivery is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from bedrock_usage.quota import Decision
from bedrock_usage.redis_state import RedisClient, text

GROUP = "enforcer"


@dataclass(frozen=True)
class StreamedDecision:
    """A decision as the stream holds it: its entry ID (to acknowledge it) and its fields (to parse it)."""

    entry_id: str
    fields: dict[str, str]

    @property
    def published_at(self) -> datetime:
        """Stream IDs begin with the Redis server's time in milliseconds when the entry was added."""
        return datetime.fromtimestamp(int(self.entry_id.split("-")[0]) / 1000, UTC)

    def decision(self) -> Decision:
        return Decision.from_fields(self.fields)


class DecisionStream:
    def __init__(self, client: RedisClient, key: str, consumer: str, *, claim_idle_ms: int = 60_000) -> None:
        self._redis, self._key, self._consumer = client, key, consumer
        self._claim_idle_ms = claim_idle_ms
        self._replay = True  # first read this consumer's own pending entries (a restart, a failure)
        self._next_claim = 0.0  # monotonic time of the next look for entries a dead consumer left

    def ensure_group(self) -> None:
        # From the start of the stream: decisions published before the enforcer first ran are not lost
        # (decisions for periods already over are recorded as stale, not applied).
        try:
            self._redis.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def replay_pending(self) -> None:
        """After a failed attempt: deliver this consumer's unacknowledged entries again."""
        self._replay = True

    def read(self, count: int = 100, block_ms: int = 1000) -> list[StreamedDecision]:
        try:
            return self._read(count, block_ms)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self.ensure_group()  # the stream was deleted or Redis lost its data: start the group again
            return []

    def _read(self, count: int, block_ms: int) -> list[StreamedDecision]:
        if self._replay:
            entries = self._parse(self._redis.xreadgroup(GROUP, self._consumer, {self._key: "0"}, count=count))
            if entries:
                return entries
            self._replay = False
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self._claim_idle_ms / 2000
            claimed = self._redis.xautoclaim(self._key, GROUP, self._consumer, self._claim_idle_ms, "0-0",
                                             count=count)
            entries = [self._entry(i, f) for i, f in claimed[1] if f]
            if entries:
                self._replay = True  # claimed entries are now ours: the next read continues with them
                return entries
        return self._parse(self._redis.xreadgroup(GROUP, self._consumer, {self._key: ">"}, count=count,
                                                  block=block_ms))

    def ack(self, entry_ids: list[str]) -> None:
        if entry_ids:
            self._redis.xack(self._key, GROUP, *entry_ids)

    def lag(self) -> int:
        """Entries not yet acknowledged: delivered-but-pending plus not yet delivered."""
        for group in self._redis.xinfo_groups(self._key):
            if text(group.get("name")) == GROUP:
                lag = group.get("lag")
                return int(group.get("pending") or 0) + int(lag or 0)
        return 0

    def _parse(self, reply: Any) -> list[StreamedDecision]:
        if not reply:
            return []
        (_, items), = reply
        # Entries trimmed from the stream while pending come back without fields: nothing to apply.
        self.ack([text(i) for i, f in items if not f])
        return [self._entry(i, f) for i, f in items if f]

    @staticmethod
    def _entry(entry_id: Any, fields: dict[Any, Any]) -> StreamedDecision:
        return StreamedDecision(text(entry_id), {text(k): text(v) for k, v in fields.items()})
