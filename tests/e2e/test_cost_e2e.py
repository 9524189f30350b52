"""What it costs, end to end: CloudTrail events and invocation logs (as CloudWatch Logs subscription
payloads, in either order, some twice) through the real KCL daemon. Every person's cost must equal the sum
priced independently from the price table, each call's row must hold its log's tokens, and a cost quota's
crossings must be decided exactly once."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pymysql
import pytest
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from devtools.simulate import Person, bedrock_event, deliver, invocation_log, subscription_payload
from producer_config.rule import partition_key
from tests.conftest import DAY, NOW
from tests.e2e.conftest import Stack, rows, scalar, wait_until

pytestmark = pytest.mark.e2e

KEYS = Keys("test")
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CROWD = [Person("cost-alice", sso=False), Person("cost-bob", sso=False), Person("cost-carol@example.com", sso=True)]


def _price(mysql: pymysql.connections.Connection) -> dict[str, Decimal]:
    """The regional, standard price of MODEL in force, read straight from the table the consumer loads."""
    (row,) = rows(mysql, "SELECT input, output, cache_read, cache_write_5m, cache_write_1h FROM prices"
                         " WHERE model = %s AND region = '*' AND scope = 'regional' AND tier = 'standard'"
                         " ORDER BY effective_from DESC LIMIT 1", MODEL)
    return dict(zip(("input", "output", "cache_read", "cache_write_5m", "cache_write_1h"), row, strict=True))


def _nanos(log: dict[str, Any], price: dict[str, Decimal]) -> int:
    usage = log["input"]["inputTokenCount"] * price["input"] + log["output"]["outputTokenCount"] * price["output"]
    usage += log["input"]["cacheWriteInputTokenCount"] * price["cache_write_5m"]  # the simulator's are 5-minute
    return int((usage * 1000).to_integral_value(ROUND_HALF_UP))  # $/M x tokens x 10^9 / 10^6


def _put_logs(stack: Stack, logs: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    # Bedrock's log group is subscribed with a random partition key; here: the call's, grouped by ten.
    for i in range(0, len(logs), 10):
        stack.kinesis.put_record(StreamName=stack.stream, Data=subscription_payload(logs[i:i + 10]),
                                 PartitionKey=partition_key(calls[i]))


def test_cost_is_metered_from_the_logs_and_a_cost_quota_decided_once(
    stack: Stack, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    price = _price(mysql)
    rng = random.Random(10)
    start = NOW - timedelta(minutes=15)
    calls = [bedrock_event(CROWD[i % 3], start + timedelta(seconds=i), rng) for i in range(300)]
    for call in calls:
        call["detail"]["requestParameters"]["modelId"] = MODEL
    logs = [invocation_log(call, rng, input_tokens=rng.randrange(1000, 20000), output_tokens=rng.randrange(100, 2000))
            for call in calls]
    expected: dict[str, int] = defaultdict(int)
    for call, log in zip(calls, logs, strict=True):
        expected["sso:" + call["detail"]["userIdentity"]["arn"].rsplit("/", 1)[1]
                 if call["detail"]["userIdentity"]["type"] == "AssumedRole"
                 else call["detail"]["userIdentity"]["arn"]] += _nanos(log, price)
    # Half of the logs before their calls, half after; a tenth delivered twice.
    _put_logs(stack, logs[:150], calls[:150])
    assert deliver(stack.kinesis, stack.stream, calls) == 300
    _put_logs(stack, logs[150:], calls[150:])
    _put_logs(stack, logs[::10], calls[::10])

    # A daily cost quota of a third of what Alice spends: warnings and the block fall inside the run.
    limit = Decimal(expected[CROWD[0].quota_key]) / 3 / 10**9
    consumer = stack.start(stack.application("cost"), DEFAULT_DAILY_COST_LIMIT_USD=f"{limit:.2f}",
                           DEFAULT_DAILY_REQUEST_LIMIT="", DEFAULT_MONTHLY_REQUEST_LIMIT="")
    wait_until(lambda: scalar(mysql, "SELECT COUNT(*) FROM bedrock_calls WHERE input_tokens IS NOT NULL"),
               lambda n: n >= 300, timeout=180, what="300 calls joined with their logs", alive=[consumer])
    wait_until(lambda: consumer.metric("bedrock_usage_invocation_logs_total", outcome="duplicate"),
               lambda n: n >= 30, timeout=60, what="the duplicate logs read", alive=[consumer])

    state = RedisState(redis_client, KEYS)
    for key, nanos in expected.items():
        assert state.usage(Scope.USER, key, DAY)["cost"] == nanos, key
        assert scalar(mysql, "SELECT ROUND(SUM(l.cost_usd) * 1000000000) FROM invocation_logs l"
                             " JOIN principals p ON p.id = l.principal_id WHERE p.quota_key = %s", key) == nanos
    assert scalar(mysql, "SELECT COUNT(*) FROM invocation_logs") == 300
    assert state.usage(Scope.TEAM, "unassigned", DAY)["cost"] == sum(expected.values())
    decided = rows(mysql, "SELECT subject, quota, percent, COUNT(*) FROM decisions GROUP BY subject, quota, percent")
    # Each spends about as much as Alice, three times the quota: every threshold once, for each.
    assert {(str(s), str(q), int(p), int(n)) for s, q, p, n in decided} == {
        (key, "daily_cost", p, 1) for key in expected for p in (60, 85, 100)}
    assert consumer.stop() == 0
