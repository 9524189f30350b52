"""The processor core: a batch of records → counters, decisions, rows. Used by the KCL record processor,
`bedrockctl ingest` and the benchmark, so the offline path is the same code as the live one. It knows its
stores by the Protocols of consumer/ports.py (the real ones are plugged in by consumer/assembly.py).

Order of effects, each idempotent on the events' natural keys:
  1. decode every record (bad ones become dead letters, the rest go on), resolve principals
     (auto-provisioned) and their teams, new people looked up with a bounded wait, and price the
     invocation logs — on the caller's thread;
  2. insert calls, logs and dead letters into MySQL, uncommitted, and join calls with their logs — on the
     MySQL thread;
  3. count in Redis: one atomic script per (person, day): dedupe, increments (a call: a request; a log: its
     cost and tokens), threshold crossings, and
     the hand-off of the person's new events to their team; then one per (team, day) over what was
     handed over; then publish the decisions the scripts left pending (the sub-second part) — on the
     Redis thread. People whose team became known have their held events handed over in the same step;
  4. once 3 is done, add the decisions, move settled people's held rows to their team, and commit — on
     the MySQL thread;
  5. clear the published decisions from the pending sets — on the Redis thread.
Each thread takes batches in order, so the next batch can be decoded while this one is counted and
written. The caller acknowledges (checkpoints) a batch only when its `BatchInFlight` is done. If anything
fails, the whole batch is redone: Redis dedupes the counts, MySQL dedupes the rows, pending decisions are
published again with the same decision_id.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage.pricing.rates import PARTS
from bedrock_usage.quota import Decision, usd
from bedrock_usage.redis_marker import RedisForgot
from consumer.counters import CountResult, Group, PendingDecision
from consumer.decode import Decoder
from consumer.events import BedrockCall, InvocationLog, Rejected, Skipped
from consumer.metering import Metered
from consumer.metrics import ConsumerMetrics
from consumer.people import Assignment
from consumer.plan import Planner
from consumer.ports import MarkerGuard, People, Pricing, RoleKeys, RowStore, UsageCounters
from consumer.records import InputRecord
from consumer.rows import DeadLetter, Unpriced, WriteResult

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    records: int = 0
    calls: int = 0
    new: int = 0
    duplicates: int = 0
    beyond_horizon: int = 0
    rows_inserted: int = 0
    dead_letters: int = 0
    skipped: int = 0
    invocation_logs: int = 0  # decoded (metered: new + duplicates of them)
    logs_new: int = 0
    logs_inserted: int = 0
    cost_nanos: int = 0  # of the new logs counted in Redis
    held: int = 0  # calls of people whose team is not known yet: counted for them, held for the team
    settled: list[str] = field(default_factory=list)  # people whose held calls went to their team
    decisions: list[Decision] = field(default_factory=list)
    decision_latency: float | None = None  # batch received → its decisions published, seconds


@dataclass
class _Batch:
    """What the Redis and MySQL steps of one batch share."""

    result: BatchResult
    started: float  # monotonic
    decided_at: datetime  # naive UTC
    calls: Sequence[tuple[BedrockCall, InputRecord]]
    logs: Sequence[tuple[InvocationLog, InputRecord]]
    metered: Metered
    nonce: str  # names this batch's hand-offs in Redis
    row_teams: dict[str, str]  # eventID (and "log:" + requestId) → the team its row was staged with
    settle: Sequence[tuple[str, Assignment]]  # people whose held calls move to their team with this batch
    unknown: Sequence[int]  # row ids of people counted while unresolved
    days: tuple[date, date] | None  # the batch's first and last quota day
    settle_since: date  # held rows older than this stay as they are (their periods are closed)
    counted: CountResult | None = None
    marked: tuple[str, tuple[str, ...]] = ("", ())  # the marker epoch it was counted under, and its keys
    # (quota day, event time, eventID, team): rows a redo staged with a team other than the one Redis
    # charged when the batch was first counted (a team change in between): the row follows Redis.
    recharge: list[tuple[date, datetime, str, str]] = field(default_factory=list)
    recharge_logs: list[tuple[date, datetime, str, str]] = field(default_factory=list)  # by requestId
    unpriced: list[Unpriced] = field(default_factory=list)  # models of new logs charged at the fallback


@dataclass(frozen=True)
class BatchInFlight:
    """A submitted batch: its counting and its MySQL commit may still be running."""

    result: BatchResult
    _done: Future[None]

    def wait(self) -> BatchResult:
        """Block until the batch is durable in MySQL; re-raises what failed there."""
        self._done.result()
        return self.result

    @property
    def finished(self) -> bool:
        return self._done.done()


class Processor:
    def __init__(
        self,
        *,
        decoder: Decoder,
        people: People,
        metering: Pricing,
        role_paths: RoleKeys,
        counters: UsageCounters,
        store: RowStore,
        timezone_: ZoneInfo,
        grace_days: int,
        source: str,
        metrics: ConsumerMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sweep_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        guard: MarkerGuard | None = None,
    ) -> None:
        """`guard`: the Redis marker's (None: stores that cannot forget, as the unit tests' in-memory ones)."""
        self._decoder = decoder
        self._people = people
        self._metering = metering
        self._role_paths = role_paths
        self.counters = counters
        self._store = store
        self._plan = Planner(timezone_, grace_days)
        self._source = source
        self._metrics = metrics
        self._clock = clock
        self._mysql = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mysql")
        self._redis = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redis")
        self._lock = threading.Lock()
        # Pending decisions published by batches not yet committed: not published again by the next batch.
        self._published_uncommitted: set[bytes] = set()
        self._nonces: dict[str, dict[str, int]] = {}  # batches counted, not yet committed → their hand-offs
        self._sweep_seconds = sweep_seconds
        self._monotonic = monotonic
        self._swept_at = float("-inf")
        self._guard = guard

    def close(self) -> None:
        self._mysql.shutdown(wait=True)
        self._redis.shutdown(wait=True)

    def process(self, records: Sequence[InputRecord]) -> BatchResult:
        """Process a batch and return once its effects are durable."""
        return self.submit(records).wait()

    def drain(self) -> None:
        """Wait until nothing is left on either thread (failures there belong to their batches in flight).
        MySQL first: its last step hands the clearing of published decisions to the Redis thread."""
        self._mysql.submit(lambda: None).result()
        self._redis.submit(lambda: None).result()

    def submit(self, records: Sequence[InputRecord]) -> BatchInFlight:
        """Start a batch: decode and group it here; count it in Redis and publish its decisions on the
        Redis thread; insert and commit its rows on the MySQL thread. Returns at once.

        Each thread takes its work in order, batch after batch, so a caller can submit the next batch
        while this one is counted and written. Read the result, and acknowledge (checkpoint) the
        batch, only after its `BatchInFlight.wait()` has returned.
        """
        started = time.monotonic()
        now = self._clock()
        result = BatchResult(records=len(records))
        calls, decoded_logs, letters = self._decode(records, now.replace(tzinfo=None), result)
        self._role_paths.learn(call.principal for call, _ in calls)
        logs = list(zip(self._role_paths.canonical([entry for entry, _ in decoded_logs]),
                        [record for _, record in decoded_logs], strict=True))
        entries = self._people.resolve([call.principal for call, _ in calls] + [e.principal for e, _ in logs])
        self._metrics.unresolved_people.set(self._people.unresolved)
        settle = self._settlements()
        if not records and not settle:  # an idle poll with nothing to settle: no round trip at all
            idle: Future[None] = Future()
            idle.set_result(None)
            return BatchInFlight(result, idle)
        metered = self._metering.charge([entry for entry, _ in logs])
        # MySQL inserts the rows (uncommitted) while this thread groups the calls and Redis counts them.
        staged = self._mysql.submit(self._store.stage, self._plan.rows(calls, entries), letters,
                                    self._plan.log_rows(logs, metered, entries))
        try:
            groups, result.beyond_horizon = self._plan.groups(calls, logs, metered, entries, now)
        except BaseException:
            self._mysql.submit(self._store.abort).result()
            raise
        result.held = sum(1 for call, _ in calls if not entries[call.principal.key].resolved)
        result.settled = [key for key, _ in settle]
        today = self._plan.period(now)
        days = {self._plan.slot(call.event_time).day for call, _ in calls}
        days.update(self._plan.slot(entry.timestamp).day for entry, _ in logs)
        row_teams = {call.event_id: entries[call.principal.key].team for call, _ in calls}
        row_teams.update(("log:" + entry.request_id, entries[entry.principal.key].team) for entry, _ in logs)
        batch = _Batch(result, started, now.replace(tzinfo=None), calls, logs, metered, uuid.uuid4().hex[:16],
                       row_teams, settle,
                       # Rows charged while their person was unknown go to the team known at commit time.
                       unknown=sorted({e.id for e in entries.values() if not e.resolved}),
                       days=(min(days), max(days)) if days else None,
                       settle_since=(today.day.replace(day=1) - timedelta(days=1)).replace(day=1))
        counting = self._redis.submit(self._count, groups, (today.day_id, today.month_id), batch)
        # Nothing is committed until Redis has counted the batch and its decisions are published.
        done = self._mysql.submit(self._finish, staged, counting, batch)
        return BatchInFlight(result, done)

    def _settlements(self) -> list[tuple[str, Assignment]]:
        """People whose held calls are to move to their team now: those this process held, and, every
        sweep interval, anyone's held people whose team is known (another consumer's, one that crashed)."""
        settle = dict(self._people.settlements())
        now = self._monotonic()
        if now - self._swept_at >= self._sweep_seconds:
            self._swept_at = now
            held = self.counters.held_people() - set(settle)
            if held:
                settle.update(self._people.known(held))
        return sorted(settle.items())

    def _count(self, groups: Sequence[Group], today: tuple[str, str], batch: _Batch) -> list[PendingDecision]:
        """On the Redis thread: count, then publish the decisions this batch owns."""
        result = batch.result
        with self._lock:
            in_flight = sorted(self._nonces)
            entries: dict[str, int] = {}
            for fields in self._nonces.values():
                for person, n in fields.items():
                    entries[person] = entries.get(person, 0) + n
        if self._guard is not None:
            self._guard.ensure()
        batch.marked = (self.counters.marker, self.counters.marker_keys(groups))
        try:
            counted = self.counters.count(groups, settle=[(key, a.team) for key, a in batch.settle], today=today,
                                          nonce=batch.nonce, in_flight=in_flight, in_flight_entries=entries)
        except RedisForgot:
            # Not checkpointed: Redis is repaired (or whoever repairs it awaited), then the batch is redone.
            if self._guard is not None:
                self._guard.refused()
            raise
        batch.counted = counted
        # A decision of an earlier batch still in flight comes back from the pending set until that
        # batch is committed; it is published once (a crash forgets this, and republishes it).
        with self._lock:
            claimed = [p for p in counted.pending if p.member not in self._published_uncommitted]
            self._published_uncommitted.update(p.member for p in claimed)
            # Every hand-off this batch counted stays in its person's forward hash until it is committed.
            held: dict[str, int] = {}
            for item in counted.handed:
                held[item.person] = held.get(item.person, 0) + 1
            self._nonces[batch.nonce] = held
        batch.recharge, batch.recharge_logs = self._recharged(counted, batch)
        batch.unpriced = batch.metered.unpriced([entry for entry, _ in batch.logs], counted.new_log_ids)
        # Counted now, whatever happens next: a retry of this batch will find these calls seen.
        self._metrics.events.labels("call", "new").inc(counted.new - counted.new_logs)
        self._metrics.events.labels("call", "duplicate").inc(counted.duplicates - counted.duplicate_logs)
        self._metrics.events.labels("call", "failed_call").inc(counted.new_failed)
        self._metrics.invocation_logs.labels("new").inc(counted.new_logs)
        self._metrics.invocation_logs.labels("duplicate").inc(counted.duplicate_logs)
        for team, nanos in counted.new_cost.items():  # dollars as a float: for Prometheus only
            self._metrics.cost.labels(team or "(not known yet)").inc(float(usd(nanos)))
        for part, tokens in zip(PARTS, counted.new_tokens, strict=True):
            self._metrics.tokens.labels(part).inc(tokens)
        try:
            self.counters.publish(claimed)
        except BaseException:
            self._abandon(batch, claimed)
            raise
        if claimed:
            result.decision_latency = time.monotonic() - batch.started
            self._observe_decisions(claimed, batch.calls, batch.logs, result.decision_latency)
        result.new, result.duplicates = counted.new - counted.new_logs, counted.duplicates - counted.duplicate_logs
        result.logs_new, result.cost_nanos = counted.new_logs, sum(counted.new_cost.values())
        result.decisions = [p.decision for p in claimed]
        return claimed

    def _finish(self, staged: Future[WriteResult], counting: Future[list[PendingDecision]], batch: _Batch) -> None:
        """On the MySQL thread, after the batch's stage: once Redis has counted, commit; then clear the
        published decisions from the pending sets."""
        result = batch.result
        try:
            pending = counting.result()
        except BaseException:
            self._store.abort()  # the staged rows go; the batch will be redone, idempotently
            raise
        # Committed: clear the decisions from the pending sets. Failed: forget them only, so that the
        # redone batch publishes them again. Either on the Redis thread, in turn with the counting: a
        # count that read them before the clear still finds them in flight.
        try:
            written = staged.result()
            self._store.commit(result.decisions, decided_at=batch.decided_at,
                               settle=[(a.id, a.team) for _, a in batch.settle], settle_since=batch.settle_since,
                               unknown=batch.unknown, days=batch.days, recharge=batch.recharge,
                               recharge_logs=batch.recharge_logs, unpriced=batch.unpriced)
            epoch, keys = batch.marked
            if epoch and not self.counters.still_marked(epoch, keys):
                # Redis forgot after this batch counted, and a rebuild may have read MySQL before this commit:
                # redone, not checkpointed (its seen sets, rebuilt or not, make it count once).
                raise RedisForgot("Redis lost its marker while the batch was committed: redone")
        except BaseException:
            self._redis.submit(self._abandon, batch, pending)
            raise
        self._redis.submit(self._clear, batch, pending)
        if batch.settle:
            self._people.settled(batch.settle)
        result.rows_inserted = written.calls_inserted
        result.logs_inserted = written.logs_inserted
        result.dead_letters = written.dead_letters
        for unpriced in batch.unpriced:
            self._metrics.unpriced_calls.labels(unpriced.model).inc(unpriced.calls)
        self._metrics.records.inc(result.records)
        self._metrics.events.labels("call", "beyond_horizon").inc(result.beyond_horizon)
        self._metrics.events.labels("call", "held").inc(result.held)
        self._metrics.settled_people.inc(len(batch.settle))
        self._metrics.batch_seconds.observe(time.monotonic() - batch.started)

    def _clear(self, batch: _Batch, pending: Sequence[PendingDecision]) -> None:
        """The batch is committed: its published decisions leave the pending sets, its hand-offs the
        forward hashes."""
        try:
            if pending:
                self.counters.clear_pending(pending)
            if batch.counted is not None:
                self.counters.finish(batch.counted)
        finally:
            self._abandon(batch, pending)

    def _abandon(self, batch: _Batch, pending: Sequence[PendingDecision]) -> None:
        """Forget the batch here: its redo publishes its decisions again and adopts its hand-offs."""
        self._forget(pending)
        with self._lock:
            self._nonces.pop(batch.nonce, None)

    @staticmethod
    def _recharged(
        counted: CountResult, batch: _Batch
    ) -> tuple[list[tuple[date, datetime, str, str]], list[tuple[date, datetime, str, str]]]:
        """Rows of this batch (calls, logs) that an earlier, uncommitted attempt handed to another team than
        the one they were staged with (the person changed team in between): they follow Redis."""
        calls: list[tuple[date, datetime, str, str]] = []
        logs: list[tuple[date, datetime, str, str]] = []
        for item in counted.handed:
            if item.nonce == batch.nonce or not item.team:
                continue
            day = date.fromisoformat(item.day_id)
            for event in item.events:
                _, kind, ident, event_time, _ = event.split("\x1f", 4)
                is_log = kind.startswith("L")
                staged = batch.row_teams.get("log:" + ident if is_log else ident)
                if staged is not None and staged != item.team:
                    (logs if is_log else calls).append(
                        (day, datetime.fromisoformat(event_time).astimezone(UTC).replace(tzinfo=None), ident,
                         item.team))
        return calls, logs

    def _forget(self, pending: Sequence[PendingDecision]) -> None:
        with self._lock:
            self._published_uncommitted.difference_update(p.member for p in pending)

    def _decode(
        self, records: Sequence[InputRecord], received_at: datetime, result: BatchResult
    ) -> tuple[list[tuple[BedrockCall, InputRecord]], list[tuple[InvocationLog, InputRecord]], list[DeadLetter]]:
        calls: list[tuple[BedrockCall, InputRecord]] = []
        logs: list[tuple[InvocationLog, InputRecord]] = []
        letters: list[DeadLetter] = []
        for record in records:
            for item in self._decoder.decode(record.data):
                if isinstance(item, BedrockCall):
                    calls.append((item, record))
                elif isinstance(item, Rejected):
                    letters.append(DeadLetter(
                        self._source, record.shard_id, record.sequence_number, item.index,
                        item.reason, item.detail, item.raw, received_at,
                    ))
                    self._metrics.dead_letters.labels(item.reason).inc()
                elif isinstance(item, Skipped):
                    result.skipped += 1
                    self._metrics.skipped.labels(item.reason).inc()
                elif isinstance(item, InvocationLog):
                    logs.append((item, record))
        result.calls, result.invocation_logs = len(calls), len(logs)
        return calls, logs, letters

    def _observe_decisions(
        self, pending: Sequence[PendingDecision], calls: Sequence[tuple[BedrockCall, InputRecord]],
        logs: Sequence[tuple[InvocationLog, InputRecord]], latency: float,
    ) -> None:
        arrivals = {call.event_id: record.arrival_ms for call, record in calls if record.arrival_ms}
        arrivals.update((entry.request_id, record.arrival_ms) for entry, record in logs if record.arrival_ms)
        wall_ms = time.time() * 1000
        for item in pending:
            decision = item.decision
            self._metrics.decisions.labels(decision.kind.value, decision.scope.value).inc()
            self._metrics.decision_latency.observe(latency)
            arrival = arrivals.get(decision.event_id)
            if arrival:
                self._metrics.arrival_to_decision.observe(max(0.0, (wall_ms - arrival) / 1000))
            log.info("decision", extra={"decision": decision.to_fields()})
