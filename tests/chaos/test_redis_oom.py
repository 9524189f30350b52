"""Redis at its memory limit under `maxmemory-policy noeviction` (issue 12): an outage, not a crash.

A private redis-server (the shared one is never reconfigured) with noeviction. The real KCL record processor,
fed by the daemon's protocol, takes batches of calls and invocation logs; mid-stream maxmemory is lowered to
what Redis holds, so the next batches fill it and Redis answers OOM. While it is full the batch is retried
(the dependency retry metric says redis_full, the log says Redis is full), nothing is checkpointed and the
process does not exit; once maxmemory is raised the same batch completes and every person's and team's
requests and cost, in Redis and in MySQL, are exactly those computed as the traffic was built, each crossing
decided once. The enforcer's loop, too, waits a full Redis out with the decision unacknowledged, then applies
it once.

Short form in `make test` (Redis full for 3 s); CHAOS_FULL=1 (`make chaos`): 15 s, more traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pymysql
import pytest
import redis
from prometheus_client import CollectorRegistry

from bedrock_usage import redis_errors
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from bedrock_usage.redis_state import RedisState
from consumer.assembly import assemble_consumer
from consumer.records import InputRecord
from devtools.settings import AllSettings
from devtools.simulate import Person
from enforcement.main import Loop
from enforcement.stream import GROUP
from tests.aws.conftest import SSO_ROLE, World, exceeded, pool_values
from tests.chaos import flow
from tests.chaos.conftest import ChaosScale
from tests.chaos.private_redis import PrivateRedis
from tests.conftest import DAY
from tests.conftest import test_env as env_for_tests  # aliased: pytest would collect a test_* name
from tests.integration.test_kcl_protocol import Conversation, call, sample

pytestmark = pytest.mark.chaos

PEOPLE = [Person(f"oom-{i}", sso=i % 2 == 1) for i in range(3)]


def test_redis_full_is_an_outage_retried_without_checkpoint_then_exact(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection, caplog: pytest.LogCaptureFixture,
    chaos_scale: ChaosScale, chaos_seed: int,
) -> None:
    settings = AllSettings.from_env(env_for_tests(REDIS_URL=private_redis.url))
    full_seconds = chaos_scale.pick(3.0, 15.0)
    traffic = flow.build(chaos_scale.pick(400, 2400), chaos_seed)
    flow.apply_quota_file(traffic, mysql, private_redis.client, settings.default_team)
    messages, batches = flow.kcl_messages(traffic, per_batch=chaos_scale.pick(40, 100))
    print(f"{flow.totals_line(traffic)}; {batches} batches, Redis full {full_seconds:.0f} s")

    caplog.set_level(logging.ERROR, logger="consumer.kcl")
    conversation = Conversation(settings, *messages)
    thread = threading.Thread(target=conversation.run, name="kcl-process", daemon=True)
    thread.start()

    def full_retries() -> float:
        return sample(conversation.metrics.dependency_retries, dependency="redis_full")

    try:
        # Mid-stream: a third of the batches checkpointed, then Redis may hold no more than it holds now.
        assert flow.wait_for(lambda: len(flow.checkpoints(conversation)) >= batches // 3, 60), \
            "no progress before the fault"
        private_redis.limit(private_redis.used_memory())
        flow.wait_for(lambda: full_retries() > 0 or not thread.is_alive(), 20)
        assert thread.is_alive(), "the record processor exited on a full Redis"
        assert full_retries() > 0, "Redis never filled up"
        time.sleep(0.5)  # a batch already durable when Redis filled up may still be acknowledged
        before, retries_before = flow.checkpoints(conversation), full_retries()
        time.sleep(full_seconds)
        during, retries_during = flow.checkpoints(conversation), full_retries()
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
    checkpoints = flow.checkpoints(conversation)
    assert checkpoints[-1] == str(len(traffic.records)) and len(checkpoints) >= batches
    print(f"Redis full: {retries_during:.0f} retries, {len(before)} of {batches} batches checkpointed before")
    flow.assert_exact(traffic, mysql, private_redis.client, settings.warning_thresholds)


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


def test_the_enforcer_waits_a_full_redis_out_then_applies_the_decision_once(
    private_redis: PrivateRedis, mysql: pymysql.connections.Connection, moto_iam: Any
) -> None:
    world = World(mysql, private_redis.client, moto_iam)
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

        flow.wait_for(lambda: full_errors() > 0 or not thread.is_alive(), 10)
        assert thread.is_alive(), "the enforcer's loop stopped on a full Redis"
        assert full_errors() > 0, "the enforcer never met the full Redis"
        time.sleep(1.0)
        assert thread.is_alive(), "the enforcer's loop stopped on a full Redis"
        assert full_errors() > 1, "not retried"
        assert int(private_redis.client.xpending(Keys("test").decisions, GROUP)["pending"]) == 1
        assert world.rows("SELECT COUNT(*) FROM enforcement_actions") == [(0,)]
        private_redis.limit(0)
        assert flow.wait_for(lambda: int(private_redis.client.xpending(Keys("test").decisions, GROUP)["pending"]) == 0,
                         20), "the decision was not applied once Redis had room"
    finally:
        loop.stop.set()
        thread.join(timeout=10)
        parts.close()
    assert pool_values(world.iam, parts)[0] == ["*:ana@example.com"]
    assert world.rows("SELECT COUNT(*) FROM enforcement_actions") == [(1,)]
    assert sample(parts.metrics.dependency_errors, dependency="redis") == 0
