"""Test stand-ins: in-memory implementations of the processor's Protocols (consumer/ports.py), so that its
pipelining and failure paths can be tested without MariaDB and Redis. Not the product: the real adapters
(consumer/people.py, counters.py, store.py, metering.py, role_paths.py) are tested on the real servers in
tests/integration and tests/aws.

They keep what the processor relies on: the counters dedupe events per person and day, hand a person's new
events to their team through per-batch hand-offs kept until `finish` (a batch's redo, or the next batch,
adopts those of a batch that was never committed), return pending decisions until `clear_pending`; the store
shows nothing before `commit` and dedupes rows on their natural keys. Each can be told to fail its next call
(`fail_next`), and the store's commit can be held (`hold_commits`), to step the processor's threads. Both
write what they do, in order, to a shared `journal`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field, replace
from datetime import date, datetime

import orjson

from bedrock_usage.identity import Principal
from bedrock_usage.pricing.rates import Charge, PriceScope, PriceStatus
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from consumer.counters import CountResult, Group, HandOff, PendingDecision
from consumer.events import InvocationLog
from consumer.metering import Metered
from consumer.people import UNRESOLVED, Assignment
from consumer.rows import CallRow, DeadLetter, LogRow, Unpriced, WriteResult

_UNIT, _HOLD_WAIT = "\x1f", 10.0


class Journal:
    """What the stand-ins did, in order, across the processor's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[str] = []

    def write(self, entry: str) -> None:
        with self._lock:
            self.entries.append(entry)

    def of(self, prefix: str) -> list[str]:
        with self._lock:
            return [e for e in self.entries if e.startswith(prefix)]


class _Failures:
    def __init__(self) -> None:
        self._next: dict[str, BaseException] = {}

    def fail_next(self, method: str, error: BaseException) -> None:
        self._next[method] = error

    def check(self, method: str) -> None:
        error = self._next.pop(method, None)
        if error is not None:
            raise error


class MemoryPeople:
    """People and their teams from a mapping (quota key → team; UNRESOLVED: not known yet)."""

    def __init__(self, teams: Mapping[str, str] | None = None, default_team: str = "unassigned") -> None:
        self.teams = dict(teams or {})
        self._default_team = default_team
        self._ids: dict[str, int] = {}
        self._held_here: set[str] = set()
        self._to_settle: dict[str, Assignment] = {}
        self._lock = threading.Lock()  # `settled` comes from the processor's MySQL thread
        self.resolved: list[str] = []  # every key asked about, in order

    def _assignment(self, key: str) -> Assignment:
        return Assignment(self._ids.setdefault(key, len(self._ids) + 1), self.teams.get(key, self._default_team))

    def resolve(self, principals: Iterable[Principal]) -> dict[str, Assignment]:
        out = {p.key: self._assignment(p.key) for p in principals}
        self.resolved += sorted(out)
        self._held_here.update(key for key, a in out.items() if not a.resolved)
        return out

    def learn(self, key: str, team: str) -> None:
        """A team becomes known (a lookup answered): the people held here are to be settled."""
        self.teams[key] = team
        if key in self._held_here:
            self._held_here.discard(key)
            with self._lock:
                self._to_settle[key] = self._assignment(key)

    @property
    def unresolved(self) -> int:
        return sum(1 for key in self._ids if self.teams.get(key, self._default_team) == UNRESOLVED)

    def settlements(self) -> list[tuple[str, Assignment]]:
        with self._lock:
            return sorted(self._to_settle.items())

    def known(self, keys: Iterable[str]) -> dict[str, Assignment]:
        return {k: a for k in keys if (a := self._assignment(k)).resolved}

    def settled(self, done: Iterable[tuple[str, Assignment]]) -> None:
        with self._lock:
            for key, assignment in done:
                if self._to_settle.get(key) == assignment:
                    del self._to_settle[key]


@dataclass(frozen=True)
class _Counted:
    """Where events are counted: a scope's subject in one day, and the team a person's are charged to."""

    scope: Scope
    subject: str
    team: str
    day_id: str


@dataclass
class _Held:
    day_id: str
    month_id: str
    expire_at: int
    events: list[str] = field(default_factory=list)


class MemoryCounters:
    """Counts requests (and log costs) per scope, subject and day; decides daily request crossings of a
    person's (`daily_limit`) and a team's (`team_daily_limit`) quota."""

    def __init__(self, journal: Journal, *, daily_limit: int | None = None, team_daily_limit: int | None = None,
                 warning_percents: Sequence[int] = (), default_team: str = "unassigned") -> None:
        self._journal = journal
        self._limits = {Scope.USER: daily_limit, Scope.TEAM: team_daily_limit}
        self._percents = [*warning_percents, 100]
        self._default_team = default_team
        self._lock = threading.Lock()
        self.failures = _Failures()
        self.marker = ""  # no marker in memory: nothing to forget
        self.seen: dict[tuple[Scope, str, str], set[str]] = {}
        self.requests: dict[tuple[Scope, str, str], int] = {}
        self.cost_nanos: dict[tuple[Scope, str, str], int] = {}
        self.pending: dict[tuple[Scope, str], dict[bytes, None]] = {}  # insertion-ordered sets
        self.forward: dict[str, dict[bytes, list[str]]] = {}  # person → hand-off field → events
        self.hold: dict[str, list[_Held]] = {}
        self.held: set[str] = set()
        self.stream: list[Decision] = []

    def marker_keys(self, groups: Sequence[Group]) -> tuple[str, ...]:
        return ()

    def still_marked(self, epoch: str, keys: Sequence[str]) -> bool:
        return True

    def fail_next(self, method: str, error: BaseException) -> None:
        self.failures.fail_next(method, error)

    def usage(self, scope: Scope, subject: str, day_id: str) -> int:
        return self.requests.get((scope, subject, day_id), 0)

    def count(
        self, groups: Sequence[Group], *, settle: Sequence[tuple[str, str]] = (), today: tuple[str, str] | None = None,
        nonce: str = "", in_flight: Sequence[str] = (), in_flight_entries: Mapping[str, int] | None = None,
    ) -> CountResult:
        with self._lock:
            self.failures.check("count")
            self._journal.write(f"count {nonce}")
            result = CountResult()
            handed: dict[tuple[str, bytes], HandOff] = {}
            for group in groups:
                new = self._count(_Counted(group.scope, group.subject, group.team, group.day_id), group.events,
                                  group.decide_daily, result)
                if group.forward and new and group.team:
                    key = HandOff.field_of(group.team, group.day_id, group.month_id, group.expire_at, nonce)
                    self.forward.setdefault(group.subject, {}).setdefault(key, []).extend(new)
                elif group.forward and new:
                    self.hold.setdefault(group.subject, []).append(
                        _Held(group.day_id, group.month_id, group.expire_at, new))
                    self.held.add(group.subject)
                # This batch's own hand-offs come back with those a batch never committed left behind.
                self._adopt(group.subject, set(in_flight), handed)
                self._collect(group.scope, group.subject, result)
            for person, team in settle:
                for held in self.hold.pop(person, []):
                    key = HandOff.field_of(team, held.day_id, held.month_id, held.expire_at, nonce + "s")
                    self.forward.setdefault(person, {}).setdefault(key, []).extend(held.events)
                self._adopt(person, set(in_flight), handed)
            result.settled = [person for person, _ in settle]
            result.handed = list(handed.values())
            for item in result.handed:  # the second step: what the people handed over, for their teams
                decide = item.team != self._default_team and (today is None or item.day_id >= today[0])
                self._count(_Counted(Scope.TEAM, item.team, item.team, item.day_id), item.events, decide, None)
                self._collect(Scope.TEAM, item.team, result)
            result.pending.sort(key=lambda p: (p.scope, p.subject, p.decision.quota, p.decision.usage))
            return result

    def _count(self, at: _Counted, events: Sequence[str], decide: bool, result: CountResult | None) -> list[str]:
        """The events new for this scope, counted (`result`: a person's, for the batch's figures)."""
        key = (at.scope, at.subject, at.day_id)
        seen = self.seen.setdefault(key, set())
        new = []
        for event in events:
            ident, kind, event_id, _ = event.split(_UNIT, 3)
            if ident in seen:
                if result is not None:
                    result.duplicates += 1
                    result.duplicate_logs += kind.startswith("L")
                continue
            seen.add(ident)
            new.append(event)
            if result is not None:
                result.new += 1
                result.new_failed += kind == "0"
            if kind.startswith("L"):
                nanos = int(kind[1:].split(",")[0])
                self.cost_nanos[key] = self.cost_nanos.get(key, 0) + nanos
                if result is not None:
                    result.new_logs += 1
                    result.new_log_ids.add(event_id)
                    result.new_cost[at.team] = result.new_cost.get(at.team, 0) + nanos
            elif kind == "1":
                after = self.requests[key] = self.requests.get(key, 0) + 1
                if decide:
                    self._check(at, after, event)
        return new

    def _check(self, at: _Counted, after: int, event: str) -> None:
        """A crossing of a threshold of the daily request quota becomes a pending decision."""
        limit = self._limits[at.scope]
        if not limit:
            return
        _, _, event_id, event_time, principal = event.split(_UNIT, 4)
        for percent in self._percents:
            threshold = max(1, -(-limit * percent // 100))
            if after == threshold:
                decision = Decision(Kind.EXCEEDED if percent >= 100 else Kind.WARNING, at.scope, at.subject,
                                    Quota.DAILY_REQUESTS, at.day_id, percent, after, limit, event_id, event_time,
                                    principal, at.team)
                self.pending.setdefault((at.scope, at.subject), {})[orjson.dumps(decision.to_fields())] = None

    def _adopt(self, person: str, skip: set[str], handed: dict[tuple[str, bytes], HandOff]) -> None:
        """The person's hand-offs but those of `skip` (batches in flight, whose commit will finish them)."""
        for key, events in self.forward.get(person, {}).items():
            item = HandOff.parse(person, key, "\x1e".join(events).encode())
            if item.nonce in skip:
                continue
            known = handed.setdefault((person, key), item)
            if known is not item:
                known.events.extend(e for e in item.events if e not in known.events)

    def _collect(self, scope: Scope, subject: str, result: CountResult) -> None:
        for member in self.pending.get((scope, subject), {}):
            if (scope, subject, member) not in result.seen_pending:
                result.seen_pending.add((scope, subject, member))
                result.pending.append(
                    PendingDecision(scope, subject, member, Decision.from_fields(orjson.loads(member))))

    def publish(self, pending: Sequence[PendingDecision]) -> list[str]:
        with self._lock:
            self.failures.check("publish")
            self._journal.write("publish " + ",".join(p.decision.event_id for p in pending))
            self.stream.extend(p.decision for p in pending)
            return [p.decision.decision_id for p in pending]

    def clear_pending(self, pending: Iterable[PendingDecision]) -> None:
        with self._lock:
            pending = list(pending)
            self._journal.write("clear " + ",".join(p.decision.event_id for p in pending))
            for item in pending:
                self.pending.get((item.scope, item.subject), {}).pop(item.member, None)

    def finish(self, result: CountResult) -> None:
        with self._lock:
            self._journal.write("finish")
            for item in result.handed:
                self.forward.get(item.person, {}).pop(item.field, None)
            for person in result.settled:
                if not self.hold.get(person):
                    self.held.discard(person)

    def held_people(self) -> set[str]:
        with self._lock:
            return set(self.held)


@dataclass
class _Staged:
    calls: Sequence[CallRow]
    dead_letters: Sequence[DeadLetter]
    logs: Sequence[LogRow]


class MemoryStore:
    """Rows by natural key, visible only once committed."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.failures = _Failures()
        self._staged: _Staged | None = None
        self._may_commit = threading.Event()
        self._may_commit.set()
        self.calls: dict[str, CallRow] = {}
        self.logs: dict[str, LogRow] = {}
        self.dead_letters: dict[str, DeadLetter] = {}
        self.decisions: dict[str, Decision] = {}
        self.commits: list[list[str]] = []  # the event IDs of each batch committed, in order
        self.unpriced: list[Unpriced] = []

    def fail_next(self, method: str, error: BaseException) -> None:
        self.failures.fail_next(method, error)

    def hold_commits(self) -> None:
        """Commits wait (on the processor's MySQL thread) until `release_commits`."""
        self._may_commit.clear()

    def release_commits(self) -> None:
        self._may_commit.set()

    def stage(
        self, calls: Sequence[CallRow], dead_letters: Sequence[DeadLetter], logs: Sequence[LogRow] = ()
    ) -> WriteResult:
        self.failures.check("stage")
        self._journal.write("stage " + ",".join(c.event_id for c in calls))
        self._staged = _Staged(calls, dead_letters, logs)
        return WriteResult(sum(1 for c in calls if c.event_id not in self.calls), len(dead_letters), 0,
                           sum(1 for r in logs if r.request_id not in self.logs))

    def commit(
        self, decisions: Sequence[Decision], decided_at: datetime, *, settle: Sequence[tuple[int, str]] = (),
        settle_since: date | None = None, unknown: Sequence[int] = (), days: tuple[date, date] | None = None,
        recharge: Sequence[tuple[date, datetime, str, str]] = (),
        recharge_logs: Sequence[tuple[date, datetime, str, str]] = (), unpriced: Sequence[Unpriced] = (),
    ) -> None:
        if not self._may_commit.wait(_HOLD_WAIT):
            raise TimeoutError("commits held too long: a test forgot release_commits")
        staged, self._staged = self._staged, None
        self.failures.check("commit")  # a failed commit loses what was staged, as a rollback does
        assert staged is not None, "commit without stage"
        self._journal.write("commit " + ",".join(c.event_id for c in staged.calls))
        self.calls.update((c.event_id, c) for c in staged.calls if c.event_id not in self.calls)
        self.logs.update((r.request_id, r) for r in staged.logs if r.request_id not in self.logs)
        self.dead_letters.update((d.dedupe_key, d) for d in staged.dead_letters)
        self.decisions.update((d.decision_id, d) for d in decisions)
        for person, team in settle:  # held rows go to the team now known
            for key, row in list(self.calls.items()):
                if row.principal_id == person and row.team == UNRESOLVED:
                    self.calls[key] = replace(row, team=team)
        self.unpriced += unpriced
        self.commits.append([c.event_id for c in staged.calls])

    def abort(self) -> None:
        self._journal.write("abort")
        self._staged = None


class MemoryPricing:
    """Every log at one nano-dollar a token: enough to follow cost through the processor."""

    def charge(self, logs: Sequence[InvocationLog]) -> Metered:
        return Metered([Charge(sum(astuple(e.tokens)), PriceStatus.PRICED, e.model_id, PriceScope.REGIONAL)
                        for e in logs])


class MemoryRoleKeys:
    """Logged roles keyed as they come (no role paths to find)."""

    def learn(self, principals: Iterable[Principal]) -> None:
        return None

    def canonical(self, logs: Sequence[InvocationLog]) -> list[InvocationLog]:
        return list(logs)
