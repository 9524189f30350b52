"""Invocation logs through the processor core on real Redis and MariaDB: each log charged once, joined
with its call in either order, priced from the table (fallback for a model without a price, 0 for
provisioned throughput), and its team following the person's."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pymysql
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Quota, Scope
from bedrock_usage.redis_state import RedisState
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import Person, invocation_log, subscription_payload
from tests.conftest import DAY, NOW, envelope, load_event, records

ALICE = Person("alice", sso=False, account="956882123456")
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def _one(conn: pymysql.connections.Connection, sql: str, *args: object) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


def _calls_and_logs(count: int, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    calls = [envelope(ALICE, NOW - timedelta(minutes=i), seed=seed * 1000 + i) for i in range(count)]
    for call in calls:
        call["detail"]["requestParameters"]["modelId"] = MODEL
    return calls, [invocation_log(call, rng) for call in calls]


def _expected_nanos(conn: pymysql.connections.Connection, logs: list[dict[str, Any]]) -> int:
    """Priced here from the table's numbers, independently of the consumer's arithmetic."""
    with conn.cursor() as cur:
        cur.execute("SELECT input, output, cache_write_5m FROM prices WHERE model = %s AND region = '*'"
                    " AND scope = 'regional' AND tier = 'standard' ORDER BY effective_from DESC LIMIT 1", (MODEL,))
        price_in, price_out, price_write = cur.fetchone()  # type: ignore[misc]
    conn.commit()
    total = 0
    for log in logs:
        exact = (log["input"]["inputTokenCount"] * price_in + log["output"]["outputTokenCount"] * price_out
                 + log["input"]["cacheWriteInputTokenCount"] * price_write)
        total += int((Decimal(exact) * 1000).to_integral_value(ROUND_HALF_UP))
    return total


def _payload_records(logs: list[dict[str, Any]], start: int = 500) -> list[InputRecord]:
    return [InputRecord(subscription_payload(logs[i:i + 5]), "shardId-000000000000", str(start + i))
            for i in range(0, len(logs), 5)]


def test_logs_are_charged_once_and_joined_with_their_calls_in_either_order(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer()
    calls, logs = _calls_and_logs(20)
    # Logs of the first ten before their calls; the calls; the other logs, and all the logs again.
    consumer.processor.process(_payload_records(logs[:10]))
    result = consumer.processor.process(records(calls))
    assert result.new == 20
    again = consumer.processor.process(_payload_records(logs[10:]) + _payload_records(logs, start=900))
    assert (again.invocation_logs, again.logs_new) == (30, 10)

    nanos = _expected_nanos(mysql, logs)
    state = RedisState(redis_client, Keys("test"))
    usage = state.usage(Scope.USER, ALICE.quota_key, DAY)
    assert (usage["req"], usage["logs"], usage["cost"]) == (20, 20, nanos)
    assert usage["in"] == sum(log["input"]["inputTokenCount"] for log in logs)
    assert usage["out"] == sum(log["output"]["outputTokenCount"] for log in logs)
    assert state.usage(Scope.TEAM, "unassigned", DAY)["cost"] == nanos
    assert _one(mysql, "SELECT COUNT(*) FROM invocation_logs") == 20
    assert _one(mysql, "SELECT ROUND(SUM(cost_usd) * 1000000000) FROM invocation_logs") == nanos
    # Every call's row holds its log's tokens and cost.
    assert _one(mysql, "SELECT COUNT(*) FROM bedrock_calls c JOIN invocation_logs l ON l.request_id = c.request_id"
                       " WHERE c.input_tokens = l.input_tokens AND c.cost_usd = l.cost_usd") == 20
    assert _one(mysql, "SELECT COUNT(*) FROM invocation_logs WHERE price_status = 'priced'") == 20
    # The cache writes' 5-minute/1-hour split read from the bodies wherever there were writes.
    writes = sum(1 for log in logs if log["input"]["cacheWriteInputTokenCount"])
    assert writes and _one(mysql, "SELECT COUNT(*) FROM invocation_logs WHERE cache_split = 'body'") == writes


def test_a_cost_quota_is_crossed_once_by_a_log(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection
) -> None:
    _, logs = _calls_and_logs(30, seed=2)
    limit = Decimal(_expected_nanos(mysql, logs)) / 2 / 10**9  # half of what Alice spends
    consumer = make_consumer(DEFAULT_DAILY_COST_LIMIT_USD=f"{limit:.4f}")
    decided = consumer.processor.process(_payload_records(logs)).decisions
    assert sorted((d.quota, d.percent) for d in decided) == [(Quota.DAILY_COST, 60), (Quota.DAILY_COST, 85),
                                                             (Quota.DAILY_COST, 100)]
    exceeded = next(d for d in decided if d.percent == 100)
    assert exceeded.usage >= exceeded.limit and exceeded.event_id in {log["requestId"] for log in logs}
    assert consumer.processor.process(_payload_records(logs, start=900)).decisions == []
    assert _one(mysql, "SELECT COUNT(*) FROM decisions WHERE quota = 'daily_cost'") == 3
    assert _one(mysql, "SELECT usage_count FROM decisions WHERE quota = 'daily_cost' AND percent = 100") == \
        exceeded.usage


def test_a_model_without_a_price_is_charged_at_the_fallback_and_listed(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer()
    log = load_event("invocation-log-unpriced-model.json")
    log["timestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    result = consumer.processor.process([InputRecord(orjson.dumps(log), "shardId-000000000000", "1")])
    assert result.logs_new == 1
    status, cost, fallback = (_one(mysql, f"SELECT {column} FROM invocation_logs") for column in
                              ("price_status", "cost_usd", "price_model_ref"))
    assert status == "fallback" and cost > 0 and fallback is not None
    assert _one(mysql, "SELECT calls FROM unpriced_models WHERE model = %s", log["modelId"]) == 1
    assert _one(mysql, "SELECT fallback_model FROM unpriced_models") is not None
    assert consumer.metrics.unpriced_calls.labels(log["modelId"])._value.get() == 1


def test_provisioned_throughput_is_counted_at_cost_zero(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    consumer = make_consumer()
    log = load_event("invocation-log-provisioned.json")
    log["timestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    consumer.processor.process([InputRecord(orjson.dumps(log), "shardId-000000000000", "1")])
    assert _one(mysql, "SELECT price_status FROM invocation_logs") == "provisioned"
    assert _one(mysql, "SELECT cost_usd FROM invocation_logs") == 0
    usage = RedisState(redis_client, Keys("test")).usage(Scope.USER, "arn:aws:iam::111122223333:user/bob", DAY)
    assert (usage["logs"], usage.get("cost", 0), usage["in"]) == (1, 0, 900)


def test_a_logged_role_is_charged_to_the_key_its_calls_have(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    """A role with a path, first met in CloudTrail by another process: the log's path-less ARN is matched."""
    trail = load_event("eventbridge-invokemodel-iamuser.json")
    trail["detail"]["eventTime"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    trail["detail"]["userIdentity"] = {
        "type": "AssumedRole", "principalId": "AROAEXAMPLEID:s1", "accountId": "111122223333",
        "arn": "arn:aws:sts::111122223333:assumed-role/ci-runner/s1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                             "arn": "arn:aws:iam::111122223333:role/build/ci-runner"}}}
    make_consumer().processor.process(records([trail]))
    log = load_event("invocation-log-no-body.json")
    log["timestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    make_consumer().processor.process([InputRecord(orjson.dumps(log), "shardId-000000000000", "1")])
    assert _one(mysql, "SELECT COUNT(*) FROM principals") == 1
    usage = RedisState(redis_client, Keys("test")).usage(
        Scope.USER, "arn:aws:iam::111122223333:role/build/ci-runner", DAY)
    assert (usage["req"], usage["logs"]) == (1, 1)


def test_a_logs_role_key_is_decided_once_so_a_replay_never_charges_it_twice(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    """Logged before any CloudTrail call of its role: the path-less key is decided and kept. The role's
    call (with its path) comes later; replaying the log then must meet the seen set it was counted in."""
    log = load_event("invocation-log-no-body.json")
    log["timestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    record = InputRecord(orjson.dumps(log), "shardId-000000000000", "1")
    make_consumer().processor.process([record])
    trail = load_event("eventbridge-invokemodel-iamuser.json")
    trail["detail"]["eventTime"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    trail["detail"]["userIdentity"] = {
        "type": "AssumedRole", "principalId": "AROAEXAMPLEID:s1", "accountId": "111122223333",
        "arn": "arn:aws:sts::111122223333:assumed-role/ci-runner/s1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                             "arn": "arn:aws:iam::111122223333:role/build/ci-runner"}}}
    replay = make_consumer().processor.process([*records([trail]), record])
    assert (replay.logs_new, replay.new) == (0, 1)
    state = RedisState(redis_client, Keys("test"))
    assert state.usage(Scope.USER, "arn:aws:iam::111122223333:role/ci-runner", DAY)["logs"] == 1
    assert "logs" not in state.usage(Scope.USER, "arn:aws:iam::111122223333:role/build/ci-runner", DAY)
    assert _one(mysql, "SELECT quota_key FROM role_keys") == "arn:aws:iam::111122223333:role/ci-runner"


def test_a_call_and_its_log_in_one_batch_and_again_after_the_call_alone(
    make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection
) -> None:
    """A call whose log is in the same batch is written with its tokens at once; a call already there
    without them (written before, its log unknown then) still takes them when it comes again with its log."""
    consumer = make_consumer()
    calls, logs = _calls_and_logs(10, seed=3)
    consumer.processor.process(records(calls[:5]) + _payload_records(logs[:5]))
    consumer.processor.process(records(calls[5:]))  # these calls' logs are not known yet
    assert _one(mysql, "SELECT COUNT(*) FROM bedrock_calls WHERE input_tokens IS NULL") == 5
    # A redo of those calls, their logs with them (one of the first five too): all rows hold their log's figures.
    consumer.processor.process(records(calls[4:]) + _payload_records(logs[4:], start=900))
    assert _one(mysql, "SELECT COUNT(*) FROM bedrock_calls c JOIN invocation_logs l ON l.request_id = c.request_id"
                       " WHERE c.input_tokens = l.input_tokens AND c.output_tokens = l.output_tokens"
                       " AND c.cache_read_tokens = l.cache_read_tokens"
                       " AND c.cache_write_5m_tokens = l.cache_write_5m_tokens"
                       " AND c.cache_write_1h_tokens = l.cache_write_1h_tokens AND c.cost_usd = l.cost_usd") == 10
