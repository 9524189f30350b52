"""Decisions arrive through the Redis stream, are acked only once applied, and survive crashes and outages."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from botocore.stub import Stubber

from bedrock_usage.identity import IdentityType
from bedrock_usage.keys import Keys
from enforcement.iam import IamPolicies
from enforcement.main import Loop
from enforcement.policies import PolicyNames
from enforcement.stream import GROUP, DecisionStream
from enforcement.targets import Target, TargetKind
from tests.aws.conftest import ACCOUNT, World, attached_users, exceeded, user_arn

STREAM = Keys("test").decisions


def _publish(client: redis.Redis, *decisions: Any) -> None:
    for d in decisions:
        client.xadd(STREAM, d.to_fields())


def _pending(client: redis.Redis) -> int:
    return int(client.xpending(STREAM, GROUP)["pending"])


def test_the_loop_applies_acks_and_observes_latency(world: World) -> None:
    parts = world.parts()
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER)
    parts.stream.ensure_group()
    _publish(world.redis, exceeded(alice))
    loop = Loop(parts, parts.enforcer.settings)

    assert loop.once() == 1

    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"alice"}
    assert _pending(world.redis) == 0 and parts.stream.lag() == 0
    (histogram,) = parts.metrics.decision_to_deny.collect()
    assert {s.name: s.value for s in histogram.samples}["bedrock_usage_enforcer_decision_to_deny_seconds_count"] == 1
    assert loop.healthy()[0]


def test_an_unacked_decision_is_delivered_again_after_a_crash(world: World) -> None:
    parts = world.parts()
    bob = world.person(user_arn("bob"), IdentityType.IAM_USER)
    parts.stream.ensure_group()
    _publish(world.redis, exceeded(bob))
    (entry,) = parts.stream.read()  # delivered, then the process "dies" before applying or acking
    assert _pending(world.redis) == 1

    restarted = DecisionStream(world.redis, STREAM, parts.stream._consumer)  # same task restarted
    (again,) = restarted.read()
    assert again.entry_id == entry.entry_id

    other = DecisionStream(world.redis, STREAM, "another-task", claim_idle_ms=0)  # or another task claims it
    (claimed,) = other.read()
    assert claimed.entry_id == entry.entry_id
    parts.decisions.handle(claimed.decision(), claimed.published_at)
    other.ack([claimed.entry_id])
    assert _pending(world.redis) == 0
    assert world.rows("SELECT COUNT(*) FROM enforcement_actions") == [(1,)]


def test_a_mysql_outage_leaves_the_decision_unacked_until_it_is_back(world: World) -> None:
    parts = world.parts()
    carl = world.person(user_arn("carl"), IdentityType.IAM_USER)
    parts.stream.ensure_group()
    _publish(world.redis, exceeded(carl))
    loop = Loop(parts, parts.enforcer.settings)
    good = parts.session._params
    parts.session.reset()
    parts.session._params = type(good)(good.host, 1, good.user, good.password, good.database)  # nothing listens
    loop.stop.set()  # one failing iteration, no backoff sleep
    with pytest.raises(Exception):  # noqa: B017  (pymysql's OperationalError, seen by the run loop)
        loop.once()
    assert _pending(world.redis) == 1

    parts.session._params = good
    parts.session.reset()
    parts.stream.replay_pending()
    assert loop.once() == 1
    assert _pending(world.redis) == 0
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"carl"}


def test_a_malformed_entry_is_dead_lettered_and_acked(world: World) -> None:
    parts = world.parts()
    parts.stream.ensure_group()
    world.redis.xadd(STREAM, {"kind": "exceeded", "scope": "galaxy"})
    assert Loop(parts, parts.enforcer.settings).once() == 1
    assert world.rows("SELECT source, reason FROM dead_letters") == [("decision-stream", "malformed_decision")]
    assert _pending(world.redis) == 0


def test_iam_throttling_is_retried_with_backoff_then_succeeds(aws: None) -> None:
    import boto3  # noqa: PLC0415

    client = boto3.client("iam", region_name="us-east-1")
    sleeps: list[float] = []
    retried: list[str] = []
    policies = IamPolicies(client, ACCOUNT, PolicyNames("Deny", 1), sleep=sleeps.append, on_retry=retried.append)
    policies._ensured = True
    with Stubber(client) as stub:
        for code in ("Throttling", "ThrottlingException"):
            stub.add_client_error("attach_user_policy", service_error_code=code, http_status_code=400)
        stub.add_response("attach_user_policy", {})
        change = policies.apply(Target(TargetKind.USER, "alice"))
        stub.assert_no_pending_responses()
    assert change.changed
    assert retried == ["Throttling", "ThrottlingException"] and len(sleeps) == 2
    assert all(0 <= s <= 5 for s in sleeps)


def test_lasting_iam_errors_are_refusals_not_retried_and_aws_failures_are_retried_later(aws: None) -> None:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415

    from enforcement.iam import IamRefused  # noqa: PLC0415

    client = boto3.client("iam", region_name="us-east-1")
    retried: list[str] = []
    policies = IamPolicies(client, ACCOUNT, PolicyNames("Deny", 1), sleep=lambda s: None, on_retry=retried.append)
    policies._ensured = True
    with Stubber(client) as stub:
        # An SCP's AccessDenied fails the same way every time: refused at once (recorded, alerted, acked).
        stub.add_client_error("attach_user_policy", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(IamRefused) as refused:
            policies.apply(Target(TargetKind.USER, "alice"))
        # IAM's own failure: propagates, so the loop retries the decision later without acking it.
        stub.add_client_error("detach_user_policy", service_error_code="ServiceFailure", http_status_code=500)
        stub.add_client_error("detach_user_policy", service_error_code="InternalFailure", http_status_code=500)
        with pytest.raises(ClientError):
            policies.lift(Target(TargetKind.USER, "alice"))
    assert refused.value.refusal.reason == "iam_error" and "AccessDenied" in refused.value.refusal.detail
    assert retried == ["ServiceFailure"]


def test_metrics_and_health_are_served_and_health_turns_503_when_the_loop_stalls(world: World) -> None:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from bedrock_usage.http import registry_metrics, serve  # noqa: PLC0415
    from enforcement.metrics import EnforcerMetrics  # noqa: PLC0415

    parts = world.parts()
    loop = Loop(parts, parts.enforcer.settings)
    registry = CollectorRegistry()
    EnforcerMetrics(registry).denied.set(3)
    server = serve(0, loop.healthy, registry_metrics(registry), host="127.0.0.1")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        assert "bedrock_usage_enforcer_denied_people 3.0" in body
        assert urllib.request.urlopen(f"{base}/health", timeout=5).status == 200
        loop.heart.last_ok -= 3600
        loop.heart.failed(ConnectionError("redis down"))
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{base}/health", timeout=5)
        assert failed.value.code == 503 and b"redis down" in failed.value.read()
    finally:
        server.shutdown()


def test_entries_a_dead_consumer_left_are_claimed_later_not_only_at_start(world: World) -> None:
    parts = world.parts()
    dan = world.person(user_arn("dan"), IdentityType.IAM_USER)
    parts.stream.ensure_group()
    restarted = DecisionStream(world.redis, STREAM, "task-2", claim_idle_ms=300)
    assert restarted.read(block_ms=10) == []  # started before the other task died
    _publish(world.redis, exceeded(dan))
    dead = DecisionStream(world.redis, STREAM, "task-1")
    (taken,) = dead.read()  # task-1 takes it, then dies without acking
    time.sleep(0.4)
    found: list[Any] = []
    for _ in range(5):
        found += restarted.read(block_ms=50)
        if found:
            break
        time.sleep(0.2)
    assert [e.entry_id for e in found] == [taken.entry_id]


def test_a_lost_group_is_created_again(world: World) -> None:
    parts = world.parts()
    parts.stream.ensure_group()
    world.redis.delete(STREAM)
    assert parts.stream.read(block_ms=10) == []
    _publish(world.redis, exceeded(user_arn("eve")))
    assert len(parts.stream.read(block_ms=10)) == 1


def test_a_pool_read_right_after_our_write_never_goes_back_to_an_older_version(aws: None) -> None:
    import boto3  # noqa: PLC0415

    client = boto3.client("iam", region_name="us-east-1")
    names = PolicyNames("Deny", 1)
    policies = IamPolicies(client, ACCOUNT, names)
    arn = policies.pool_policy_arns[0]
    policies._written[arn] = (2, frozenset({"*:ana@example.com"}))  # we just wrote v2
    with Stubber(client) as stub:  # IAM, eventually consistent, still answers v1
        stub.add_response("get_policy", {"Policy": {"DefaultVersionId": "v1", "Arn": arn,
                                                    "PolicyName": "DenySessions1"}})
        assert policies._read_pool(arn) == {"*:ana@example.com"}
        stub.assert_no_pending_responses()  # and its v1 document was not even read
