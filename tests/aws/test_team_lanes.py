"""A team decision's members denied several at a time (ENFORCER_IAM_CONCURRENCY), still exactly once each.

IAM is moto served over HTTP behind a ThrottlingProxy (tests/aws_faults.py), which throttles a seeded
share of the calls and tells how many IAM calls were in flight at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
import redis
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from bedrock_usage.identity import IdentityType
from bedrock_usage.ids import digest
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Decision, Scope
from devtools.moto_server import MotoServer
from devtools.settings import AllSettings
from enforcement.assembly import EnforcerParts, assemble_enforcer
from enforcement.model import Outcome, Result
from tests.aws.conftest import ACCOUNT, SSO_ROLE_ARN, SSO_ROLE_ID, exceeded
from tests.aws_faults import ThrottlingProxy
from tests.conftest import DAY
from tests.conftest import test_env as _env

TEAM = "lanes"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrottlingProxy]:
    moto.client("iam")  # (moto's state is per server: each test names its own people)
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    with ThrottlingProxy(moto.url, share=0.3, seed=12) as running:
        yield running


def _team(conn: pymysql.connections.Connection, client: redis.Redis, iam: Any, prefix: str, count: int,
          *, sessions: bool = True) -> list[str]:
    """`count` people counted in the team today: IAM users, and every other one a session if `sessions`."""
    keys = []
    with conn.cursor() as cur:
        for i in range(count):
            if sessions and i % 2:
                session = f"{prefix}.{i:03d}@example.com"
                key = f"sso:{session}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, account_id, team, role_arn, role_id,"
                            " session_name) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (key, IdentityType.SSO_USER.value, ACCOUNT, TEAM, SSO_ROLE_ARN, SSO_ROLE_ID, session))
            else:
                name = f"{prefix}-{i:03d}"
                iam.create_user(UserName=name)
                key = f"arn:aws:iam::{ACCOUNT}:user/{name}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, arn, account_id, team)"
                            " VALUES (%s, %s, %s, %s, %s)", (key, IdentityType.IAM_USER.value, key, ACCOUNT, TEAM))
            keys.append(key)
    conn.commit()
    client.sadd(Keys("test").members(TEAM, DAY), *keys)
    return keys


def _parts(proxy: ThrottlingProxy, **overrides: str) -> EnforcerParts:
    settings = AllSettings.from_env(_env(AWS_ENDPOINT_URL=proxy.url, **overrides))
    return assemble_enforcer(settings, registry=CollectorRegistry(), account_id=ACCOUNT)


def _handled(parts: EnforcerParts, decision: Decision, deliveries: int = 4) -> list[Result]:
    """Handle the decision as the stream delivers it: again after a failure (a deny whose IAM calls stayed
    throttled past the adapter's retries raises, and the unacknowledged decision comes back). The second
    delivery must finish the members the first did not, and record nothing twice (checked by the callers)."""
    for delivery in range(1, deliveries + 1):
        try:
            return parts.decisions.handle(decision)
        except ClientError:
            if delivery == deliveries:
                raise
    raise AssertionError("unreachable")


def _rows(conn: pymysql.connections.Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        found = list(cur.fetchall())
    conn.commit()
    return found


def test_a_team_of_100_is_denied_several_at_a_time_each_once_with_iam_throttled(
    proxy: ThrottlingProxy, moto: MotoServer, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    iam = moto.client("iam")
    members = _team(mysql, redis_client, iam, "hundred", 100)
    parts = _parts(proxy, ENFORCER_IAM_CONCURRENCY="8", MAX_QUOTA_DENIES_PER_HOUR="0")
    decision = exceeded(TEAM, scope=Scope.TEAM, usage=500, limit=500, team=TEAM)
    try:
        results = _handled(parts, decision)
        parts.decisions.handle(decision)  # re-delivered: nothing more
    finally:
        parts.close()

    assert sorted(r.principal for r in results) == sorted(members)
    # Applied now, or already by an earlier delivery (unchanged): each audited once either way (below).
    assert {r.outcome for r in results} <= {Outcome.APPLIED, Outcome.UNCHANGED}
    assert proxy.throttled > 0 and proxy.most_in_flight > 1, (proxy.figures, proxy.most_in_flight)
    attached = {u["UserName"] for page in iam.get_paginator("list_entities_for_policy").paginate(
        PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/BedrockUsageControlDeny",
        EntityFilter="User") for u in page["PolicyUsers"]}
    assert attached == {f"hundred-{i:03d}" for i in range(0, 100, 2)}
    sessions = "".join(
        str(iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"])["PolicyVersion"]["Document"])
        for p in iam.list_policies(Scope="Local")["Policies"] if "Sessions" in p["PolicyName"])
    assert all(sessions.count(f"*:hundred.{i:03d}@example.com") == 1 for i in range(1, 100, 2))
    keys = {key: digest("decision", decision.decision_id, key) for key in members}
    assert sorted(_rows(mysql, "SELECT principal, action_key FROM enforcement_actions")) == sorted(keys.items())
    assert sorted(_rows(mysql, "SELECT principal, iam_state FROM blocks")) == [(k, "applied") for k in sorted(keys)]
    notes = _rows(mysql, "SELECT principal, kind FROM notifications")
    assert sorted(notes) == sorted([*((k, "blocked") for k in keys), (TEAM, "team_blocked")])


def test_the_breaker_holds_its_cap_exactly_however_many_lanes_deny_at_once(
    proxy: ThrottlingProxy, moto: MotoServer, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    """Eight lanes that each read the hour's count before any of them recorded would deny past the cap."""
    members = _team(mysql, redis_client, moto.client("iam"), "capped", 40, sessions=False)
    parts = _parts(proxy, ENFORCER_IAM_CONCURRENCY="8", MAX_QUOTA_DENIES_PER_HOUR="25")
    try:
        results = parts.decisions.handle(exceeded(TEAM, scope=Scope.TEAM, usage=500, limit=500, team=TEAM))
    finally:
        parts.close()

    assert len(results) == len(members)
    assert sum(r.outcome is Outcome.APPLIED for r in results) == 25
    assert sum(r.outcome is Outcome.REFUSED for r in results) == 15
    assert _rows(mysql, "SELECT COUNT(*) FROM blocks WHERE iam_state = 'applied'") == [(25,)]
