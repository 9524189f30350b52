"""Redis adapter: counting, pending decisions, the decision stream, limit overrides.

One EVALSHA of counters.lua per (scope, day) group per batch, all pipelined in one round trip.
The script is registered once and re-loaded by redis-py when Redis has lost it (NoScriptError,
e.g. after a failover or SCRIPT FLUSH).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Decision, Limits, Scope

# Errors meaning "Redis is unreachable or failing over": retry with backoff, do not checkpoint.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)


def event_hash(event_id: str) -> str:
    """64-bit signed hash of an eventID, as a decimal string: Redis keeps small sets of these as intsets
    (8 bytes an entry instead of ~60 for the 36-character ID)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big", signed=True))


def event_argument(event_id: str, event_time: str, principal: str, counted: bool) -> str:
    """One event as the counting script takes it: built once per call, used by its person's group and
    its team's group."""
    return f"{event_hash(event_id)}\x1f{1 if counted else 0}\x1f{event_id}\x1f{event_time}\x1f{principal}"


@dataclass
class Group:
    """Events of one scope in one quota day, counted by one script call."""

    scope: Scope
    subject: str
    team: str
    day_id: str
    month_id: str
    expire_at: int  # unix seconds: month end + grace
    decide_daily: bool
    decide_monthly: bool
    events: list[str] = field(default_factory=list)  # event_argument() of each event


@dataclass(frozen=True)
class PendingDecision:
    scope: Scope
    subject: str
    member: bytes  # the exact set member, removed once published and recorded
    decision: Decision


@dataclass
class CountResult:
    new: int = 0
    duplicates: int = 0
    new_failed: int = 0
    pending: list[PendingDecision] = field(default_factory=list)


class Counters:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        user_defaults: Limits,
        team_defaults: Limits,
        warning_percents: Sequence[int],
        stream_maxlen: int,
    ) -> None:
        self._redis = client
        self._keys = keys
        percents = ",".join(str(p) for p in warning_percents)
        self._policy = {
            scope: f"{'' if d.daily is None else d.daily}\x1f{'' if d.monthly is None else d.monthly}\x1f{percents}"
            for scope, d in ((Scope.USER, user_defaults), (Scope.TEAM, team_defaults))
        }
        self._stream_maxlen = stream_maxlen
        source = (Path(__file__).parent / "counters.lua").read_text()
        self._script = client.register_script(source)

    def count(self, groups: Sequence[Group]) -> CountResult:
        result = CountResult()
        if not groups:
            return result
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            self._script(keys=self._group_keys(group), args=self._group_args(group), client=pipe)
        seen_pending: set[tuple[Scope, str, bytes]] = set()
        for group, reply in zip(groups, pipe.execute(), strict=True):
            if group.scope is Scope.USER:  # every call is in one user group and one team group
                result.new += int(reply[0])
                result.duplicates += int(reply[1])
                result.new_failed += int(reply[2])
            for member in reply[3:]:
                # Two groups of one scope (a batch spanning midnight) both return its pending set.
                ident = (group.scope, group.subject, member)
                if ident in seen_pending:
                    continue
                seen_pending.add(ident)
                decision = Decision.from_fields(orjson.loads(member))
                result.pending.append(PendingDecision(group.scope, group.subject, member, decision))
        # A set has no order: publish each scope's crossings in the order they happened.
        result.pending.sort(key=lambda p: (p.scope, p.subject, p.decision.quota, p.decision.usage))
        return result

    def _group_keys(self, group: Group) -> list[str]:
        k, scope, subject = self._keys, group.scope, group.subject
        return [
            k.seen(scope, subject, group.day_id),
            k.counter(scope, subject, group.day_id),
            k.counter(scope, subject, group.month_id),
            k.limits(scope, subject),
            k.pending(scope, subject),
        ]

    def _group_args(self, group: Group) -> list[str]:
        flags = f"{1 if group.decide_daily else 0}\x1f{1 if group.decide_monthly else 0}"
        return [
            group.scope.value,
            group.subject,
            group.team,
            f"{group.day_id}\x1f{group.month_id}\x1f{group.expire_at}\x1f{flags}",
            self._policy[group.scope],
            *group.events,
        ]

    def publish(self, pending: Sequence[PendingDecision]) -> list[str]:
        """Append decisions to the stream (one round trip). A republish after a crash carries the same
        decision_id, which is what the enforcer deduplicates on."""
        if not pending:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for item in pending:
            pipe.xadd(
                self._keys.decisions,
                dict(item.decision.to_fields()),  # type: ignore[arg-type]
                maxlen=self._stream_maxlen,
                approximate=True,
            )
        return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]

    def clear_pending(self, pending: Iterable[PendingDecision]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for item in pending:
            pipe.srem(self._keys.pending(item.scope, item.subject), item.member)
        pipe.execute()
