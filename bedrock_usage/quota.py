"""Quota arithmetic and decisions (pure).

A quota is a limit per period (day or month) for a scope (a person or a team), on requests or on cost
(in integer nano-dollars: `NANOS_PER_USD`; money is never a float here). Thresholds are
percentages of it: each warning percentage (60, 85 by default) and 100, the limit itself. A counter
*crosses* a threshold when one counted call takes it from below the threshold's count to at or above
it; because increments are atomic and deduplicated, exactly one call crosses each threshold of a
period (a request adds 1; a metered call adds its cost, and one dear call may cross several).
Crossing 100 % is `exceeded`: the quota is used up, the next call is over it.

The Redis script (consumer/counters.lua) applies `threshold_count` and `crossed` atomically; the same
rules live here for everything else (state shown by `bedrockctl usage`, tests, rebuilds). A test checks
that both agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any


class Scope(StrEnum):
    USER = "user"
    TEAM = "team"


NANOS_PER_USD = 1_000_000_000


class Quota(StrEnum):
    DAILY_REQUESTS = "daily_requests"
    MONTHLY_REQUESTS = "monthly_requests"
    DAILY_COST = "daily_cost"
    MONTHLY_COST = "monthly_cost"

    @property
    def monthly(self) -> bool:
        return self in (Quota.MONTHLY_REQUESTS, Quota.MONTHLY_COST)

    @property
    def cost(self) -> bool:
        """Usage and limit in nano-dollars (else: requests)."""
        return self in (Quota.DAILY_COST, Quota.MONTHLY_COST)

    @property
    def counter(self) -> str:
        """The field of the day or month counter hash that this quota reads."""
        return "cost" if self.cost else "req"


class Kind(StrEnum):
    WARNING = "warning"
    EXCEEDED = "exceeded"


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    EXCEEDED = "exceeded"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one scope: requests, and cost in nano-dollars; None means no quota for that period."""

    daily: int | None
    monthly: int | None
    daily_cost: int | None = None
    monthly_cost: int | None = None

    def for_quota(self, quota: Quota) -> int | None:
        return {
            Quota.DAILY_REQUESTS: self.daily, Quota.MONTHLY_REQUESTS: self.monthly,
            Quota.DAILY_COST: self.daily_cost, Quota.MONTHLY_COST: self.monthly_cost,
        }[quota]

    def or_defaults(self, defaults: Limits) -> Limits:
        """Each limit: this one (an override) where it is set, else the default's."""
        return Limits(*(mine if mine is not None else default
                        for mine, default in zip(self.fields().values(), defaults.fields().values(), strict=True)))

    def fields(self) -> dict[str, int | None]:
        """As the Redis override hash and the counting script name them."""
        return {"daily": self.daily, "monthly": self.monthly, "daily_cost": self.daily_cost,
                "monthly_cost": self.monthly_cost}


def usd(nanos: int) -> Decimal:
    """Nano-dollars as an exact decimal amount of dollars."""
    return Decimal(nanos).scaleb(-9)


def nanos_of(dollars: Decimal | str | int) -> int:
    """Dollars (a decimal, never a float) as nano-dollars, rounded half up to the nano."""
    return int((Decimal(dollars) * NANOS_PER_USD).to_integral_value(ROUND_HALF_UP))


def format_usd(nanos: int) -> str:
    """"$41.20": cents, rounded half up (what a person reads in a message or a report)."""
    return format_dollars(usd(nanos))


def format_dollars(dollars: Decimal) -> str:
    return "$" + format(dollars.quantize(Decimal("0.01"), ROUND_HALF_UP), ",f")


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
