"""The processor core on real Redis and MariaDB: exact counts, idempotence, dead letters, decisions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import orjson
import pymysql
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Kind, Quota, Scope
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import Person
from tests.conftest import DAY, MONTH, NOW, envelope, records

ALICE = Person("alice", sso=False, account="956882123456")
BOB = Person("bob@example.com", sso=True)


def _count(conn: pymysql.connections.Connection, sql: str, *args: object) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        value = cur.fetchone()[0]  # type: ignore[index]
    conn.commit()
    return int(value)


def test_batch_counts_each_call_once_and_writes_rows(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer()
    events = [envelope(ALICE, NOW - timedelta(minutes=i), seed=i) for i in range(5)]
    events += [envelope(BOB, NOW - timedelta(minutes=1), seed=100 + i) for i in range(3)]
    events.append(envelope(BOB, NOW, seed=200, error="ThrottlingException"))

    result = consumer.processor.process(records(events))

    assert (result.calls, result.new, result.duplicates, result.rows_inserted) == (9, 9, 0, 9)
    state = RedisState(redis_client, Keys("test"))
    assert state.usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 5}
    assert state.usage(Scope.USER, "sso:bob@example.com", DAY) == {"req": 3, "err": 1}
    assert state.usage(Scope.USER, "sso:bob@example.com", MONTH) == {"req": 3, "err": 1}
    assert state.usage(Scope.TEAM, "unassigned", DAY) == {"req": 8, "err": 1}
    assert _count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 9
    assert _count(mysql, "SELECT COUNT(*) FROM bedrock_calls WHERE error_code = 'ThrottlingException'") == 1
    assert _count(mysql, "SELECT COUNT(*) FROM principals") == 2


def test_replayed_batch_changes_nothing(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer()
    batch = records([envelope(ALICE, NOW, seed=i) for i in range(4)])
    consumer.processor.process(batch)
    again = consumer.processor.process(batch + batch[:2])  # a replay, plus EventBridge duplicates

    assert (again.new, again.duplicates, again.rows_inserted) == (0, 6, 0)
    assert RedisState(redis_client, Keys("test")).usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 4}
    assert _count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 4


def test_crossings_decide_exactly_once(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer(DEFAULT_DAILY_REQUEST_LIMIT="10")
    first = consumer.processor.process(records([envelope(ALICE, NOW, seed=i) for i in range(7)]))
    assert [(d.kind, d.percent, d.usage) for d in first.decisions] == [(Kind.WARNING, 60, 6)]
    second = consumer.processor.process(records([envelope(ALICE, NOW, seed=i) for i in range(12)]))
    assert sorted((d.kind, d.percent, d.usage) for d in second.decisions) == [
        (Kind.EXCEEDED, 100, 10), (Kind.WARNING, 85, 9)]
    exceeded = next(d for d in second.decisions if d.kind is Kind.EXCEEDED)
    assert (exceeded.scope, exceeded.subject, exceeded.quota, exceeded.period, exceeded.limit) == (
        Scope.USER, ALICE.quota_key, Quota.DAILY_REQUESTS, DAY, 10)
    assert _count(mysql, "SELECT COUNT(*) FROM decisions") == 3
    assert redis_client.xlen(Keys("test").decisions) == 3
    assert consumer.processor.process(records([envelope(ALICE, NOW, seed=i) for i in range(12)])).decisions == []


def test_bad_records_go_to_dead_letters_and_the_rest_is_counted(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection
) -> None:
    consumer = make_consumer()
    batch = [
        InputRecord(b"\x1f\x8bnot really gzip", "shardId-000000000000", "1"),
        InputRecord(b"{not json", "shardId-000000000000", "2"),
        InputRecord(orjson.dumps(envelope(ALICE, NOW, seed=1)), "shardId-000000000000", "3"),
        InputRecord(b'{"hello": "world"}', "shardId-000000000000", "4"),
    ]
    result = consumer.processor.process(batch)
    assert (result.calls, result.new, result.dead_letters) == (1, 1, 3)
    with mysql.cursor() as cur:
        cur.execute("SELECT sequence_number, reason FROM dead_letters ORDER BY sequence_number")
        assert cur.fetchall() == (("1", "bad_gzip"), ("2", "not_json"), ("4", "unknown_shape"))
    consumer.processor.process(batch)  # a replay does not duplicate dead letters
    assert _count(mysql, "SELECT COUNT(*) FROM dead_letters") == 3


def test_batches_in_flight_publish_each_decision_once(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer(DEFAULT_DAILY_REQUEST_LIMIT="4", WARNING_THRESHOLDS="50")
    processor = consumer.processor
    gate = threading.Event()
    processor._mysql.submit(gate.wait)  # hold the MySQL thread: both batches are counted before either commits
    first = processor.submit(records([envelope(ALICE, NOW, seed=i) for i in range(3)]))
    second = processor.submit(records([envelope(ALICE, NOW, seed=i) for i in range(3, 6)], start=10))
    gate.set()

    decided = [(d.percent, d.usage) for d in first.wait().decisions + second.wait().decisions]
    assert decided == [(50, 2), (100, 4)]
    assert redis_client.xlen(Keys("test").decisions) == 2
    assert _count(mysql, "SELECT COUNT(*) FROM decisions") == 2
    # Cleared once committed: nothing is pending, nothing is published again.
    assert processor.process(records([envelope(ALICE, NOW, seed=9)], start=20)).decisions == []
