"""Shared fixtures: real MariaDB/MySQL and Redis (schema built from sql/), real event samples.

Tests use their own database and Redis logical database, so a demo's data is never touched:
TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/bedrock_usage_test) and TEST_REDIS_URL
(default redis://127.0.0.1:6379/9). TEST_REDIS_CLUSTER=1 runs them on a Redis Cluster of their own instead
(three masters on free local ports, REDIS_CLUSTER=true): `make test-cluster`.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import orjson
import pymysql
import pytest
import redis
from moto import mock_aws
from prometheus_client import CollectorRegistry

from bedrock_usage import db
from bedrock_usage.migrate import first_prices, migrate
from consumer.assembly import ConsumerParts, assemble_consumer
from consumer.records import InputRecord
from devtools.redis_cluster import LocalRedisCluster
from devtools.settings import AllSettings
from devtools.simulate import Person, bedrock_event

EVENTS = Path(__file__).parent / "events"
TEST_MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/bedrock_usage_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def _on_cluster() -> LocalRedisCluster | None:
    """TEST_REDIS_CLUSTER=1: the suite's Redis is a local three-master Redis Cluster of its own (started once,
    here, because the URLs below are read by value when modules import them; stopped when pytest exits)."""
    if os.environ.get("TEST_REDIS_CLUSTER", "").lower() not in ("1", "true", "yes"):
        return None
    cluster = LocalRedisCluster()
    cluster.start()
    atexit.register(cluster.stop)
    return cluster


REDIS_CLUSTER = _on_cluster()
if REDIS_CLUSTER is not None:
    TEST_REDIS_URL = REDIS_CLUSTER.url


def _now() -> datetime:
    """Real time (Redis expires counters on its own clock), kept 20 minutes clear of a local midnight so
    that events a few minutes old are in the same quota day and month as the processor's clock."""
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(ZoneInfo("Europe/Madrid"))
    if local.hour == 0 and local.minute < 20:
        now -= timedelta(minutes=local.minute + 20)
    return now


NOW = _now()
DAY = NOW.astimezone(ZoneInfo("Europe/Madrid")).date().isoformat()
MONTH = DAY[:7]

_TABLES = ("bedrock_calls", "dead_letters", "decisions", "principals", "teams", "models", "user_agents",
           "blocks", "enforcement_actions", "notifications", "deliveries", "invocation_logs", "unpriced_models",
           "inference_profiles", "role_keys",  # not `prices`: the migration loads the shipped price file
           "redis_marker", "redis_rebuilds",  # a consumer then finds a new deployment and writes the marker
           "usage_hourly", "usage_hourly_dirty", "usage_daily", "usage_hour_team", "provisioning_actions",
           "bedrock_api_keys")


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def event_bytes(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def test_env(**overrides: str) -> dict[str, str]:
    env = {
        "MYSQL_URL": TEST_MYSQL_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "TEAM_TAG_LOOKUP": "false",
        "REDIS_KEY_PREFIX": "test",
        "AWS_REGION": "us-east-1",
    }
    if REDIS_CLUSTER is not None:
        env["REDIS_CLUSTER"] = "true"
    env.update(overrides)
    return env


@pytest.fixture
def settings() -> AllSettings:
    return AllSettings.from_env(test_env())


# -- one pytest session per store ------------------------------------------------------------------
# Every fixture that drops, empties or flushes a store claims it first, for the rest of the session: two
# sessions on one database or Redis db (a helper's TEST_E2E_REDIS_URL that is another's TEST_REDIS_URL, two
# runs on the defaults) would empty it under each other's tests, which then fail at whichever step reads next
# (the provisioning e2e test's `usage --json` printing [] just after her counters were read right). The claim
# is a MySQL lock, server-wide: every session on the suite's MySQL server sees it; it goes with the process.

_CLAIMED: set[str] = set()
_CLAIMING: list[pymysql.connections.Connection] = []  # the connection holding this process's claims


def claim_name(store: str) -> str:
    """The lock of a store (`mysql DATABASE`, `redis URL`); GET_LOCK names: 64 characters at most."""
    return "bu_test_store:" + hashlib.sha256(store.encode()).hexdigest()[:32]


def claim(store: str) -> None:
    """Hold the store for this session; fail (the test asking, and every later one) if another session does."""
    if store in _CLAIMED:
        return
    if not _CLAIMING:
        _CLAIMING.append(db.connect(AllSettings.from_env(test_env()).mysql, with_database=False))
    conn = _CLAIMING[0]
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (claim_name(store),))
        row = cur.fetchone()
    if not row or row[0] != 1:
        pytest.fail(f"another pytest session is using {store}: each would empty it under the other's tests. Give"
                    " this one its own (TEST_MYSQL_URL, TEST_REDIS_URL, TEST_E2E_MYSQL_URL, TEST_E2E_REDIS_URL).",
                    pytrace=False)
    _CLAIMED.add(store)


def fresh_schema(settings: AllSettings) -> AllSettings:
    """Drop the settings' database and build it again from sql/."""
    claim(f"mysql {settings.mysql.database}")
    conn = db.connect(settings.mysql, with_database=False)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{settings.mysql.database}`")
    conn.close()
    migrate(settings.mysql, today=NOW.date())
    return settings


def emptied(settings: AllSettings) -> Iterator[pymysql.connections.Connection]:
    """A connection to the settings' database with every table emptied first."""
    claim(f"mysql {settings.mysql.database}")
    conn = db.connect(settings.mysql)
    with conn.cursor() as cur:
        for table in _TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("UPDATE directory_state SET identity_center = NULL")
    conn.commit()
    first_prices(conn, NOW.date())  # the shipped prices again, where a test emptied the table
    yield conn
    conn.close()


def test_redis(url: str) -> redis.Redis:
    """A client of the tests' Redis: a cluster client under TEST_REDIS_CLUSTER (its FLUSHDB, KEYS and SCAN
    reach every master). Typed as redis.Redis: the tests call the commands both clients have."""
    if REDIS_CLUSTER is not None and url == REDIS_CLUSTER.url:
        return redis.RedisCluster.from_url(url)  # type: ignore[return-value]
    return redis.Redis.from_url(url)


def flushed(url: str) -> Iterator[redis.Redis]:
    """A Redis client whose logical database is flushed before and after (on a cluster: every master)."""
    claim(f"redis {url}")
    client = test_redis(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def schema() -> AllSettings:
    """A fresh test database, migrated once per session from sql/."""
    return fresh_schema(AllSettings.from_env(test_env()))


@pytest.fixture
def mysql(schema: AllSettings) -> Iterator[pymysql.connections.Connection]:
    yield from emptied(schema)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    yield from flushed(TEST_REDIS_URL)


@pytest.fixture
def make_consumer(
    mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> Iterator[Callable[..., ConsumerParts]]:
    """Build the real processor core (real Redis, real MariaDB) with a fixed clock."""
    made: list[ConsumerParts] = []

    def factory(now: datetime = NOW, **overrides: str) -> ConsumerParts:
        consumer = assemble_consumer(AllSettings.from_env(test_env(**overrides)), source="test",
                                     registry=CollectorRegistry(), clock=lambda: now)
        made.append(consumer)
        return consumer

    yield factory
    for consumer in made:
        consumer.close()


def envelope(person: Person, when: datetime, *, seed: int | None = None, error: str | None = None) -> dict[str, Any]:
    """An EventBridge event for one call, as the rule's Kinesis target writes it."""
    return bedrock_event(person, when, random.Random(seed), error)


def records(events: list[dict[str, Any]], shard: str = "shardId-000000000000", start: int = 1) -> list[InputRecord]:
    return [InputRecord(orjson.dumps(e), shard, str(start + i)) for i, e in enumerate(events)]


@pytest.fixture
def moto_iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """IAM in moto's in-process mock, with its fixed test credentials (no real ones are ever looked up)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")
