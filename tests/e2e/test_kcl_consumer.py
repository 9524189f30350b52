"""The whole consumer path, end to end: EventBridge envelopes put into a 2-shard Kinesis stream (moto), the
real KCL MultiLangDaemon leasing the shards from DynamoDB (moto) and running one record processor per shard,
counters in Redis, rows and decisions in MariaDB. Every test asserts exact numbers: each distinct call is
counted once, whatever the stream, the daemon or a crash do to the records.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pymysql
import pytest
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from devtools.simulate import Person, bedrock_event, deliver, people, traffic
from tests.conftest import DAY, MONTH, NOW
from tests.e2e.conftest import (
    RunningConsumer,
    Stack,
    expected_usage,
    quota_day_now,
    rows,
    scalar,
    total_usage,
    wait_until,
)

pytestmark = pytest.mark.e2e

KEYS = Keys("test")
TEAM = "unassigned"  # DEFAULT_TEAM: TEAM_TAG_LOOKUP is off and no quota file assigns teams
SHARD_0 = "shardId-000000000000"


def _ids(events: Iterable[dict[str, Any]]) -> set[str]:
    return {e["detail"]["eventID"] for e in events}


def _call_rows(mysql: pymysql.connections.Connection) -> int:
    return scalar(mysql, "SELECT COUNT(*) FROM bedrock_calls")


def _wait_for_rows(mysql: pymysql.connections.Connection, count: int, consumer: RunningConsumer,
                   timeout: float = 60) -> None:
    wait_until(lambda: _call_rows(mysql), lambda n: n >= count, timeout=timeout,
               what=f"{count} rows in bedrock_calls", alive=[consumer])


def _wait_for_records(consumer: RunningConsumer, count: int, timeout: float = 30) -> None:
    # Records are tallied when their batch is committed, a moment after its calls are counted.
    wait_until(lambda: consumer.metric("bedrock_usage_records_total"), lambda n: n >= count, timeout=timeout,
               what=f"{count} records in the metrics of {consumer.application}", alive=[consumer])


def _wait_for_events(consumer: RunningConsumer, outcome: str, count: int, timeout: float = 30) -> None:
    wait_until(lambda: consumer.events(outcome), lambda n: n >= count, timeout=timeout,
               what=f"{count} {outcome} calls in the metrics of {consumer.application}", alive=[consumer])


def _redis_usage(redis_client: redis.Redis, scope: Scope, subject: str, period: str) -> dict[str, int]:
    return RedisState(redis_client, KEYS).usage(scope, subject, period)


def assert_exactly_counted(
    mysql: pymysql.connections.Connection, redis_client: redis.Redis, events: list[dict[str, Any]]
) -> None:
    """Rows, per-person and team counters are exactly those of the distinct calls in `events`."""
    expected = expected_usage(events)
    distinct = _ids(events)

    assert _call_rows(mysql) == len(distinct)
    assert {row[0] for row in rows(mysql, "SELECT event_id FROM bedrock_calls")} == distinct
    per_person = {
        key: {name: int(value) for name, value in (("req", req), ("err", err)) if value}
        for key, req, err in rows(
            mysql,
            "SELECT p.quota_key, SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL)"
            " FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id GROUP BY p.quota_key",
        )
    }
    assert per_person == expected
    assert scalar(mysql, "SELECT COUNT(*) FROM principals") == len(expected)

    state = RedisState(redis_client, KEYS)
    assert {key: state.usage(Scope.USER, key, DAY) for key in expected} == expected
    assert {key: state.usage(Scope.USER, key, MONTH) for key in expected} == expected
    assert state.usage(Scope.TEAM, TEAM, DAY) == total_usage(expected)
    assert state.usage(Scope.TEAM, TEAM, MONTH) == total_usage(expected)
    # No counters for anybody else (a mangled quota key would show up here).
    day_counters = {k.decode() for k in redis_client.scan_iter(match=f"{KEYS.prefix}:{{u:*}}:c:{DAY}", count=1000)}
    assert day_counters == {KEYS.counter(Scope.USER, key, DAY) for key in expected}


def expected_decisions(
    events: list[dict[str, Any]], limit: int, percents: tuple[int, ...] = (60, 85, 100)
) -> list[tuple[str, str, int, int, int, str]]:
    """(subject, kind, percent, usage, limit, event_id) of the daily decisions the consumer must make: for
    each person, the distinct successful call (in stream order) whose count reaches ceil(limit * p / 100)."""
    thresholds = {max(1, -(-limit * p // 100)): p for p in percents}
    seen: set[str] = set()
    used: dict[str, int] = {}
    decided = []
    for event in events:
        detail = event["detail"]
        if detail["eventID"] in seen:
            continue
        seen.add(detail["eventID"])
        if detail.get("errorCode"):
            continue
        key = expected_usage([event]).popitem()[0]
        used[key] = used.get(key, 0) + 1
        percent = thresholds.get(used[key])
        if percent is not None:
            kind = "exceeded" if percent >= 100 else "warning"
            decided.append((key, kind, percent, used[key], limit, detail["eventID"]))
    return sorted(decided)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_decisions(redis_client: redis.Redis) -> list[dict[str, str]]:
    entries: list[tuple[Any, dict[Any, Any]]] = redis_client.xrange(KEYS.decisions)  # type: ignore[assignment]
    return [{_text(k): _text(v) for k, v in fields.items()} for _, fields in entries]


def _as_tuples(decisions: list[dict[str, str]]) -> list[tuple[str, str, int, int, int, str]]:
    return sorted((d["subject"], d["kind"], int(d["percent"]), int(d["usage"]), int(d["limit"]), d["event_id"])
                  for d in decisions)


def _table_decisions(mysql: pymysql.connections.Connection) -> list[tuple[str, str, int, int, int, str]]:
    return sorted(
        (str(s), str(k), int(p), int(u), int(lim), str(e)) for s, k, p, u, lim, e in rows(
            mysql, "SELECT subject, kind, percent, usage_count, limit_count, event_id FROM decisions"
            " WHERE scope = 'user' AND quota = 'daily_requests'")
    )


# -- 1 ----------------------------------------------------------------------------------------------


def test_every_record_is_counted_exactly_once_and_sigterm_exits_cleanly(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    crowd = people(10)
    events = list(traffic(crowd, 400, NOW - timedelta(minutes=6), timedelta(minutes=5), seed=101))
    failed = sum(1 for e in events if e["detail"].get("errorCode"))
    assert len(_ids(events)) == 400 and 0 < failed < 40
    assert {p.sso for p in crowd} == {True, False}

    application = stack.application("count")
    assert deliver(stack.kinesis, stack.stream, events[:250]) == 250
    consumer = stack.start(application)
    assert deliver(stack.kinesis, stack.stream, events[250:]) == 150  # while the daemon starts

    _wait_for_rows(mysql, 400, consumer)
    _wait_for_events(consumer, "new", 400)
    _wait_for_records(consumer, 400)

    assert_exactly_counted(mysql, redis_client, events)
    assert (consumer.events("new"), consumer.events("duplicate"), consumer.events("failed_call")) == (400, 0, failed)
    assert consumer.metric("bedrock_usage_records_total") == 400
    assert scalar(mysql, "SELECT COUNT(*) FROM dead_letters") == 0
    # Limits of 250 a day: ~40 calls each crosses nothing.
    assert redis_client.xlen(KEYS.decisions) == 0
    assert scalar(mysql, "SELECT COUNT(*) FROM decisions") == 0

    assert consumer.stop() == 0
    # shutdown_requested checkpointed each shard at its last record.
    leases = stack.leases(application)
    assert {shard: lease["checkpoint"]["S"] for shard, lease in leases.items()} == stack.last_sequence_numbers()
    assert _call_rows(mysql) == 400


# -- 2 ----------------------------------------------------------------------------------------------


def test_sigkill_mid_stream_and_restart_still_counts_each_call_once(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    crowd = people(12, seed=3)
    wave1 = list(traffic(crowd, 150, NOW - timedelta(minutes=9), timedelta(minutes=2), seed=201))
    wave2 = list(traffic(crowd, 200, NOW - timedelta(minutes=7), timedelta(minutes=3), seed=202))
    wave3 = list(traffic(crowd, 100, NOW - timedelta(minutes=4), timedelta(minutes=3), seed=203))
    events = wave1 + wave2 + wave3
    assert len(_ids(events)) == 450
    shard_of = stack.shard_of()
    shard0_ids = {e["detail"]["eventID"] for e in events if shard_of(e) == SHARD_0}
    assert 0 < len(shard0_ids) < 450

    application = stack.application("kill")
    deliver(stack.kinesis, stack.stream, wave1)
    first = stack.start(application)
    _wait_for_rows(mysql, 1, first)

    def trickle() -> None:  # wave 2 arrives in small puts, across the crash
        for start in range(0, len(wave2), 5):
            deliver(stack.kinesis, stack.stream, wave2[start:start + 5])
            time.sleep(0.1)

    delivering = threading.Thread(target=trickle, name="wave2")
    delivering.start()
    try:
        _wait_for_rows(mysql, len(wave1) + 1, first)  # some of wave 2 is in
        still_delivering = delivering.is_alive()
        first.kill()
    finally:
        delivering.join()
    assert still_delivering, "the crash was meant to happen while wave 2 was still being delivered"
    time.sleep(0.5)  # let Redis and MariaDB finish any request the dead processes had already sent

    # What the dead consumer had done: counted in Redis (its effect on counters), and rows in MySQL.
    people_keys = set(expected_usage(events))
    counted_before = sum(sum(_redis_usage(redis_client, Scope.USER, key, DAY).values()) for key in people_keys)
    rows_before = {row[0] for row in rows(mysql, "SELECT event_id FROM bedrock_calls")}
    assert len(wave1) < counted_before < len(events)
    assert len(rows_before) <= counted_before
    shard0_done = len(rows_before & shard0_ids)
    assert shard0_done > 0
    # Worst case on top of the crash: shard 0 lost its checkpoints, so every record of it comes back.
    stack.rewind(application, SHARD_0)

    deliver(stack.kinesis, stack.stream, wave3)
    second = stack.start(application)  # same application: takes the dead worker's leases over
    _wait_for_rows(mysql, len(events), second, timeout=90)
    _wait_for_events(second, "new", len(events) - counted_before)

    assert_exactly_counted(mysql, redis_client, events)
    # Each call is new exactly once across both lives; the re-delivered ones were recognised as duplicates.
    assert second.events("new") == len(events) - counted_before
    assert second.events("duplicate") >= shard0_done
    assert redis_client.xlen(KEYS.decisions) == 0


# -- 3 ----------------------------------------------------------------------------------------------------


def test_duplicate_deliveries_and_a_full_replay_change_nothing(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    events = list(traffic(people(8, seed=5), 200, NOW - timedelta(minutes=5), timedelta(minutes=4), seed=301))
    # EventBridge is at-least-once: some envelopes arrive twice (the very same event, later in the stream).
    again = random.Random(8).sample(events, 30)
    assert len(_ids(events)) == len(events)
    assert deliver(stack.kinesis, stack.stream, events) == len(events)
    assert deliver(stack.kinesis, stack.stream, again) == len(again)
    records = len(events) + len(again)

    live = stack.start(stack.application("live"))
    _wait_for_rows(mysql, len(events), live)
    _wait_for_events(live, "duplicate", len(again))

    assert (live.events("new"), live.events("duplicate")) == (len(events), len(again))
    assert_exactly_counted(mysql, redis_client, events)

    # A full replay: a new KCL application has no checkpoints and re-reads every shard from TRIM_HORIZON,
    # on the same Redis and MySQL, while the live consumer keeps running.
    replay = stack.start(stack.application("replay"))
    _wait_for_events(replay, "duplicate", records, timeout=60)
    _wait_for_records(replay, records)

    assert replay.metric("bedrock_usage_records_total") == records
    assert (replay.events("new"), replay.events("duplicate")) == (0, records)
    assert (live.events("new"), live.events("duplicate")) == (len(events), len(again))
    assert_exactly_counted(mysql, redis_client, events)
    assert scalar(mysql, "SELECT COUNT(*) FROM dead_letters") == 0
    assert redis_client.xlen(KEYS.decisions) == 0
    assert live.running() and replay.running()


# -- 4 ----------------------------------------------------------------------------------------------------


def test_a_person_crossing_the_daily_limit_is_decided_exactly_once_even_across_a_replay(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    today, seconds_left = quota_day_now()
    if today != DAY or seconds_left < 600:
        pytest.skip("too close to the end of the quota day: the consumer's clock would decide on another day")
    limit = 10
    heavy = Person("Heavy.User@example.com", sso=True)
    heavy_key = "sso:heavy.user@example.com"
    rng = random.Random(42)
    heavy_calls = [bedrock_event(heavy, NOW - timedelta(minutes=4, seconds=-12 * i), rng) for i in range(15)]
    others = list(traffic(people(4, seed=9), 30, NOW - timedelta(minutes=5), timedelta(minutes=4), seed=401))
    events = sorted(others + heavy_calls, key=lambda e: e["detail"]["eventTime"])  # stable: heavy's order kept
    # The heavy user's crossing calls (and one after) arrive twice.
    again = [heavy_calls[5], heavy_calls[8], heavy_calls[9], heavy_calls[14], *others[:3]]
    assert len(_ids(events)) == len(events)
    assert deliver(stack.kinesis, stack.stream, events) == len(events)
    assert deliver(stack.kinesis, stack.stream, again) == len(again)
    records = len(events) + len(again)

    live = stack.start(stack.application("live"), DEFAULT_DAILY_REQUEST_LIMIT=str(limit))
    _wait_for_rows(mysql, len(events), live)
    _wait_for_events(live, "duplicate", len(again))

    assert (live.events("new"), live.events("duplicate")) == (len(events), len(again))
    assert_exactly_counted(mysql, redis_client, events)
    assert _redis_usage(redis_client, Scope.USER, heavy_key, DAY) == {"req": 15}

    decided = expected_decisions(events, limit)
    assert [d for d in decided if d[0] == heavy_key] == sorted([
        (heavy_key, "warning", 60, 6, limit, heavy_calls[5]["detail"]["eventID"]),
        (heavy_key, "warning", 85, 9, limit, heavy_calls[8]["detail"]["eventID"]),
        (heavy_key, "exceeded", 100, 10, limit, heavy_calls[9]["detail"]["eventID"]),
    ])
    stream_before = _stream_decisions(redis_client)
    assert _as_tuples(stream_before) == decided  # each exactly once: no duplicate stream entries
    assert _table_decisions(mysql) == decided
    assert scalar(mysql, "SELECT COUNT(*) FROM decisions") == len(decided)
    assert {d["decision_id"] for d in stream_before} == {
        str(r[0]) for r in rows(mysql, "SELECT decision_id FROM decisions")}

    replay = stack.start(stack.application("replay"), DEFAULT_DAILY_REQUEST_LIMIT=str(limit))
    _wait_for_events(replay, "duplicate", records, timeout=60)
    _wait_for_records(replay, records)

    assert (replay.events("new"), replay.events("duplicate")) == (0, records)
    assert replay.metric("bedrock_usage_decisions_total", kind="warning", scope="user") == 0
    assert replay.metric("bedrock_usage_decisions_total", kind="exceeded", scope="user") == 0
    assert_exactly_counted(mysql, redis_client, events)
    assert _stream_decisions(redis_client) == stream_before
    assert _table_decisions(mysql) == decided
    assert scalar(mysql, "SELECT COUNT(*) FROM decisions") == len(decided)
    assert live.running() and replay.running()
