"""The processor's pipelining and failure paths, without MariaDB or Redis: its stores are the in-memory
stand-ins of tests/unit/memory_consumer_stores.py (the real adapters are tested in tests/integration).

The contract under test (consumer/processor.py): a batch is decoded and planned on the caller's thread,
counted and its decisions published on the Redis thread, staged and committed on the MySQL thread; each
thread takes batches in order, so batch N+1 is decoded and counted while batch N commits. Decisions are
published as soon as they are counted (before the commit: that is the sub-second path), recorded with the
commit, and leave the pending set only once committed. Whatever fails, the batch's `wait()` raises, nothing
of it is durable or finished, and its redo counts every event exactly once and republishes its decisions
with the same decision_id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from prometheus_client import CollectorRegistry

from bedrock_usage.quota import Scope
from consumer.decode import Decoder
from consumer.metrics import ConsumerMetrics
from consumer.people import UNRESOLVED
from consumer.processor import Processor
from consumer.records import InputRecord
from devtools.simulate import Person
from tests.conftest import DAY, NOW, envelope, records
from tests.unit.memory_consumer_stores import (
    Journal,
    MemoryCounters,
    MemoryPeople,
    MemoryPricing,
    MemoryRoleKeys,
    MemoryStore,
)

ALICE = Person("alice", sso=False, account="956882123456")
BOB = Person("bob@example.com", sso=True)
PLATFORM = "platform"


@dataclass
class Rig:
    processor: Processor
    journal: Journal
    people: MemoryPeople
    counters: MemoryCounters
    store: MemoryStore

    def store_steps(self) -> list[str]:
        return [e.split(" ")[0] for e in self.journal.entries if e.split(" ")[0] in ("stage", "commit", "abort")]


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    made: list[Processor] = []

    def factory(*, teams: Mapping[str, str] | None = None, daily_limit: int | None = None,
                warning_percents: Sequence[int] = ()) -> Rig:
        journal = Journal()
        people = MemoryPeople(teams)
        counters = MemoryCounters(journal, daily_limit=daily_limit, warning_percents=warning_percents)
        store = MemoryStore(journal)
        processor = Processor(
            decoder=Decoder(), people=people, metering=MemoryPricing(), role_paths=MemoryRoleKeys(),
            counters=counters, store=store, timezone_=ZoneInfo("Europe/Madrid"), grace_days=3, source="test",
            metrics=ConsumerMetrics(CollectorRegistry()), clock=lambda: NOW,
        )
        made.append(processor)
        return Rig(processor, journal, people, counters, store)

    yield factory
    for processor in made:
        processor.close()


def calls(person: Person, n: int, seed: int = 0) -> list[dict[str, Any]]:
    return [envelope(person, NOW, seed=seed + i) for i in range(n)]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail"]["eventID"] for e in events)


def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_the_next_batch_is_decoded_and_counted_while_the_previous_one_commits(make: Callable[..., Rig]) -> None:
    rig = make(teams={ALICE.quota_key: PLATFORM, BOB.quota_key: PLATFORM})
    first_events, second_events = calls(ALICE, 3), calls(BOB, 2, seed=10)
    rig.store.hold_commits()

    first = rig.processor.submit(records(first_events))
    second = rig.processor.submit(records(second_events, start=10))
    # Both submits returned: the second batch was decoded and its people resolved on this thread, and the
    # Redis thread counts it while the first batch's commit waits.
    assert BOB.quota_key in rig.people.resolved
    until(lambda: len(rig.journal.of("count")) == 2)
    assert not first.finished and not second.finished
    assert rig.store.commits == []

    rig.store.release_commits()
    assert (first.wait().new, second.wait().new) == (3, 2)
    # One MySQL thread, batches in the order submitted: the second is staged only after the first commits.
    assert rig.store_steps() == ["stage", "commit", "stage", "commit"]
    assert [sorted(c) for c in rig.store.commits] == [ids(first_events), ids(second_events)]
    assert rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 5


def test_overlapping_batches_publish_each_decision_once(make: Callable[..., Rig]) -> None:
    rig = make(daily_limit=4, warning_percents=[50])
    rig.store.hold_commits()  # both batches are counted before either commits
    first = rig.processor.submit(records(calls(ALICE, 3)))
    second = rig.processor.submit(records(calls(ALICE, 3, seed=3), start=10))
    until(lambda: len(rig.journal.of("count")) == 2)
    rig.store.release_commits()

    decided = [(d.percent, d.usage) for d in first.wait().decisions + second.wait().decisions]
    assert decided == [(50, 2), (100, 4)]
    assert len(rig.counters.stream) == len(rig.store.decisions) == 2
    # Cleared once committed: nothing is pending, nothing is published again.
    assert rig.processor.process(records(calls(ALICE, 1, seed=9), start=20)).decisions == []


def test_decisions_are_published_before_the_commit_and_leave_the_pending_set_after_it(
    make: Callable[..., Rig],
) -> None:
    rig = make(daily_limit=2)
    rig.store.hold_commits()
    flight = rig.processor.submit(records(calls(ALICE, 2)))

    until(lambda: rig.counters.stream)  # published at once: the enforcer does not wait for MySQL
    assert rig.store.decisions == {} and not flight.finished
    assert rig.counters.pending[(Scope.USER, ALICE.quota_key)]  # still pending: not recorded yet

    rig.store.release_commits()
    result = flight.wait()
    rig.processor.drain()
    assert [d.decision_id for d in result.decisions] == list(rig.store.decisions)
    assert not rig.counters.pending[(Scope.USER, ALICE.quota_key)]
    steps = [e.split(" ")[0] for e in rig.journal.entries]
    assert steps.index("publish") < steps.index("commit") < steps.index("clear")


@pytest.mark.parametrize("step", ["stage", "commit"])
def test_a_failed_write_fails_the_batch_and_its_redo_counts_once(make: Callable[..., Rig], step: str) -> None:
    rig = make(teams={ALICE.quota_key: PLATFORM}, daily_limit=2)
    batch = records(calls(ALICE, 3))
    rig.store.fail_next(step, ConnectionError("MySQL went away"))

    flight = rig.processor.submit(batch)
    with pytest.raises(ConnectionError):
        flight.wait()
    rig.processor.drain()
    # Nothing durable, nothing finished: the hand-off to the team and the decision wait for the redo.
    assert rig.store.calls == {} and rig.store.decisions == {}
    assert "finish" not in rig.journal.entries and not rig.journal.of("clear")
    assert rig.counters.forward[ALICE.quota_key]
    assert rig.counters.pending[(Scope.USER, ALICE.quota_key)]
    (decision,) = rig.counters.stream

    redo = rig.processor.process(batch)
    rig.processor.drain()
    assert (redo.new, redo.duplicates, redo.rows_inserted) == (0, 3, 3)
    assert rig.counters.usage(Scope.USER, ALICE.quota_key, DAY) == rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 3
    # Published again with the same id (the enforcer dedupes on it), recorded once.
    assert [d.decision_id for d in rig.counters.stream] == [decision.decision_id] * 2
    assert list(rig.store.decisions) == [decision.decision_id] == [d.decision_id for d in redo.decisions]
    assert len(rig.store.calls) == 3
    assert not any(rig.counters.forward.values()) and not rig.counters.pending[(Scope.USER, ALICE.quota_key)]


def test_the_hand_off_of_a_failed_batch_is_adopted_by_the_next_batch_of_that_person(
    make: Callable[..., Rig],
) -> None:
    rig = make(teams={ALICE.quota_key: PLATFORM, BOB.quota_key: PLATFORM})
    failed = records(calls(ALICE, 3))
    rig.store.fail_next("commit", ConnectionError("MySQL went away"))
    with pytest.raises(ConnectionError):
        rig.processor.submit(failed).wait()

    # Another batch of Alice's (not the redo) takes the hand-off over, and finishes it once committed.
    rig.processor.process(records(calls(ALICE, 1, seed=50) + calls(BOB, 1, seed=60), start=10))
    rig.processor.drain()
    assert not any(rig.counters.forward.values())
    assert rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 5

    redo = rig.processor.process(failed)
    assert (redo.new, redo.rows_inserted) == (0, 3)
    assert rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 5
    assert len(rig.store.calls) == 5


@pytest.mark.parametrize("step", ["count", "publish"])
def test_a_failed_count_fails_the_batch_drops_its_rows_and_its_redo_counts_once(
    make: Callable[..., Rig], step: str,
) -> None:
    rig = make(teams={ALICE.quota_key: PLATFORM}, daily_limit=2)
    batch = records(calls(ALICE, 3))
    rig.counters.fail_next(step, ConnectionError("Redis went away"))

    with pytest.raises(ConnectionError):
        rig.processor.submit(batch).wait()
    rig.processor.drain()
    assert rig.store_steps() == ["stage", "abort"]  # the staged rows go
    assert rig.store.calls == {} and rig.counters.stream == []

    redo = rig.processor.process(batch)
    # A count that failed counted nothing; a publish that failed came after the count: the redo finds
    # the events seen. Either way each is counted once and the decision published once.
    assert (redo.new, redo.duplicates) == ((3, 0) if step == "count" else (0, 3))
    assert rig.counters.usage(Scope.USER, ALICE.quota_key, DAY) == rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 3
    assert len(rig.counters.stream) == len(rig.store.decisions) == len(redo.decisions) == 1
    assert len(rig.store.calls) == 3


def test_undecodable_records_become_dead_letters_and_the_rest_of_the_batch_counts(make: Callable[..., Rig]) -> None:
    rig = make()
    batch = [
        InputRecord(b"\x1f\x8bnot really gzip", "shardId-000000000000", "1"),
        InputRecord(b"{not json", "shardId-000000000000", "2"),
        InputRecord(orjson.dumps(envelope(ALICE, NOW, seed=1)), "shardId-000000000000", "3"),
        InputRecord(b'{"hello": "world"}', "shardId-000000000000", "4"),
    ]
    result = rig.processor.process(batch)

    assert (result.records, result.calls, result.new, result.dead_letters) == (4, 1, 1, 3)
    assert sorted((d.sequence_number, d.reason) for d in rig.store.dead_letters.values()) == [
        ("1", "bad_gzip"), ("2", "not_json"), ("4", "unknown_shape")]
    assert rig.counters.usage(Scope.USER, ALICE.quota_key, DAY) == 1
    assert len(rig.store.calls) == 1
    rig.processor.process(batch)  # a replay brings the same dead letters (same keys): no new ones
    assert len(rig.store.dead_letters) == 3


def test_a_person_counted_before_their_team_is_known_is_settled_with_it(make: Callable[..., Rig]) -> None:
    rig = make(teams={ALICE.quota_key: UNRESOLVED})
    held = rig.processor.process(records(calls(ALICE, 3)))
    assert held.held == 3
    assert rig.counters.held_people() == {ALICE.quota_key}
    assert {row.team for row in rig.store.calls.values()} == {UNRESOLVED}

    rig.people.learn(ALICE.quota_key, PLATFORM)
    assert rig.processor.process([]).settled == [ALICE.quota_key]  # an idle poll settles them
    rig.processor.drain()
    assert rig.counters.usage(Scope.TEAM, PLATFORM, DAY) == 3
    assert {row.team for row in rig.store.calls.values()} == {PLATFORM}
    assert rig.counters.held_people() == set()
    assert rig.people.settlements() == []
