"""Redis at its memory limit under `maxmemory-policy noeviction` (issue 12): an outage, not a crash.

A private redis-server (the shared one is never reconfigured) with noeviction. The real KCL record processor,
fed by the daemon's protocol, takes batches; mid-stream maxmemory is lowered to what Redis holds, so the
next batches fill it and Redis answers OOM. While it is full the batch is retried (the dependency retry
metric says redis_full, the log says Redis is full), nothing is checkpointed and the process does not exit;
once maxmemory is raised the same batch completes and every person's and team's requests, in Redis and in
MySQL, are exactly what was sent, each crossing decided once. The enforcer's loop, too, waits a full Redis
out with the decision unacknowledged, then applies it once.

Short form in `make test` (Redis full for ~3 s); CHAOS_FULL=1 (`make chaos`): longer, more traffic.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import redis
from moto import mock_aws
from prometheus_client import CollectorRegistry

from bedrock_usage import limits, redis_errors
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope, threshold_count
from bedrock_usage.quota_file import parse_quota_file
from bedrock_usage.redis_state import RedisState
from consumer.assembly import assemble_consumer
from consumer.records import InputRecord
from devtools.local_stack import free_port
from devtools.settings import AllSettings
from devtools.simulate import Person
from enforcement.main import Loop
from enforcement.stream import GROUP
from tests.aws.conftest import SSO_ROLE, World, exceeded, pool_values
from tests.conftest import DAY
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.integration.test_kcl_protocol import (
    INITIALIZE,
    SHUTDOWN_REQUESTED,
    Conversation,
    call,
    checkpoint_reply,
    process_records,
    record,
    sample,
)

pytestmark = pytest.mark.chaos

FULL = os.environ.get("CHAOS_FULL") == "1"
FULL_SECONDS = 15.0 if FULL else 3.0
BATCHES = 30 if FULL else 12
PER_BATCH = 100 if FULL else 40
SEED = int(os.environ.get("CHAOS_SEED", "1213"))

TEAMS = {"research": 120, "platform": 10_000}  # team daily limits: research's is crossed, platform's is not
PEOPLE = [Person(f"oom-{i}", sso=i % 2 == 1) for i in range(6)]
TEAM_OF = {p.quota_key: ("research" if i < 3 else "platform") for i, p in enumerate(PEOPLE)}
DAILY_LIMIT = 30


class PrivateRedis:
    """A redis-server of this test's own, so its memory limit can be changed (CONFIG SET) without touching
    the shared one. Like the stack's ElastiCache: noeviction, no persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def limit(self, max_bytes: int) -> None:
        """maxmemory (0: no limit), as an operator raising the node's memory would."""
        self.client.config_set("maxmemory", max_bytes)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.stop()


def _quota_file() -> str:
    teams = "".join(f"  {name}: {{daily_limit: {limit}}}\n" for name, limit in TEAMS.items())
    users = "".join(f'  "{p.quota_key}": {{team: {TEAM_OF[p.quota_key]}, daily_limit: {DAILY_LIMIT}}}\n'
                    for p in PEOPLE)
    return f"teams:\n{teams}users:\n{users}"


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _checkpoints(conversation: Conversation) -> list[str]:
    return [a["sequenceNumber"] for a in conversation.answers() if a.get("action") == "checkpoint"]


def test_redis_full_is_an_outage_retried_without_checkpoint_then_exact(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=private_redis.url))
    limits.apply(mysql, RedisState(private_redis.client, Keys("test")),
                 parse_quota_file(_quota_file(), default_team=settings.default_team))
    rng = random.Random(SEED)
    print(f"CHAOS_SEED={SEED}, {BATCHES} batches of {PER_BATCH}, Redis full {FULL_SECONDS:.0f} s")
    sent: Counter[str] = Counter()
    messages: list[dict[str, Any]] = [INITIALIZE]
    sequence = 0
    for _ in range(BATCHES):
        batch = []
        for _ in range(PER_BATCH):
            person = rng.choice(PEOPLE)
            sequence += 1
            sent[person.quota_key] += 1
            batch.append(record(call(person, seed=SEED * 1_000_000 + sequence), str(sequence)))
        messages += [process_records(*batch), checkpoint_reply(str(sequence))]
    messages += [SHUTDOWN_REQUESTED, checkpoint_reply(str(sequence))]

    caplog.set_level(logging.ERROR, logger="consumer.kcl")
    conversation = Conversation(settings, *messages)
    thread = threading.Thread(target=conversation.run, name="kcl-process", daemon=True)
    thread.start()

    def full_retries() -> float:
        return sample(conversation.metrics.dependency_retries, dependency="redis_full")

    try:
        # Mid-stream: a third of the batches checkpointed, then Redis may hold no more than it holds now.
        assert _wait_for(lambda: len(_checkpoints(conversation)) >= BATCHES // 3, 60), "no progress before the fault"
        private_redis.limit(private_redis.used_memory())
        _wait_for(lambda: full_retries() > 0 or not thread.is_alive(), 20)
        assert thread.is_alive(), "the record processor exited on a full Redis"
        assert full_retries() > 0, "Redis never filled up"
        time.sleep(0.5)  # a batch already durable when Redis filled up may still be acknowledged
        before, retries_before = _checkpoints(conversation), full_retries()
        time.sleep(FULL_SECONDS)
        during, retries_during = _checkpoints(conversation), full_retries()
        alive = thread.is_alive()
        outage_retries = sample(conversation.metrics.dependency_retries, dependency="redis")
        refused = private_redis.client.info("stats").get("total_error_replies", 0)
    finally:
        private_redis.limit(0)  # memory raised: the same batch goes through
    thread.join(timeout=60)

    assert alive, "the record processor stopped while Redis was full"
    assert during == before, f"checkpointed while Redis was full: {during[len(before):]}"
    assert retries_during > retries_before, "the batch was not retried while Redis was full"
    assert refused > 0
    assert any(r.getMessage() == redis_errors.FULL_MESSAGE for r in caplog.records), "no log line says Redis is full"
    assert outage_retries == 0  # told apart from Redis being unreachable
    assert not thread.is_alive(), "the processor did not recover once Redis had room"
    assert conversation.errors.getvalue() == ""
    checkpoints = _checkpoints(conversation)
    assert checkpoints[-1] == str(sequence) and len(checkpoints) >= BATCHES
    print(f"Redis full: {retries_during:.0f} retries, {len(before)} of {BATCHES} batches checkpointed before")

    # Exactly what was sent, per person and per team, in MySQL and in Redis: nothing lost, nothing doubled.
    with mysql.cursor() as cur:
        cur.execute("SELECT p.quota_key, COUNT(*) FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                    " GROUP BY p.quota_key")
        stored = {str(k): int(n) for k, n in cur.fetchall()}
        cur.execute("SELECT team, COUNT(*) FROM bedrock_calls GROUP BY team")
        stored_teams = {str(t): int(n) for t, n in cur.fetchall()}
        cur.execute("SELECT scope, subject, percent, COUNT(*) FROM decisions WHERE quota = 'daily_requests'"
                    " GROUP BY scope, subject, percent")
        decided = {(str(s), str(subject), int(p)): int(n) for s, subject, p, n in cur.fetchall()}
    mysql.commit()
    sent_teams: Counter[str] = Counter()
    for key, n in sent.items():
        sent_teams[TEAM_OF[key]] += n
    assert stored == dict(sent)
    assert stored_teams == dict(sent_teams)
    state = RedisState(private_redis.client, Keys("test"))
    assert {key: state.usage(Scope.USER, key, DAY).get("req", 0) for key in sent} == dict(sent)
    assert {team: state.usage(Scope.TEAM, team, DAY).get("req", 0) for team in sent_teams} == dict(sent_teams)

    expected = {}
    for scope, totals, limit_of in ((Scope.USER, sent, lambda _: DAILY_LIMIT), (Scope.TEAM, sent_teams, TEAMS.get)):
        for subject, n in totals.items():
            limit = limit_of(subject)
            assert limit is not None
            for percent in (*settings.warning_thresholds, 100):
                if n >= (limit if percent == 100 else threshold_count(limit, percent)):
                    expected[(scope.value, subject, percent)] = 1
    assert decided == expected


def test_a_full_redis_refuses_the_counting_scripts_before_they_write_anything(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection
) -> None:
    """The scripts carry no shebang flags: Redis checks the limit at a script's first write, and only while it
    has written nothing. A batch refused on a full Redis left no key changed, so its redo counts it once."""
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=private_redis.url))
    parts = assemble_consumer(settings, source="test", registry=CollectorRegistry())
    people = PEOPLE[:3]
    try:
        parts.processor.process([InputRecord(call(p, seed=i), "shard", str(i)) for i, p in enumerate(people)])
        parts.processor.drain()  # its hand-offs removed too: Redis holds still from here
        keys = sorted(private_redis.client.keys("*"))
        before = {k: private_redis.client.dump(k) for k in keys}
        private_redis.limit(1)
        batch = [InputRecord(call(p, seed=100 + i), "shard", str(100 + i)) for i, p in enumerate(people * 3)]
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            parts.processor.process(batch)
        assert sorted(private_redis.client.keys("*")) == keys
        assert {k: private_redis.client.dump(k) for k in keys} == before, "a refused batch changed Redis"
        private_redis.limit(0)
        parts.reset_connections()
        parts.processor.process(batch)
    finally:
        parts.close()
    state = RedisState(private_redis.client, Keys("test"))
    assert {p.quota_key: state.usage(Scope.USER, p.quota_key, DAY).get("req", 0) for p in people} == {
        p.quota_key: 4 for p in people}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3  # noqa: PLC0415  (inside the mock: no real credentials are ever looked up)

        yield boto3.client("iam", region_name="us-east-1")


def test_the_enforcer_waits_a_full_redis_out_then_applies_the_decision_once(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection, aws: Any
) -> None:
    world = World(mysql, private_redis.client, aws)
    parts = world.parts(REDIS_URL=private_redis.url)
    world.iam.create_role(RoleName=SSO_ROLE, Path="/aws-reserved/sso.amazonaws.com/eu-west-1/",
                          AssumeRolePolicyDocument="{}")
    ana = world.sso("ana@example.com")
    parts.stream.ensure_group()
    assert parts.iam is not None
    parts.iam.ensure_policies()
    private_redis.client.xadd(Keys("test").decisions, exceeded(ana).to_fields())  # type: ignore[arg-type]
    private_redis.limit(1)  # full: the deny's lock (SET NX) is refused

    loop = Loop(parts, parts.enforcer.settings)
    thread = threading.Thread(target=loop.run, name="enforcer", daemon=True)
    thread.start()
    try:
        def full_errors() -> float:
            return sample(parts.metrics.dependency_errors, dependency="redis_full")

        _wait_for(lambda: full_errors() > 0 or not thread.is_alive(), 10)
        assert thread.is_alive(), "the enforcer's loop stopped on a full Redis"
        assert full_errors() > 0, "the enforcer never met the full Redis"
        time.sleep(1.0)
        assert thread.is_alive(), "the enforcer's loop stopped on a full Redis"
        assert full_errors() > 1, "not retried"
        assert int(private_redis.client.xpending(Keys("test").decisions, GROUP)["pending"]) == 1
        assert world.rows("SELECT COUNT(*) FROM enforcement_actions") == [(0,)]
        private_redis.limit(0)
        assert _wait_for(lambda: int(private_redis.client.xpending(Keys("test").decisions, GROUP)["pending"]) == 0,
                         20), "the decision was not applied once Redis had room"
    finally:
        loop.stop.set()
        thread.join(timeout=10)
        parts.close()
    assert pool_values(world.iam, parts)[0] == ["*:ana@example.com"]
    assert world.rows("SELECT COUNT(*) FROM enforcement_actions") == [(1,)]
    assert sample(parts.metrics.dependency_errors, dependency="redis") == 0
