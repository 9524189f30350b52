"""The KCL record processor driven through amazon_kclpy's real protocol loop, as the MultiLangDaemon would.

The daemon's side of the conversation is scripted as JSON lines in a StringIO; what the processor answers
is compared line by line. The processor core runs for real (Redis + MariaDB from tests/conftest.py).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlparse

import orjson
import pymysql
import pytest
import redis
from amazon_kclpy import kcl
from prometheus_client import Counter

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from consumer.kcl_processor import PIPELINE_MIN_RECORDS, RecordProcessor
from consumer.metrics import ConsumerMetrics
from devtools.settings import AllSettings
from devtools.simulate import Person
from tests.conftest import DAY, MONTH, NOW, TEST_REDIS_URL, envelope
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.gates import Gate

SHARD = "shardId-000000000000"
ALICE = Person("alice", sso=False, account="956882123456")
BOB = Person("Bob@Example.com", sso=True)

INITIALIZE = {"action": "initialize", "shardId": SHARD, "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": 0}
SHUTDOWN_REQUESTED = {"action": "shutdownRequested"}
LEASE_LOST = {"action": "leaseLost"}
SHARD_ENDED = {"action": "shardEnded"}


def status(action: str) -> dict[str, Any]:
    return {"action": "status", "responseFor": action}


def checkpoint_request(sequence: str | None) -> dict[str, Any]:
    """What the processor writes to ask for a checkpoint."""
    return {"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": None}


def checkpoint_reply(sequence: str | None, error: str | None = None) -> dict[str, Any]:
    """The daemon's answer to a checkpoint request."""
    return {"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": 0, "error": error}


def record(data: bytes, sequence: str) -> dict[str, Any]:
    return {
        "action": "record",
        "data": base64.b64encode(data).decode(),
        "partitionKey": "k",
        "sequenceNumber": sequence,
        "subSequenceNumber": 0,
        "approximateArrivalTimestamp": int(time.time() * 1000),
    }


def process_records(*records: dict[str, Any]) -> dict[str, Any]:
    return {"action": "processRecords", "millisBehindLatest": 0, "records": list(records)}


def call(person: Person, seed: int) -> bytes:
    return orjson.dumps(envelope(person, NOW, seed=seed))


class Conversation:
    """One processor process: the daemon's messages in, the processor's answers out."""

    def __init__(self, settings: AllSettings, *messages: dict[str, Any]) -> None:
        self.processor = RecordProcessor(settings)
        self.output = io.StringIO()
        self.errors = io.StringIO()
        lines = "".join(json.dumps(m) + "\n" for m in messages)
        self._process = kcl.KCLProcess(
            self.processor, input_file=io.StringIO(lines), output_file=self.output, error_file=self.errors)

    def run(self) -> list[dict[str, Any]]:
        self._process.run()
        return self.answers()

    def answers(self) -> list[dict[str, Any]]:
        # kclpy writes "\n<json>\n" per message.
        return [json.loads(line) for line in self.output.getvalue().splitlines() if line.strip()]

    @property
    def metrics(self) -> ConsumerMetrics:
        parts = self.processor._parts  # assembled by initialize, with its own registry
        assert parts is not None
        return parts.metrics

    def close(self) -> None:
        """Release the processor's connections (what it does itself on leaseLost)."""
        self.processor.lease_lost(None)


def sample(counter: Counter, **labels: str) -> float:
    """A counter's value, read through its public collect()."""
    for family in counter.collect():
        for s in family.samples:
            if s.name.endswith("_total") and s.labels == labels:
                return float(s.value)
    return 0.0


def count(conn: pymysql.connections.Connection, sql: str, *args: object) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        value = cur.fetchone()[0]  # type: ignore[index]
    conn.commit()
    return int(value)


@pytest.fixture
def settings(mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> AllSettings:
    """AllSettings of a processor on the test database and Redis (both emptied for the test)."""
    return AllSettings.from_env(env_for_tests())


# -- the normal conversation ------------------------------------------------------------------------


def test_batch_is_processed_then_checkpointed_at_its_highest_sequence_number(
    settings: AllSettings, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(record(b"not json", "8"), record(call(ALICE, 1), "9"), record(call(BOB, 2), "10")),
        checkpoint_reply("10"),
        SHUTDOWN_REQUESTED,
        checkpoint_reply("10"),
    )

    answers = conversation.run()

    assert answers == [
        status("initialize"),
        checkpoint_request("10"),  # "10" > "9" as numbers, not as strings
        status("processRecords"),
        checkpoint_request("10"),  # the last processed record, at shutdown
        status("shutdownRequested"),
    ]
    assert conversation.errors.getvalue() == ""
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 2
    assert count(mysql, "SELECT COUNT(*) FROM principals WHERE quota_key IN (%s, %s)",
                 ALICE.quota_key, "sso:bob@example.com") == 2
    with mysql.cursor() as cur:
        cur.execute("SELECT source, shard_id, sequence_number, sub_index, reason, raw FROM dead_letters")
        letters = cur.fetchall()
    mysql.commit()
    assert letters == ((f"kinesis:{settings.stream_name}", SHARD, "8", 0, "not_json", b"not json"),)
    state = RedisState(redis_client, Keys("test"))
    assert state.usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 1}
    assert state.usage(Scope.USER, "sso:bob@example.com", MONTH) == {"req": 1}
    assert state.usage(Scope.TEAM, "unassigned", DAY) == {"req": 2}


def test_each_batch_is_checkpointed_in_turn(settings: AllSettings, mysql: pymysql.connections.Connection) -> None:
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(record(call(ALICE, 1), "1"), record(call(ALICE, 2), "2")),
        checkpoint_reply("2"),
        process_records(record(call(ALICE, 3), "3")),
        checkpoint_reply("3"),
    )

    answers = conversation.run()
    checkpoints = sample(conversation.metrics.checkpoints)
    conversation.close()

    assert answers == [
        status("initialize"),
        checkpoint_request("2"), status("processRecords"),
        checkpoint_request("3"), status("processRecords"),
    ]
    assert checkpoints == 2
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 3


def test_full_batches_are_pipelined_and_each_is_checkpointed_once_durable(
    settings: AllSettings, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    # A backlog: batches of PIPELINE_MIN_RECORDS or more. Batch 1's MySQL commit overlaps batch 2's
    # counting; batch 1 is checkpointed during the next call, batch 2 at shutdown.
    size = PIPELINE_MIN_RECORDS
    first = [record(call(ALICE, i), str(i)) for i in range(1, size + 1)]
    second = [record(call(BOB, i), str(i)) for i in range(size + 1, 2 * size + 1)]
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(*first),
        process_records(*second),
        checkpoint_reply(str(size)),
        SHUTDOWN_REQUESTED,
        checkpoint_reply(str(2 * size)),
    )

    answers = conversation.run()

    assert answers == [
        status("initialize"),
        status("processRecords"),  # counted, its commit in flight: not acknowledged yet
        checkpoint_request(str(size)), status("processRecords"),
        checkpoint_request(str(2 * size)), status("shutdownRequested"),
    ]
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 2 * size
    state = RedisState(redis_client, Keys("test"))
    assert state.usage(Scope.USER, ALICE.quota_key, DAY) == {"req": size}
    assert state.usage(Scope.USER, "sso:bob@example.com", DAY) == {"req": size}


def test_a_replayed_batch_is_checkpointed_again_without_new_rows(
    settings: AllSettings, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    batch = process_records(record(call(ALICE, 1), "21"), record(call(ALICE, 2), "22"))
    Conversation(settings, INITIALIZE, batch, checkpoint_reply("22"), LEASE_LOST).run()

    # Another worker takes the lease and gets the same records again (the checkpoint was lost).
    answers = Conversation(settings, INITIALIZE, batch, checkpoint_reply("22"), LEASE_LOST).run()

    assert answers == [status("initialize"), checkpoint_request("22"), status("processRecords"), status("leaseLost")]
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 2
    assert RedisState(redis_client, Keys("test")).usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 2}


def test_an_empty_batch_is_not_checkpointed(settings: AllSettings) -> None:
    answers = Conversation(settings, INITIALIZE, process_records(), SHUTDOWN_REQUESTED).run()

    # Nothing processed yet: nothing to checkpoint at shutdown either.
    assert answers == [status("initialize"), status("processRecords"), status("shutdownRequested")]


def test_lease_lost_answers_without_checkpointing(settings: AllSettings) -> None:
    conversation = Conversation(
        settings, INITIALIZE, process_records(record(call(ALICE, 1), "5")), checkpoint_reply("5"), LEASE_LOST)

    answers = conversation.run()

    assert answers == [status("initialize"), checkpoint_request("5"), status("processRecords"), status("leaseLost")]
    assert conversation.processor._parts is None  # connections released
    assert conversation.errors.getvalue() == ""


def test_shard_end_is_checkpointed_at_shard_end(settings: AllSettings) -> None:
    answers = Conversation(
        settings,
        INITIALIZE,
        process_records(record(call(ALICE, 1), "5")),
        checkpoint_reply("5"),
        SHARD_ENDED,
        checkpoint_reply(None),
    ).run()

    assert answers == [
        status("initialize"),
        checkpoint_request("5"), status("processRecords"),
        checkpoint_request(None), status("shardEnded"),
    ]


def test_a_throttled_checkpoint_is_retried(settings: AllSettings) -> None:
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(record(call(ALICE, 1), "7")),
        checkpoint_reply("7", error="ThrottlingException"),
        checkpoint_reply("7"),
    )

    answers = conversation.run()
    checkpoints = sample(conversation.metrics.checkpoints)
    conversation.close()

    assert answers == [status("initialize"), checkpoint_request("7"), checkpoint_request("7"),
                       status("processRecords")]
    assert checkpoints == 1


def test_a_refused_checkpoint_is_given_up(settings: AllSettings, mysql: pymysql.connections.Connection) -> None:
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(record(call(ALICE, 1), "7")),
        checkpoint_reply("7", error="ShutdownException"),
        LEASE_LOST,
    )

    answers = conversation.run()

    assert answers == [status("initialize"), checkpoint_request("7"), status("processRecords"),
                       status("leaseLost")]
    # The batch is durable all the same; a replay is idempotent.
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 1


def test_a_batch_that_crosses_a_threshold_is_checkpointed(
    mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    settings = AllSettings.from_env(env_for_tests(DEFAULT_DAILY_REQUEST_LIMIT="1"))
    conversation = Conversation(
        settings, INITIALIZE, process_records(record(call(ALICE, 1), "3")), checkpoint_reply("3"))

    answers = conversation.run()
    latency = {s.name: s.value for family in conversation.metrics.arrival_to_decision.collect()
               for s in family.samples if s.name.endswith(("_count", "_sum"))}
    conversation.close()

    assert answers == [status("initialize"), checkpoint_request("3"), status("processRecords")]
    assert conversation.errors.getvalue() == ""
    # A limit of 1: the first call crosses 60 %, 85 % and 100 % of the daily quota.
    assert count(mysql, "SELECT COUNT(*) FROM decisions") == 3
    assert redis_client.xlen(Keys("test").decisions) == 3
    # Kinesis arrival (epoch ms, from the record) → decision published: observed once per decision, and
    # seconds, not decades (a wrong unit or a naive datetime would show here).
    assert latency["bedrock_usage_arrival_to_decision_seconds_count"] == 3
    assert 0 <= latency["bedrock_usage_arrival_to_decision_seconds_sum"] < 3 * 30


# -- dependency outages: retry, never checkpoint, then recover --------------------------------------


@pytest.fixture
def redis_gate() -> Iterator[Gate]:
    target = urlparse(TEST_REDIS_URL)  # the tests' Redis, wherever it is
    gate = Gate((target.hostname or "127.0.0.1", target.port or 6379), up=False)
    yield gate
    gate.close()


def _wait_for(condition: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _start(conversation: Conversation) -> threading.Thread:
    # A daemon thread: if the processor never recovers, the test fails on its own timeout, not by hanging.
    thread = threading.Thread(target=conversation.run, name="kcl-process", daemon=True)
    thread.start()
    return thread


def _retries(conversation: Conversation, dependency: str) -> float:
    if conversation.processor._parts is None:
        return 0.0
    return sample(conversation.metrics.dependency_retries, dependency=dependency)


def test_while_redis_is_down_the_batch_is_retried_and_not_checkpointed(
    redis_gate: Gate, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    # Through the gate to the tests' own Redis database (the one `redis_client` reads).
    database = urlparse(TEST_REDIS_URL).path
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=f"redis://127.0.0.1:{redis_gate.port}{database}"))
    conversation = Conversation(
        settings,
        INITIALIZE,
        process_records(record(call(ALICE, 1), "9"), record(call(ALICE, 2), "10")),
        checkpoint_reply("10"),
        LEASE_LOST,
    )
    thread = _start(conversation)

    assert _wait_for(lambda: _retries(conversation, "redis") >= 2), "the batch was not retried on Redis errors"
    metrics = conversation.metrics
    # process_records has not returned: no checkpoint, no status, nothing written.
    assert conversation.answers() == [status("initialize")]
    assert thread.is_alive()
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 0
    assert sample(metrics.checkpoints) == 0

    redis_gate.up()
    thread.join(timeout=30)

    assert not thread.is_alive(), "the processor did not recover once Redis was back"
    assert conversation.answers() == [
        status("initialize"), checkpoint_request("10"), status("processRecords"), status("leaseLost")]
    assert conversation.errors.getvalue() == ""
    assert sample(metrics.checkpoints) == 1
    assert sample(metrics.dependency_retries, dependency="mysql") == 0
    assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 2
    assert RedisState(redis_client, Keys("test")).usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 2}


def test_while_mysql_is_down_initialize_waits(
    mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    params = AllSettings.from_env(env_for_tests()).mysql
    gate = Gate((params.host, params.port), up=False)
    try:
        url = (f"mysql://{quote(params.user, safe='')}:{quote(params.password, safe='')}"
               f"@127.0.0.1:{gate.port}/{params.database}")
        conversation = Conversation(
            AllSettings.from_env(env_for_tests(MYSQL_URL=url)),
            INITIALIZE,
            process_records(record(call(BOB, 1), "4")),
            checkpoint_reply("4"),
            LEASE_LOST,
        )
        thread = _start(conversation)

        assert _wait_for(lambda: _retries(conversation, "mysql") >= 2), "initialize did not retry on MySQL errors"
        # Limits are synced from MySQL before the first record is taken: not even initialize has answered.
        assert conversation.answers() == []
        assert thread.is_alive()

        gate.up()
        thread.join(timeout=30)

        assert not thread.is_alive(), "the processor did not recover once MySQL was back"
        assert conversation.answers() == [
            status("initialize"), checkpoint_request("4"), status("processRecords"), status("leaseLost")]
        assert count(mysql, "SELECT COUNT(*) FROM bedrock_calls") == 1
    finally:
        gate.close()
