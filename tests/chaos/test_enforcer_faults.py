"""IAM throttling on half the enforcer's calls, and the enforcer SIGKILLed mid-deny again and again (issue 12).

Exceeded decisions for N people (half IAM users, half Identity Center sessions, which take the session
policies' read-modify-write under the IAM lock) are published on the decision stream: one each for half of
them, and one team decision for the other half (expanded to its members, denied several at a time). The real `bedrockctl
enforcer run` takes them, against moto behind a `ThrottlingProxy` that answers a seeded random half of the
IAM calls with IAM's own Throttling error. At random moments mid-deny — a block row written but its deny
not yet recorded, or an audit row just committed but its decision not yet acknowledged — the enforcer is
SIGKILLed and started again, as ECS would: the new task has a new consumer name, claims what the dead one
left pending once idle (DECISION_CLAIM_IDLE_SECONDS), and its first reconciliation completes the denies
left half-way. At the end every person has exactly one deny in IAM, one block row (applied, under the
decision's action key), one audit row and one notification, and nothing is left pending in the stream.

Short form in `make test`: 20 people, 3 kills; CHAOS_FULL=1 (`make chaos`): 60 people, 10 kills.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest
import redis

from bedrock_usage.identity import IdentityType
from bedrock_usage.ids import digest
from bedrock_usage.keys import Keys
from bedrock_usage.periods import periods_of
from bedrock_usage.quota import Decision, Kind, Quota, Scope
from devtools.local_stack import Service, free_port
from devtools.moto_server import MotoServer
from enforcement.policies import NOBODY
from enforcement.stream import GROUP
from tests.aws_faults import ThrottlingProxy
from tests.chaos.conftest import ChaosScale
from tests.conftest import DAY, NOW
from tests.conftest import test_env as _env

ACCOUNT = "123456789012"  # moto's default account
SSO_ROLE = "AWSReservedSSO_BedrockUsers_0123456789abcdef"
SSO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}"
SSO_ROLE_ID = "AROAEXAMPLESSOROLE01"
LIMIT = 10  # DEFAULT_DAILY_REQUEST_LIMIT, and each decision's limit: the reconciler sees no raised limit
TEAM, TEAM_LIMIT = "chaos", 100  # DEFAULT_TEAM_DAILY_REQUEST_LIMIT, and the team decision's limit
PENDING_SQL = "SELECT COUNT(*) FROM blocks WHERE iam_state = 'pending'"
AUDIT_SQL = "SELECT COUNT(*) FROM enforcement_actions"


@pytest.fixture
def moto(tmp_path: Path) -> Any:
    server = MotoServer(log_path=tmp_path / "moto.log").start()
    yield server
    server.stop()


def _people(conn: pymysql.connections.Connection, iam: Any, count: int) -> list[tuple[str, str]]:
    """(quota key, IAM user name or session name): even ones IAM users, odd ones Identity Center sessions."""
    people = []
    with conn.cursor() as cur:
        for i in range(count):
            if i % 2 == 0:
                name = f"chaos-user-{i:03d}"
                iam.create_user(UserName=name)
                key = f"arn:aws:iam::{ACCOUNT}:user/{name}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, arn, account_id, team, email)"
                            " VALUES (%s, %s, %s, %s, 'chaos', %s)",
                            (key, IdentityType.IAM_USER.value, key, ACCOUNT, f"{name}@example.com"))
            else:
                name = f"chaos.person.{i:03d}@example.com"
                key = f"sso:{name}"
                cur.execute("INSERT INTO principals (quota_key, identity_type, account_id, team, email, role_arn,"
                            " role_id, session_name) VALUES (%s, %s, %s, 'chaos', %s, %s, %s, %s)",
                            (key, IdentityType.SSO_USER.value, ACCOUNT, name, SSO_ROLE_ARN, SSO_ROLE_ID, name))
            people.append((key, name))
    conn.commit()
    return people


def _decision(key: str) -> Decision:
    return Decision(Kind.EXCEEDED, Scope.USER, key, Quota.DAILY_REQUESTS, DAY, 100, LIMIT, LIMIT,
                    f"evt-chaos-{key}", NOW.isoformat(), key, TEAM)


def _team_decision(last_caller: str) -> Decision:
    return Decision(Kind.EXCEEDED, Scope.TEAM, TEAM, Quota.DAILY_REQUESTS, DAY, 100, TEAM_LIMIT, TEAM_LIMIT,
                    "evt-chaos-team", NOW.isoformat(), last_caller, TEAM)


def _count(conn: pymysql.connections.Connection, sql: str) -> int:
    with conn.cursor() as cur:
        cur.execute(sql)
        (value,) = cur.fetchone() or (0,)
    conn.commit()
    return int(value)


def _stream_settled(client: redis.Redis, stream: str) -> bool:
    for group in client.xinfo_groups(stream):
        if group["name"] in (GROUP, GROUP.encode()):
            return int(group["pending"]) == 0 and int(group.get("lag") or 0) == 0
    return False


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_for_kill_moment(conn: pymysql.connections.Connection, rng: random.Random, enforcer: Service,
                          log: Path, timeout: float = 120.0) -> str | None:
    """Wait for a moment mid-deny and return what it was; None if the enforcer finished everything first.
    Either a block row pending (written, its deny not yet recorded), or a new audit row (committed, its
    decision perhaps not yet acknowledged), after a random 0-30 ms."""
    moment = rng.choice(("pending block", "new audit row"))
    audits = _count(conn, AUDIT_SQL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert enforcer.process is not None and enforcer.process.poll() is None, (
            f"the enforcer exited by itself: {_tail(log)}")
        if (moment == "pending block" and _count(conn, PENDING_SQL)) or (
                moment == "new audit row" and _count(conn, AUDIT_SQL) > audits):
            time.sleep(rng.uniform(0, 0.03))
            return moment
        if _count(conn, "SELECT COUNT(*) FROM blocks WHERE iam_state = 'applied'") == _count(
                conn, "SELECT COUNT(*) FROM principals"):
            return None
        time.sleep(0.005)
    raise AssertionError(f"no {moment} within {timeout} s")


def _sessions_in_pools(iam: Any) -> Counter[str]:
    """How many times each `aws:userid` value appears across the session deny policies."""
    found: Counter[str] = Counter()
    for page in iam.get_paginator("list_policies").paginate(Scope="Local", PathPrefix="/bedrock-usage-control/"):
        for policy in page["Policies"]:
            if "Sessions" not in policy["PolicyName"]:
                continue
            document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])[
                "PolicyVersion"]["Document"]
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document["Statement"]:
                values = statement.get("Condition", {}).get("StringLike", {}).get("aws:userid", [])
                found.update([values] if isinstance(values, str) else values)
    return found


def test_iam_throttled_and_the_enforcer_killed_mid_deny_every_block_applied_and_recorded_once(
    chaos_scale: ChaosScale, chaos_seed: int, mysql: pymysql.connections.Connection, redis_client: redis.Redis,
    *, moto: MotoServer, tmp_path: Path,
) -> None:
    if periods_of(datetime.now(UTC), ZoneInfo("Europe/Madrid")).day_id != DAY:
        pytest.skip("the quota day changed since the session started: the decisions would be stale")
    count, kills = chaos_scale.pick((20, 3), (60, 10))
    rng = random.Random(chaos_seed)
    iam = moto.client("iam")  # straight to moto: the test's own reads are never throttled
    people = _people(mysql, iam, count)
    alone, members = [k for k, _ in people[: count // 2]], [k for k, _ in people[count // 2:]]
    redis_client.sadd(Keys("test").members(TEAM, DAY), *members)  # counted in the team today
    decisions = [_decision(key) for key in alone]
    team_decision = _team_decision(members[-1])
    decisions.insert(rng.randrange(len(decisions) + 1), team_decision)
    stream = Keys("test").decisions
    for decision in decisions:
        redis_client.xadd(stream, decision.to_fields())  # type: ignore[arg-type]

    started = time.monotonic()
    with ThrottlingProxy(moto.url, share=0.5, seed=chaos_seed) as proxy:
        env = {**_env(), **moto.env(), "AWS_ENDPOINT_URL": proxy.url, "LOG_LEVEL": "INFO",
               "DEFAULT_DAILY_REQUEST_LIMIT": str(LIMIT), "DEFAULT_TEAM_DAILY_REQUEST_LIMIT": str(TEAM_LIMIT),
               "ENFORCER_METRICS_PORT": str(free_port()),
               "DECISION_CLAIM_IDLE_SECONDS": "2", "IAM_LOCK_TIMEOUT_SECONDS": "5",
               "RECONCILE_INTERVAL_SECONDS": "5"}
        log = tmp_path / "enforcer.log"
        enforcer = Service(env, log, command=("enforcer", "run")).start()
        moments: list[str] = []
        try:
            while len(moments) < kills:
                moment = _wait_for_kill_moment(mysql, rng, enforcer, log)
                if moment is None:
                    break
                enforcer.kill()
                moments.append(moment)
                enforcer = Service(env, log, command=("enforcer", "run")).start()
            deadline = time.monotonic() + 300
            while not (_stream_settled(redis_client, stream) and _count(mysql, PENDING_SQL) == 0):
                assert time.monotonic() < deadline, f"the enforcer did not finish: {_tail(log)}"
                assert enforcer.process is not None and enforcer.process.poll() is None, (
                    f"enforcer exited: {_tail(log)}")
                time.sleep(0.2)
            assert enforcer.stop() == 0
        finally:
            enforcer.kill()
        seconds = time.monotonic() - started
        print(f"enforcer faults ({chaos_scale.name}): {count} people, {len(moments)} kills"
              f" ({Counter(moments)}), {proxy.figures}, {seconds:.1f} s")
        assert len(moments) == kills, f"only {len(moments)} kill moments came before everything was done"
        assert proxy.throttled > 0

    # IAM: every person denied, once.
    users = {u["UserName"] for page in iam.get_paginator("list_entities_for_policy").paginate(
        PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/BedrockUsageControlDeny",
        EntityFilter="User") for u in page["PolicyUsers"]}
    assert users == {name for i, (_, name) in enumerate(people) if i % 2 == 0}
    sessions = _sessions_in_pools(iam)
    sessions.pop(NOBODY, None)  # what an empty session policy names
    assert sessions == Counter({f"*:{name}": 1 for i, (_, name) in enumerate(people) if i % 2 == 1})

    # MySQL: one applied block per person under its decision's key, one audit row, one notification.
    def rows(sql: str) -> list[tuple[Any, ...]]:
        with mysql.cursor() as cur:
            cur.execute(sql)
            found = list(cur.fetchall())
        mysql.commit()
        return found

    keys = {key: digest("decision", _decision(key).decision_id, key) for key in alone}
    keys.update({key: digest("decision", team_decision.decision_id, key) for key in members})
    assert sorted(rows("SELECT principal, blocked, iam_state, action_key FROM blocks")) == sorted(
        (key, 1, "applied", action) for key, action in keys.items())
    audit = rows("SELECT principal, action, action_key FROM enforcement_actions")
    assert sorted(audit) == sorted((key, "block", action) for key, action in keys.items()), Counter(
        p for p, _, _ in audit).most_common(3)
    notes = rows("SELECT principal, kind FROM notifications")
    assert sorted(notes) == sorted([*((key, "blocked") for key in keys), (TEAM, "team_blocked")])
    assert _stream_settled(redis_client, stream)
