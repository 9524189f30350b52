"""The Redis marker on real Redis and MariaDB: written at first start, checked by the scripts before they count,
and a Redis that forgot rebuilt from MySQL (by one consumer, the others waiting) before counting resumes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pymysql
import pytest
import redis

from bedrock_usage import db, redis_marker
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Limits, Scope
from bedrock_usage.redis_marker import MarkerState, RedisForgot
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts
from consumer.counters import Counters, Group, event_argument
from consumer.processor import BatchResult
from consumer.records import InputRecord
from devtools.settings import AllSettings
from devtools.simulate import Person
from tests import conftest
from tests.conftest import DAY, MONTH, NOW, envelope, records

KEYS = Keys("test")
ALICE = Person("alice", sso=False, account="956882123456")
BOB = Person("bob@example.com", sso=True)


def rows(conn: pymysql.connections.Connection, sql: str, *args: object) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        found = list(cur.fetchall())
    conn.commit()
    return found


def counted(consumer: ConsumerParts, batch: list[InputRecord], attempts: int = 5) -> tuple[BatchResult, int]:
    """Process a batch as the KCL processor does: redone while Redis is being repaired (RedisForgot).
    Returns the result and how many attempts were refused."""
    for refused in range(attempts):
        try:
            return consumer.processor.process(batch), refused
        except RedisForgot:
            consumer.reset_connections()
    raise AssertionError("still refused")


def usage(client: redis.Redis, subject: str, period: str = DAY, scope: Scope = Scope.USER) -> dict[str, int]:
    return RedisState(client, KEYS).usage(scope, subject, period)


def decisions(conn: pymysql.connections.Connection) -> list[tuple[object, ...]]:
    return rows(conn, "SELECT subject, quota, percent FROM decisions ORDER BY subject, quota, percent")


def test_the_first_consumer_writes_the_marker_in_mysql_and_redis(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
) -> None:
    consumer = make_consumer()
    result, refused = counted(consumer, records([envelope(ALICE, NOW, seed=1)]))
    assert (result.new, refused) == (1, 0)
    marker = redis_marker.read(mysql)
    assert marker is not None and marker.state is MarkerState.READY
    assert redis_marker.in_redis(redis_client, KEYS) == marker.epoch
    assert rows(mysql, "SELECT reason, finished_at IS NOT NULL FROM redis_rebuilds") == [("first", 1)]
    assert consumer.metrics.redis_data_lost._value.get() == 0
    # A second consumer adopts it (no second marker).
    other = make_consumer()
    assert counted(other, records([envelope(BOB, NOW, seed=2)]))[0].new == 1
    assert redis_marker.read(mysql) == marker
    assert len(rows(mysql, "SELECT id FROM redis_rebuilds")) == 1


def test_the_scripts_refuse_to_count_without_the_expected_marker(redis_client: redis.Redis) -> None:
    c = Counters(redis_client, KEYS, user_defaults=Limits(10, 100), team_defaults=Limits(None, None),
                 warning_percents=(60,), stream_maxlen=1000, default_team="unassigned")
    group = Group(Scope.USER, "alice", "team-a", DAY, MONTH, 4_102_444_800, True, True,
                  [event_argument(f"e-{i}", NOW.isoformat(), "alice", True) for i in range(3)])
    c.marker = "epoch-1"
    for held in (None, "epoch-0", redis_marker.placeholder("epoch-1")):
        if held is not None:
            redis_marker.put(redis_client, KEYS, held)
        with pytest.raises(RedisForgot, match="BUMARKER expected epoch-1"):
            c.count([group])
        with pytest.raises(RedisForgot):  # settling held events does not run either
            c.count([], settle=[("alice", "team-a")])
        # Not one event counted, nothing handed over or held: the marker is the only key.
        assert redis_client.keys("*") == ([] if held is None else [KEYS.marker().encode()])
    redis_marker.put(redis_client, KEYS, "epoch-1")
    assert c.count([group]).new == 3


def test_a_redis_that_forgot_is_rebuilt_exactly_and_no_crossing_is_decided_twice(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
) -> None:
    consumer = make_consumer(DEFAULT_DAILY_REQUEST_LIMIT="10")
    first = [envelope(ALICE, NOW - timedelta(minutes=9 - i), seed=i) for i in range(7)]
    first += [envelope(BOB, NOW - timedelta(minutes=5), seed=100),
              envelope(BOB, NOW, seed=101, error="ThrottlingException")]
    counted(consumer, records(first))
    assert decisions(mysql) == [(ALICE.quota_key, "daily_requests", 60)]  # 6 of 10
    before_loss = redis_marker.read(mysql)
    redis_client.flushdb()  # the test's own logical database: as FLUSHALL would

    # Alice's 7th to 10th calls: the first attempt is refused (nothing counted), Redis rebuilt, the redo counts.
    second = [envelope(ALICE, NOW, seed=i) for i in range(7, 11)] + first[:2]  # and two redeliveries
    result, refused = counted(consumer, records(second, start=100))
    assert refused == 1
    assert (result.new, result.duplicates) == (4, 2)
    # Exact: 11 calls for Alice, Bob's call and failed call, the team (people without one) likewise.
    assert usage(redis_client, ALICE.quota_key) == {"req": 11}
    assert usage(redis_client, ALICE.quota_key, MONTH) == {"req": 11}
    assert usage(redis_client, "sso:bob@example.com") == {"req": 1, "err": 1}
    assert usage(redis_client, "unassigned", MONTH, Scope.TEAM) == {"req": 12, "err": 1}
    # The 60 % crossing (decided before the loss) is not decided again; 85 % and 100 %, reached by the redo, are.
    assert sorted(d.percent for d in result.decisions) == [85, 100]
    assert decisions(mysql) == [(ALICE.quota_key, "daily_requests", p) for p in (60, 85, 100)]
    # A new marker, recorded with the loss; the metric counts it once.
    after = redis_marker.read(mysql)
    assert after is not None and before_loss is not None and after.epoch != before_loss.epoch and after.ready
    assert redis_marker.in_redis(redis_client, KEYS) == after.epoch
    assert rows(mysql, "SELECT reason, previous_epoch, rows_replayed FROM redis_rebuilds ORDER BY id")[1:] == [
        ("lost", before_loss.epoch, 9)]
    assert consumer.metrics.redis_data_lost._value.get() == 1
    assert consumer.metrics.redis_unmarked._value.get() == 0
    # The stream went with the data: the 60 % decision no enforcer acted on is published again (same id).
    stream = [f[b"percent"] for _, f in redis_client.xrange(KEYS.decisions)]
    assert stream == [b"60", b"85", b"100"]


def test_one_rebuilder_under_the_lock_while_the_others_wait_and_count_nothing(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
) -> None:
    consumers = [make_consumer(REDIS_REBUILD_WAIT_SECONDS="1") for _ in range(3)]
    counted(consumers[0], records([envelope(ALICE, NOW, seed=i) for i in range(5)]))
    redis_client.flushdb()
    # Someone else holds the rebuild lock (a consumer rebuilding): everyone waits, counts nothing.
    params = AllSettings.from_env(conftest.test_env()).mysql
    holder = db.connect(params)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (redis_marker.lock_name(params.database, "test"),))
            assert cur.fetchone() == (1,)
        with pytest.raises(RedisForgot, match="being rebuilt"):
            consumers[1].processor.process(records([envelope(BOB, NOW, seed=50)], start=50))
        assert consumers[1].metrics.redis_unmarked._value.get() == 1
        assert redis_client.keys("*") == []  # not one count while waiting
    finally:
        holder.close()  # the lock goes with its connection (as when a rebuilder dies)

    # Now three consumers at once, each with its own batch: one rebuilds, the others adopt its marker.
    results: dict[int, BatchResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = counted(consumers[i], records([envelope(BOB, NOW, seed=60 + i)], start=60 + i))[0]
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.new for r in results.values()) == [1, 1, 1]
    assert rows(mysql, "SELECT reason FROM redis_rebuilds ORDER BY id") == [("first",), ("lost",)]
    assert sum(c.metrics.redis_data_lost._value.get() for c in consumers) == 1
    assert usage(redis_client, ALICE.quota_key) == {"req": 5}
    assert usage(redis_client, "sso:bob@example.com") == {"req": 3}
    markers = {c.guard.counters.marker for c in consumers}
    assert markers == {redis_marker.in_redis(redis_client, KEYS)}


def test_a_rebuild_that_died_half_way_is_done_again(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
) -> None:
    consumer = make_consumer()
    counted(consumer, records([envelope(ALICE, NOW, seed=i) for i in range(3)]))
    # A rebuilder died after its placeholder: MySQL says rebuilding, Redis holds the placeholder, half refilled.
    redis_client.flushdb()
    redis_marker.write(mysql, "dead" * 8, MarkerState.REBUILDING, "dead-host:1")
    mysql.commit()
    redis_marker.put(redis_client, KEYS, redis_marker.placeholder("dead" * 8))
    result, refused = counted(consumer, records([envelope(ALICE, NOW, seed=9)], start=9))
    assert (result.new, refused) == (1, 1)
    assert usage(redis_client, ALICE.quota_key) == {"req": 4}
    assert rows(mysql, "SELECT reason, previous_epoch FROM redis_rebuilds ORDER BY id")[1:] == [("resumed", "dead" * 8)]
    assert consumer.metrics.redis_data_lost._value.get() == 0  # not a new loss


def test_an_upgrade_with_counted_rows_and_no_marker_rebuilds_first(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis,
) -> None:
    counted(make_consumer(), records([envelope(ALICE, NOW, seed=i) for i in range(3)]))
    redis_marker.forget(mysql)  # as before migration 019: rows in MySQL, no marker anywhere
    redis_client.delete(KEYS.marker())
    consumer = make_consumer()
    result, refused = counted(consumer, records([envelope(ALICE, NOW, seed=i) for i in range(2, 5)]))
    assert (result.new, result.duplicates, refused) == (2, 1, 0)  # repaired before the first count
    assert usage(redis_client, ALICE.quota_key) == {"req": 5}
    assert rows(mysql, "SELECT reason FROM redis_rebuilds ORDER BY id") == [("first",), ("unmarked",)]
    assert consumer.metrics.redis_data_lost._value.get() == 0
