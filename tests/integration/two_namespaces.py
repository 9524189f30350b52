"""The two sides an audit compares, built as the replay engine builds them: the live database (the suite's
own, filled by the consumer's processor core and, for the audit trail, by the enforcer's own code on moto
IAM) and a replay namespace (a database of its own migrated from sql/, a Redis key prefix of its own)
filled by the same processor core from the same events."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis
from prometheus_client import CollectorRegistry

from audit.period import Period, parse_period
from bedrock_usage import limits
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Decision, Kind
from bedrock_usage.quota_file import load_quota_file
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts, assemble_consumer
from devtools.settings import AllSettings
from devtools.simulate import Person
from enforcement.assembly import EnforcerParts, assemble_enforcer
from tests.conftest import DAY, NOW, TEST_MYSQL_URL, emptied, envelope, fresh_schema, records, test_env

ACCOUNT = "123456789012"  # moto's default account
REPLAY_PREFIX = "replay"
# The replay's database: the suite's own name with a suffix, so that parallel suites never share it.
REPLAY_MYSQL_URL = os.environ.get("TEST_REPLAY_MYSQL_URL", TEST_MYSQL_URL + "_replay")


def person(name: str) -> Person:
    return Person(name, sso=False, account=ACCOUNT)


def calls(who: Person, times: list[datetime], *, seed: int) -> list[dict[str, Any]]:
    return [envelope(who, when, seed=seed * 1000 + i) for i, when in enumerate(times)]


@pytest.fixture(scope="session")
def replay_schema() -> AllSettings:
    return fresh_schema(AllSettings.from_env(test_env(MYSQL_URL=REPLAY_MYSQL_URL, REDIS_KEY_PREFIX=REPLAY_PREFIX)))


@pytest.fixture
def replay_mysql(replay_schema: AllSettings) -> Iterator[pymysql.connections.Connection]:
    yield from emptied(replay_schema)


@dataclass
class Stage:
    """The live side and the replay's, with the enforcer's clock in the test's hands."""

    live: pymysql.connections.Connection
    replay: pymysql.connections.Connection
    redis: redis.Redis
    iam: Any
    now: datetime = NOW
    made: list[Any] = field(default_factory=list)

    @property
    def period(self) -> Period:
        return parse_period(DAY, DAY, AllSettings.from_env(test_env()).quota_timezone)

    def consumer(self, *, replay: bool, **overrides: str) -> ConsumerParts:
        env = test_env(**overrides) if not replay else test_env(
            MYSQL_URL=REPLAY_MYSQL_URL, REDIS_KEY_PREFIX=REPLAY_PREFIX, **overrides)
        parts = assemble_consumer(AllSettings.from_env(env), source="test", registry=CollectorRegistry(),
                                  clock=lambda: NOW)
        self.made.append(parts)
        return parts

    def enforcer(self, **overrides: str) -> EnforcerParts:
        parts = assemble_enforcer(AllSettings.from_env(test_env(**overrides)), registry=CollectorRegistry(),
                                  account_id=ACCOUNT, clock=lambda: self.now)
        self.made.append(parts)
        return parts

    def iam_users(self, *people: Person) -> None:
        for who in people:
            self.iam.create_user(UserName=who.name)

    def quotas(self, path: Path, *, replay: bool) -> None:
        """A quota file applied to one side, as `limits apply` does."""
        conn, prefix = (self.replay, REPLAY_PREFIX) if replay else (self.live, "test")
        limits.apply(conn, RedisState(self.redis, Keys(prefix)), load_quota_file(path, default_team="unassigned"))

    def rows(self, conn: pymysql.connections.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            found = list(cur.fetchall())
        conn.commit()
        return found

    def close(self) -> None:
        for parts in self.made:
            parts.close()


@pytest.fixture(name="stage")
def stage_fixture(mysql: pymysql.connections.Connection, replay_mysql: pymysql.connections.Connection,
          redis_client: redis.Redis, moto_iam: Any) -> Iterator[Stage]:
    made = Stage(mysql, replay_mysql, redis_client, moto_iam)
    yield made
    made.close()


def exceeded(decisions: list[Decision], subject: str) -> Decision:
    (found,) = [d for d in decisions if d.kind is Kind.EXCEEDED and d.subject == subject]
    return found


def in_order(events: list[dict[str, Any]], start: int = 1) -> list[Any]:
    """Events as records in time order (as a person's calls reach their shard)."""
    return records(sorted(events, key=lambda e: str(e["detail"]["eventTime"])), start=start)


def hand_cost(logs: list[dict[str, Any]], price: dict[str, Decimal]) -> Decimal:
    """By hand: each log's tokens times the price per million, rounded half up to the nano-dollar per call
    (the simulated bodies write to the 5-minute cache only, and read none)."""
    nanos = 0
    for log in logs:
        exact = (log["input"]["inputTokenCount"] * price["input"] + log["output"]["outputTokenCount"] * price["output"]
                 + log["input"]["cacheWriteInputTokenCount"] * price["cache_write_5m"])
        nanos += int((exact * 1000).to_integral_value(ROUND_HALF_UP))
    return Decimal(nanos).scaleb(-9)
