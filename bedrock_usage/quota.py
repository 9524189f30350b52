"""Quota arithmetic and decisions (pure).

A quota is a request limit per period (day or month) for a scope (a person or a team). Thresholds are
percentages of it: each warning percentage (60, 85 by default) and 100, the limit itself. A counter
*crosses* a threshold when one counted call takes it from below the threshold's count to at or above
it; because increments are atomic and deduplicated, exactly one call crosses each threshold of a
period. Crossing 100 % is `exceeded`: the quota is used up, the next call is over it.

The Redis script (consumer/counters.lua) applies `threshold_count` and `crossed` atomically; the same
rules live here for everything else (state shown by `bedrockctl usage`, tests, rebuilds). A test checks
that both agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Scope(StrEnum):
    USER = "user"
    TEAM = "team"


class Quota(StrEnum):
    DAILY_REQUESTS = "daily_requests"
    MONTHLY_REQUESTS = "monthly_requests"


class Kind(StrEnum):
    WARNING = "warning"
    EXCEEDED = "exceeded"


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    EXCEEDED = "exceeded"


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits of one scope; None means no quota for that period."""

    daily: int | None
    monthly: int | None

    def for_quota(self, quota: Quota) -> int | None:
        return self.daily if quota is Quota.DAILY_REQUESTS else self.monthly


def threshold_count(limit: int, percent: int) -> int:
    """The usage at which `percent` of `limit` is reached (at least 1)."""
    return max(1, math.ceil(limit * percent / 100))


def crossed(before: int, after: int, limit: int | None, warning_percents: Sequence[int]) -> list[int]:
    """Percentages (warnings and 100) crossed when usage went from `before` to `after`."""
    if limit is None or limit <= 0 or after <= before:
        return []
    return [p for p in (*warning_percents, 100) if before < threshold_count(limit, p) <= after]


def state_of(usage: int, limit: int | None, warning_percents: Sequence[int]) -> State:
    if limit is None:
        return State.OK
    if usage >= limit:
        return State.EXCEEDED
    if warning_percents and usage >= threshold_count(limit, min(warning_percents)):
        return State.WARNING
    return State.OK


@dataclass(frozen=True, slots=True)
class Decision:
    """One crossing of one threshold of one quota in one period: what the enforcer consumes."""

    kind: Kind
    scope: Scope
    subject: str  # quota key of the person, or team name
    quota: Quota
    period: str  # 2024-10-01 or 2024-10
    percent: int
    usage: int
    limit: int
    event_id: str  # the call that crossed it
    event_time: str
    principal: str  # the person whose call crossed it (== subject for user scope)
    team: str

    @property
    def decision_id(self) -> str:
        """Deterministic: a republished decision (after a crash) carries the same id."""
        raw = "|".join(
            (self.scope, self.subject, self.quota, self.period, str(self.percent), str(self.limit))
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def to_fields(self) -> dict[str, str]:
        fields = {k: str(v) for k, v in asdict(self).items()}
        fields["decision_id"] = self.decision_id
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any] | Mapping[bytes, Any]) -> Decision:
        """From `to_fields`, a stream entry as redis-py returns it (bytes), or the counting script's JSON."""
        named = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}

        def s(name: str) -> str:
            value = named[name]
            return value.decode() if isinstance(value, bytes) else str(value)

        return cls(
            kind=Kind(s("kind")),
            scope=Scope(s("scope")),
            subject=s("subject"),
            quota=Quota(s("quota")),
            period=s("period"),
            percent=int(s("percent")),
            usage=int(s("usage")),
            limit=int(s("limit")),
            event_id=s("event_id"),
            event_time=s("event_time"),
            principal=s("principal"),
            team=s("team"),
        )


def kind_for(percent: int) -> Kind:
    return Kind.EXCEEDED if percent >= 100 else Kind.WARNING
