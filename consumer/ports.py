"""What the processor needs of its stores, and nothing more: the people directory (MySQL), the counters
(Redis), the row store (MySQL), prices and role keys (MySQL, IAM).

The processor depends on these Protocols; consumer/assembly.py plugs in the real adapters (people.py,
counters.py, store.py, metering.py, role_paths.py), which the integration tests run on real MariaDB and
Redis. Tests of the pipelining and failure paths plug in in-memory stand-ins instead
(tests/unit/memory_consumer_stores.py). Which thread calls what is part of the contract: see each method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from bedrock_usage.identity import Principal
from bedrock_usage.quota import Decision
from consumer.counters import CountResult, Group, PendingDecision
from consumer.events import InvocationLog
from consumer.metering import Metered
from consumer.people import Assignment
from consumer.rows import CallRow, DeadLetter, LogRow, Unpriced, WriteResult


class People(Protocol):
    """Who each principal is (their row) and which team their calls are charged to. Called on the
    caller's thread, but `settled`, which the MySQL thread calls once a batch is committed."""

    def resolve(self, principals: Iterable[Principal]) -> dict[str, Assignment]:
        """Every principal's assignment by quota key, new ones provisioned; a team not known yet is
        `UNRESOLVED` (their events are held for it)."""
        ...

    @property
    def unresolved(self) -> int:
        """How many people known here have no team known yet."""
        ...

    def settlements(self) -> list[tuple[str, Assignment]]:
        """People this process held whose team is known now (repeated until `settled`)."""
        ...

    def known(self, keys: Iterable[str]) -> dict[str, Assignment]:
        """The resolved assignments among these keys (people another consumer may have held)."""
        ...

    def settled(self, done: Iterable[tuple[str, Assignment]]) -> None:
        """These people's held events have moved to their team, durably."""
        ...


class UsageCounters(Protocol):
    """Counting, pending decisions and their publication. Called on the processor's Redis thread (and
    `held_people` on the caller's thread). Every call is idempotent on the events' keys: a batch counted
    twice counts once."""

    marker: str  # the Redis marker epoch the scripts check ('' until known)

    def marker_keys(self, groups: Sequence[Group]) -> tuple[str, ...]: ...

    def still_marked(self, epoch: str, keys: Sequence[str]) -> bool:
        """Whether Redis still holds `epoch` in `keys`, asked once a counted batch is committed."""
        ...

    def count(
        self, groups: Sequence[Group], *, settle: Sequence[tuple[str, str]] = (), today: tuple[str, str] | None = None,
        nonce: str = "", in_flight: Sequence[str] = (), in_flight_entries: Mapping[str, int] | None = None,
    ) -> CountResult:
        """Count the groups' new events for their people, hand them to their teams and count them there;
        the decisions pending (not yet cleared) come back in the result. `nonce` names this batch's
        hand-offs; those of the `in_flight` batches are left to them, those of any other batch not
        finished are adopted and counted (for their team, once)."""
        ...

    def publish(self, pending: Sequence[PendingDecision]) -> list[str]:
        """Append the decisions to the decision stream (a republish carries the same decision_id)."""
        ...

    def clear_pending(self, pending: Iterable[PendingDecision]) -> None:
        """The decisions are recorded in MySQL: they leave the pending sets."""
        ...

    def finish(self, result: CountResult) -> None:
        """The batch counted in `result` is committed: its hand-offs (and those it adopted) go."""
        ...

    def held_people(self) -> set[str]:
        """People with events held for a team not known yet, by any consumer."""
        ...


class MarkerGuard(Protocol):
    """Knows the Redis marker the counting scripts check, and repairs Redis when they refuse
    (consumer/redis_guard.py)."""

    def ensure(self) -> object:
        """Before counting: learn the marker to expect, if not known yet (repairing Redis if need be)."""

    def refused(self) -> object:
        """A script refused: repair Redis (or wait for whoever does). The batch is redone after."""


class RowStore(Protocol):
    """The batch's rows, in two steps on the processor's MySQL thread: `stage` (uncommitted, overlapping
    the counting), then `commit` or `abort`. Inserts are idempotent on the natural keys."""

    def stage(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], logs: Sequence[LogRow] = ()
    ) -> WriteResult: ...

    def commit(
        self, decisions: Sequence[Decision], decided_at: datetime, *, settle: Sequence[tuple[int, str]] = (),
        settle_since: date | None = None, unknown: Sequence[int] = (), days: tuple[date, date] | None = None,
        recharge: Sequence[tuple[date, datetime, str, str]] = (),
        recharge_logs: Sequence[tuple[date, datetime, str, str]] = (), unpriced: Sequence[Unpriced] = (),
    ) -> None:
        """Add the decisions, move rows between teams as the counters did, and make the batch durable."""
        ...

    def abort(self) -> None:
        """Drop what was staged: the batch will be redone."""
        ...


class Pricing(Protocol):
    """What each invocation log costs (caller's thread)."""

    def charge(self, logs: Sequence[InvocationLog]) -> Metered: ...


class RoleKeys(Protocol):
    """The key a logged role is charged under, the same as its CloudTrail calls' (caller's thread)."""

    def learn(self, principals: Iterable[Principal]) -> None: ...

    def canonical(self, logs: Sequence[InvocationLog]) -> list[InvocationLog]: ...
