"""Redis adapter: counting, pending decisions, the decision stream, limit overrides.

Counting a batch takes two round trips: one EVALSHA of counters.lua per person and day (pipelined),
then one per team and day over the events the people's scripts handed over; then the decisions are
published, and the hand-offs removed once the batch is committed in MySQL. Charging a team only what
its person counted first is what keeps a redo after a team change from counting an event for two teams;
keeping each batch's hand-off until its commit is what lets a redo charge its rows to the same team.
The script is registered once and re-loaded when Redis has lost it (NoScriptError, e.g. after a failover
or SCRIPT FLUSH). On a Redis Cluster each script call's keys share one scope's hash tag, and a batch's calls
go to each master in one pipeline of its own (consumer/script_pipeline.py).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from bedrock_usage import redis_errors
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Decision, Limits, Scope
from bedrock_usage.redis_marker import RedisForgot, refused
from bedrock_usage.redis_state import RedisClient
from bedrock_usage.teams import is_team
from consumer.script_pipeline import ScriptPipeline

# Errors meaning "Redis is unreachable, failing over or full", or "Redis forgot (its marker is not the one
# expected)": retry with backoff, do not checkpoint.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*redis_errors.TRANSIENT, RedisForgot)


def event_hash(event_id: str) -> str:
    """64-bit signed hash of an eventID, as a decimal string: Redis keeps small sets of these as intsets
    (8 bytes an entry instead of ~60 for the 36-character ID)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big", signed=True))


def event_argument(event_id: str, event_time: str, principal: str, counted: bool) -> str:
    """One call as the counting script takes it: built once per call, used by its person's group and
    its team's group."""
    return f"{event_hash(event_id)}\x1f{1 if counted else 0}\x1f{event_id}\x1f{event_time}\x1f{principal}"


def log_argument(request_id: str, event_time: str, principal: str, cost_nanos: int, tokens: Tokens) -> str:
    """One metered invocation log as the counting script takes it: its cost and tokens ride in the kind
    field. Hashed over "log:" + requestId: a log and its call share the request ID but are counted apart
    (the call as a request, the log as cost)."""
    return (f"{event_hash('log:' + request_id)}\x1fL{cost_nanos},{tokens.input},{tokens.output},{tokens.cache_read},"
            f"{tokens.cache_write_5m},{tokens.cache_write_1h}\x1f{request_id}\x1f{event_time}\x1f{principal}")


@dataclass
class Group:
    """Events of one scope in one quota day, counted by one script call."""

    scope: Scope
    subject: str
    team: str  # of a person: the team charged ('' = not known yet: the events are held)
    day_id: str
    month_id: str
    expire_at: int  # unix seconds: month end + grace
    decide_daily: bool
    decide_monthly: bool
    events: list[str] = field(default_factory=list)  # event_argument() / log_argument() of each event
    logs: int = 0  # how many of the events are invocation logs
    forward: bool = True  # a person's group: hand its new events to its team (a rebuild counts teams itself)


@dataclass(frozen=True)
class PendingDecision:
    scope: Scope
    subject: str
    member: bytes  # the exact set member, removed once published and recorded
    decision: Decision


@dataclass(frozen=True)
class HandOff:
    """Events a person's script handed to a team (one forward-hash entry of one batch), to count for the
    team, and to remove once that batch is committed."""

    person: str
    field: bytes
    team: str
    day_id: str
    month_id: str
    expire_at: int
    nonce: str  # of the batch that handed them over
    events: list[str]

    @classmethod
    def parse(cls, person: str, field: bytes, value: bytes) -> HandOff:
        team, day_id, month_id, expire_at, nonce = field.decode().split(_UNIT)
        return cls(person, field, team, day_id, month_id, int(expire_at), nonce, value.decode().split(_RECORD))

    @staticmethod
    def field_of(team: str, day_id: str, month_id: str, expire_at: int, nonce: str) -> bytes:
        return _UNIT.join((team, day_id, month_id, str(expire_at), nonce)).encode()


@dataclass
class CountResult:
    new: int = 0  # calls and logs
    duplicates: int = 0
    new_failed: int = 0
    new_logs: int = 0
    duplicate_logs: int = 0
    new_cost: dict[str, int] = field(default_factory=dict)  # team charged ('' = not known yet) → nano-dollars
    new_tokens: list[int] = field(default_factory=lambda: [0] * 5)  # of the new logs, by part (rates.PARTS)
    new_log_ids: set[str] = field(default_factory=set)  # request IDs of the logs counted for the first time
    pending: list[PendingDecision] = field(default_factory=list)
    handed: list[HandOff] = field(default_factory=list)  # counted for their teams; removed once committed
    settled: list[str] = field(default_factory=list)  # people whose held events went to their team
    seen_pending: set[tuple[Scope, str, bytes]] = field(default_factory=set, repr=False)


_UNIT, _RECORD = "\x1f", "\x1e"


def _merge(handed: dict[tuple[str, bytes], HandOff], item: HandOff) -> None:
    """Add a hand-off to those of this count; one entry can come back from several scripts (a person's
    two days in one batch, a settle), so events already there are not added twice."""
    known = handed.get((item.person, item.field))
    if known is None:
        handed[(item.person, item.field)] = item
        return
    have = set(known.events)
    known.events.extend(e for e in item.events if e not in have)


class Counters:
    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        *,
        user_defaults: Limits,
        team_defaults: Limits,
        warning_percents: Sequence[int],
        stream_maxlen: int,
        default_team: str,
    ) -> None:
        self._redis = client
        self._keys = keys
        percents = ",".join(str(p) for p in warning_percents)
        def limit(value: int | None) -> str:
            return "" if value is None else str(value)

        self._policy = {
            scope: "\x1f".join((limit(d.daily), limit(d.monthly), percents, limit(d.daily_cost), limit(d.monthly_cost)))
            for scope, d in ((Scope.USER, user_defaults), (Scope.TEAM, team_defaults))
        }
        # People with no team are counted under DEFAULT_TEAM, which is not a team: no quota, no decision.
        self._no_team = default_team
        self._stream_maxlen = stream_maxlen
        here = Path(__file__).parent
        self._script = client.register_script((here / "counters.lua").read_text())
        self._settle = client.register_script((here / "settle.lua").read_text())
        # The marker epoch Redis must hold for the scripts to count (consumer/redis_guard.py keeps it); ''
        # until known: nothing is counted before the marker has been read.
        self.marker = ""

    def marker_keys(self, groups: Sequence[Group]) -> tuple[str, ...]:
        """The marker keys the groups' scripts check (one on a single Redis, their slots' on a cluster)."""
        k = self._keys
        return tuple(sorted({k.marker(k.seen(g.scope, g.subject, g.day_id)) for g in groups}))

    def still_marked(self, epoch: str, keys: Sequence[str]) -> bool:
        """Whether Redis still holds `epoch` in every one of `keys`: asked once a counted batch is committed.
        A Redis that forgot in between may have been rebuilt from MySQL before that commit landed."""
        if not keys:
            return True
        client = self._redis
        values = (client.mget_nonatomic(list(keys)) if isinstance(client, redis.RedisCluster)
                  else client.mget(list(keys)))
        return all(v is not None and (v.decode() if isinstance(v, bytes) else str(v)) == epoch for v in values)

    def count(
        self, groups: Sequence[Group], *, settle: Sequence[tuple[str, str]] = (), today: tuple[str, str] | None = None,
        nonce: str = "", in_flight: Sequence[str] = (), in_flight_entries: Mapping[str, int] | None = None,
    ) -> CountResult:
        """Count people's and teams' groups, then what the people's scripts handed to their teams.

        `settle`: (person, team) pairs whose team became known: their held events are handed to it too.
        `today`: (day id, month id) — handed events of an earlier period are counted but decide nothing.
        `nonce` names this batch's hand-offs; those of `in_flight` batches (counted, not yet committed)
        are not counted again (`in_flight_entries`: how many each person has, so the scripts skip reading
        them at all). The caller publishes the decisions and, once the batch is committed in
        MySQL, removes its hand-offs (`finish`).
        """
        if not nonce:
            nonce = uuid.uuid4().hex[:16]
        skip = ",".join(in_flight)
        result = CountResult()
        people = [g for g in groups if g.scope is Scope.USER]
        teams = [g for g in groups if g.scope is Scope.TEAM]
        held = sorted({g.subject for g in people if g.forward and g.team == ""})
        if not (people or teams or settle):
            return result
        pipe = ScriptPipeline(self._redis)
        if held:  # before holding anything: whoever learns the team first can then settle it
            pipe.command("SADD", self._keys.held, *held)
        for group in [*people, *teams]:
            entries = (in_flight_entries or {}).get(group.subject, 0) if group.scope is Scope.USER else 0
            pipe.script(self._script, self._group_keys(group), self._group_args(group, nonce, skip, entries))
        for person, team in settle:
            # Its own nonce: never the same field as this batch's new events of that person and day.
            hold = self._keys.hold(person)
            pipe.script(self._settle, [hold, self._keys.forward(person), self._keys.marker(hold)],
                        [team, nonce + "s", skip, self.marker])
        replies = self._execute(pipe)[1 if held else 0:]
        handed: dict[tuple[str, bytes], HandOff] = {}
        for group, reply in zip([*people, *teams], replies, strict=False):
            self._read(group, reply, result, handed, nonce)
        for (person, _), reply in zip(settle, replies[len(people) + len(teams):], strict=True):
            for i in range(0, len(reply), 2):
                _merge(handed, HandOff.parse(person, reply[i], reply[i + 1]))
        result.settled = [person for person, _ in settle]
        result.handed = list(handed.values())
        if result.handed:
            self._count_handed(result, today)
        # A set has no order: publish each scope's crossings in the order they happened.
        result.pending.sort(key=lambda p: (p.scope, p.subject, p.decision.quota, p.decision.usage, p.decision.percent))
        return result

    def _read(
        self, group: Group, reply: list[Any], result: CountResult, handed: dict[tuple[str, bytes], HandOff], nonce: str,
    ) -> None:
        new, duplicates, failed, flags, n_pending = (int(reply[0]), int(reply[1]), int(reply[2]), reply[3],
                                                     int(reply[4]))
        if group.scope is Scope.USER:  # every call is in one person's group: count it there
            result.new += new
            result.duplicates += duplicates
            result.new_failed += failed
            if group.logs:
                self._read_logs(group, reply[3], result)
            if group.forward and group.team and new:
                # What the script just handed over, without sending it back: the events flagged new.
                event_flags = flags.decode() if isinstance(flags, bytes) else str(flags)
                events = [e for e, f in zip(group.events, event_flags, strict=True) if f == "1"]
                field_ = HandOff.field_of(group.team, group.day_id, group.month_id, group.expire_at, nonce)
                _merge(handed, HandOff(group.subject, field_, group.team, group.day_id, group.month_id,
                                       group.expire_at, nonce, events))
            rest = reply[5 + n_pending:]
            for i in range(0, len(rest), 2):  # entries of a batch that was not committed: count them now
                _merge(handed, HandOff.parse(group.subject, rest[i], rest[i + 1]))
        self._collect_pending(group.scope, group.subject, reply[5:5 + n_pending], result)

    @staticmethod
    def _read_logs(group: Group, flags: bytes | str, result: CountResult) -> None:
        """How many of a person's logs were new, and their cost by the team charged (for the metrics)."""
        event_flags = flags.decode() if isinstance(flags, bytes) else str(flags)
        for event, flag in zip(group.events, event_flags, strict=True):
            kind = event.split("\x1f", 2)[1]
            if kind[:1] != "L":
                continue
            if flag == "1":
                cost, *tokens = (int(n) for n in kind[1:].split(","))
                result.new_logs += 1
                result.new_log_ids.add(event.split("\x1f", 3)[2])
                result.new_cost[group.team] = result.new_cost.get(group.team, 0) + cost
                result.new_tokens = [a + b for a, b in zip(result.new_tokens, tokens, strict=True)]
            else:
                result.duplicate_logs += 1

    @staticmethod
    def _collect_pending(scope: Scope, subject: str, members: list[bytes], result: CountResult) -> None:
        for member in members:
            # Two groups of one scope (a batch spanning midnight) both return its pending set.
            if (scope, subject, member) in result.seen_pending:
                continue
            result.seen_pending.add((scope, subject, member))
            result.pending.append(PendingDecision(scope, subject, member, Decision.from_fields(orjson.loads(member))))

    def _count_handed(self, result: CountResult, today: tuple[str, str] | None) -> None:
        """The second step: the events people handed over, counted for their teams (one script per team
        and day); the teams' seen sets make a repeat of this step harmless."""
        groups: dict[tuple[str, str], Group] = {}
        for item in result.handed:
            group = groups.get((item.team, item.day_id))
            if group is None:
                decide = is_team(item.team, self._no_team)
                groups[(item.team, item.day_id)] = group = Group(
                    Scope.TEAM, item.team, item.team, item.day_id, item.month_id, item.expire_at,
                    decide_daily=decide and (today is None or item.day_id >= today[0]),
                    decide_monthly=decide and (today is None or item.month_id >= today[1]))
            group.events.extend(item.events)
        pipe = ScriptPipeline(self._redis)
        ordered = list(groups.values())
        for group in ordered:
            pipe.script(self._script, self._group_keys(group), self._group_args(group, "", "", 0))
        replies = self._execute(pipe)
        for group, reply in zip(ordered, replies, strict=True):
            self._collect_pending(Scope.TEAM, group.subject, reply[5:5 + int(reply[4])], result)

    @staticmethod
    def _execute(pipe: Any) -> list[Any]:
        """Run a pipeline of scripts: Redis full raised as OutOfMemoryError, the marker refusal as
        RedisForgot (scripts before it in the pipeline may have counted, on data that was then lost, or
        kept: a redo of the batch dedupes them)."""
        try:
            with redis_errors.full_as_oom():
                return list(pipe.execute())
        except redis.exceptions.ResponseError as error:
            if refused(error):
                raise RedisForgot(str(error)) from error
            raise

    def finish(self, result: CountResult) -> None:
        """The batch is committed: remove what it handed over (its own entries and those it adopted)."""
        pipe = self._redis.pipeline(transaction=False)
        by_person: dict[str, list[bytes]] = {}
        for item in result.handed:
            by_person.setdefault(item.person, []).append(item.field)
        for person, fields in by_person.items():
            pipe.hdel(self._keys.forward(person), *fields)
        if result.settled:
            pipe.srem(self._keys.held, *result.settled)
            for person in result.settled:
                pipe.exists(self._keys.hold(person))
        if not len(pipe):
            return
        replies = pipe.execute()
        if result.settled:
            # Another consumer may have held new events of theirs since the settle: keep them listed.
            again = [p for p, n in zip(result.settled, replies[-len(result.settled):], strict=True) if n]
            if again:
                self._redis.sadd(self._keys.held, *again)

    def held_people(self) -> set[str]:
        """People with events held for a team not known yet (any consumer's)."""
        return {m.decode() if isinstance(m, bytes) else str(m) for m in self._redis.smembers(self._keys.held)}

    def _group_keys(self, group: Group) -> list[str]:
        k, scope, subject = self._keys, group.scope, group.subject
        if scope is Scope.USER:
            extra = [k.forward(subject), k.hold(subject)]
        else:
            extra = [k.members(subject, group.day_id), k.members(subject, group.month_id)]
        return [
            k.seen(scope, subject, group.day_id),
            k.counter(scope, subject, group.day_id),
            k.counter(scope, subject, group.month_id),
            k.limits(scope, subject),
            k.pending(scope, subject),
            *extra,
            k.marker(k.seen(scope, subject, group.day_id)),
        ]

    def _group_args(self, group: Group, nonce: str, skip: str, in_flight_entries: int) -> list[str]:
        decide = group.scope is Scope.USER or is_team(group.subject, self._no_team)
        flags = f"{1 if decide and group.decide_daily else 0}\x1f{1 if decide and group.decide_monthly else 0}"
        return [
            group.scope.value,
            group.subject,
            group.team,
            f"{group.day_id}\x1f{group.month_id}\x1f{group.expire_at}\x1f{flags}",
            self._policy[group.scope],
            "1" if group.forward else "0",
            nonce,
            skip,
            str(in_flight_entries),
            self.marker,
            *group.events,
        ]

    def publish(self, pending: Sequence[PendingDecision]) -> list[str]:
        """Append decisions to the stream (one round trip). A republish after a crash carries the same
        decision_id, which is what the enforcer deduplicates on."""
        return self.republish([item.decision for item in pending])

    def republish(self, decisions: Sequence[Decision]) -> list[str]:
        """Append decisions to the stream: those just decided, or (after a rebuild) those recorded in MySQL."""
        if not decisions:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for decision in decisions:
            pipe.xadd(
                self._keys.decisions,
                dict(decision.to_fields()),  # type: ignore[arg-type]
                maxlen=self._stream_maxlen,
                approximate=True,
            )
        return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]

    def clear_pending(self, pending: Iterable[PendingDecision]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for item in pending:
            pipe.srem(self._keys.pending(item.scope, item.subject), item.member)
        pipe.execute()
