"""The reconciler repairs drift both ways and catches what decisions missed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bedrock_usage.identity import IdentityType
from bedrock_usage.ids import digest
from bedrock_usage.keys import Keys
from bedrock_usage.quota import Scope
from enforcement import policies
from enforcement.model import Outcome
from tests.aws.conftest import World, attached_users, exceeded, pool_values, user_arn
from tests.conftest import DAY, MONTH


def _usage(world: World, key: str, today: int, month: int | None = None, scope: Scope = Scope.USER) -> None:
    keys = Keys("test")
    world.redis.hset(keys.counter(scope, key, DAY), "req", today)
    world.redis.hset(keys.counter(scope, key, MONTH), "req", month if month is not None else today)


def _drift(parts: Any, kind: str) -> float:
    return float(parts.metrics.drift.labels(kind)._value.get())


def test_a_deny_removed_by_hand_is_put_back(world: World) -> None:
    parts = world.parts()
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER)
    parts.decisions.handle(exceeded(alice))
    assert parts.iam is not None
    world.iam.detach_user_policy(UserName="alice", PolicyArn=parts.iam.user_policy_arn)

    report = parts.reconciler.run_once()

    assert report.missing == 1 and _drift(parts, "missing") == 1
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"alice"}
    assert world.rows("SELECT actor, action, outcome, reason FROM enforcement_actions ORDER BY id")[-1] == (
        "reconciler", "block", "applied", "drift: the deny was missing from IAM")
    assert parts.reconciler.run_once().drift == 0  # fixed stays fixed


def test_a_deny_added_by_hand_is_lifted(world: World) -> None:
    parts = world.parts()
    world.person(user_arn("bob"), IdentityType.IAM_USER)
    world.sso("carla@example.com")
    assert parts.iam is not None
    parts.iam.ensure_policies()
    world.iam.attach_user_policy(UserName="bob", PolicyArn=parts.iam.user_policy_arn)
    pool = parts.iam.pool_policy_arns[0]
    world.iam.create_policy_version(PolicyArn=pool, SetAsDefault=True, PolicyDocument=policies.compact(
        policies.session_document(["*:carla@example.com"])))

    report = parts.reconciler.run_once()

    assert report.unexpected == 2 and _drift(parts, "unexpected") == 2
    assert attached_users(world.iam, parts.iam.user_policy_arn) == set()
    assert pool_values(world.iam, parts)[0] == [policies.NOBODY]
    assert {r[0] for r in world.rows("SELECT principal FROM enforcement_actions WHERE actor = 'reconciler'")} == {
        "user:bob", "session:*:carla@example.com"}


def test_someone_over_quota_without_a_block_is_blocked(world: World) -> None:
    parts = world.parts()  # daily limit 10
    dora = world.person(user_arn("dora"), IdentityType.IAM_USER, email="dora@example.com")
    world.person(user_arn("eve"), IdentityType.IAM_USER)
    _usage(world, dora, 12)
    _usage(world, user_arn("eve"), 3)

    report = parts.reconciler.run_once()

    assert report.missed == 1 and _drift(parts, "missed") == 1
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"dora"}
    assert world.rows("SELECT kind, email FROM notifications") == [("blocked", "dora@example.com")]
    assert parts.reconciler.run_once().missed == 0


def test_the_people_counted_in_a_team_over_its_quota_are_blocked(world: World) -> None:
    parts = world.parts(DEFAULT_TEAM_DAILY_REQUEST_LIMIT="20")
    for name in ("f1", "f2"):
        world.person(user_arn(name), IdentityType.IAM_USER, team="ml")
        _usage(world, user_arn(name), 5)
        world.counted("ml", user_arn(name))
    world.person(user_arn("newcomer"), IdentityType.IAM_USER, team="ml")  # no call in the team today
    _usage(world, "ml", 20, scope=Scope.TEAM)
    report = parts.reconciler.run_once()
    assert report.missed == 2
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"f1", "f2"}
    assert parts.reconciler.run_once().missed == 0  # and no newcomer on the next pass either


def test_people_without_a_team_over_the_team_default_are_never_blocked(world: World) -> None:
    parts = world.parts(DEFAULT_TEAM_DAILY_REQUEST_LIMIT="20")
    for name in ("l1", "l2"):
        world.person(user_arn(name), IdentityType.IAM_USER, team=None)  # type: ignore[arg-type]
        _usage(world, user_arn(name), 5)
        world.counted("unassigned", user_arn(name))
    _usage(world, "unassigned", 40, scope=Scope.TEAM)
    assert parts.reconciler.run_once().missed == 0
    assert world.rows("SELECT COUNT(*) FROM blocks") == [(0,)]
    # Listed for the admins instead: a gauge of the people counted under no team today.
    assert parts.metrics.without_team.labels("unresolved")._value.get() == 2  # type: ignore[attr-defined]


def test_a_raised_limit_lifts_the_block_but_an_emptied_counter_does_not(world: World) -> None:
    parts = world.parts()
    gus = world.person(user_arn("gus"), IdentityType.IAM_USER)
    hal = world.person(user_arn("hal"), IdentityType.IAM_USER)
    _usage(world, gus, 10)
    parts.decisions.handle(exceeded(gus))
    parts.decisions.handle(exceeded(hal))  # hal's counters are gone (Redis emptied): usage reads 0
    world.redis.hset(Keys("test").limits(Scope.USER, gus), "daily", 50)
    with world.conn.cursor() as cur:
        cur.execute("UPDATE principals SET daily_request_limit = 50 WHERE quota_key = %s", (gus,))
    world.conn.commit()

    report = parts.reconciler.run_once()

    assert report.limit_raised == 1
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"hal"}
    assert parts.status.rows(gus)[0]["blocked"] is False
    assert world.rows("SELECT reason FROM blocks WHERE principal = %s", gus) == [("limit raised to 50",)]


def test_a_principal_made_protected_after_its_block_is_lifted(world: World) -> None:
    parts = world.parts()
    ops = world.person(user_arn("breakglass-1"), IdentityType.IAM_USER)
    parts.decisions.handle(exceeded(ops))
    rt2 = world.parts(PROTECTED_PRINCIPALS="arn:aws:iam::*:user/breakglass-*")
    report = rt2.reconciler.run_once()
    assert report.protected == 1
    assert rt2.iam is not None
    assert attached_users(world.iam, rt2.iam.user_policy_arn) == set()


def test_a_refusal_is_retried_quietly_and_applied_once_the_role_id_is_known(world: World) -> None:
    parts = world.parts(SESSION_ROLES="bedrock-*")
    role = world.iam.create_role(RoleName="bedrock-users", AssumeRolePolicyDocument="{}")["Role"]
    key = world.person("arn:aws:sts::123456789012:assumed-role/bedrock-users/ines", IdentityType.ROLE_SESSION,
                       role_arn=role["Arn"], role_id=None, session="ines")
    assert parts.decisions.handle(exceeded(key))[0].outcome is Outcome.REFUSED
    parts.reconciler.run_once()
    assert world.rows("SELECT COUNT(*) FROM enforcement_actions WHERE outcome = 'refused'") == [(1,)]

    with world.conn.cursor() as cur:
        cur.execute("UPDATE principals SET role_id = %s WHERE quota_key = %s", (role["RoleId"], key))
    world.conn.commit()
    report = parts.reconciler.run_once()
    assert report.missing == 1
    assert pool_values(world.iam, parts)[0] == [f"{role['RoleId']}:ines"]


def test_the_unconditional_deny_on_an_identity_center_role_is_reported_never_touched(world: World) -> None:
    parts = world.parts()
    assert parts.iam is not None
    parts.iam.ensure_policies()
    sso_role = "AWSReservedSSO_Developers_0123456789abcdef"
    world.iam.create_role(RoleName=sso_role, Path="/aws-reserved/sso.amazonaws.com/", AssumeRolePolicyDocument="{}")
    world.iam.attach_role_policy(RoleName=sso_role, PolicyArn=parts.iam.user_policy_arn)  # a mistake

    report = parts.reconciler.run_once()

    assert report.unexpected == 0
    attached = world.iam.list_attached_role_policies(RoleName=sso_role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [parts.iam.user_policy_arn]  # Identity Center's to fix


def test_a_session_policy_detached_by_hand_from_a_shared_role_is_put_back(world: World) -> None:
    parts = world.parts(SESSION_ROLES="bedrock-*")
    role = world.iam.create_role(RoleName="bedrock-team", AssumeRolePolicyDocument="{}")["Role"]
    key = world.person("arn:aws:sts::123456789012:assumed-role/bedrock-team/jo", IdentityType.ROLE_SESSION,
                       role_arn=role["Arn"], role_id=role["RoleId"], session="jo")
    parts.decisions.handle(exceeded(key))
    assert parts.iam is not None
    first_pool = parts.iam.pool_policy_arns[0]
    world.iam.detach_role_policy(RoleName="bedrock-team", PolicyArn=first_pool)

    report = parts.reconciler.run_once()

    assert report.missing == 1
    attached = {p["PolicyArn"] for p in world.iam.list_attached_role_policies(RoleName="bedrock-team")[
        "AttachedPolicies"]}
    assert first_pool in attached
    assert parts.reconciler.run_once().missing == 0


def test_a_team_block_stays_when_its_person_moves_to_a_team_under_its_quota(world: World) -> None:
    parts = world.parts(DEFAULT_TEAM_DAILY_REQUEST_LIMIT="20")
    mover = world.person(user_arn("mover"), IdentityType.IAM_USER, team="ml")
    _usage(world, mover, 5)
    world.counted("ml", mover)
    _usage(world, "ml", 20, scope=Scope.TEAM)
    assert parts.reconciler.run_once().missed == 1
    with world.conn.cursor() as cur:  # moved to a team far from its quota: the ml block is still due
        cur.execute("UPDATE principals SET team = 'big' WHERE quota_key = %s", (mover,))
        cur.execute("INSERT INTO teams (name, daily_request_limit) VALUES ('big', 500)")
    world.conn.commit()
    _usage(world, "big", 1, scope=Scope.TEAM)
    for _ in range(2):
        report = parts.reconciler.run_once()
        assert (report.limit_raised, report.missed) == (0, 0)
    assert world.rows("SELECT blocked, team FROM blocks") == [(1, "ml")]


def _iam_fails_once(parts: Any, operation: str) -> None:
    """The next `operation` call answers an AWS-side failure (HTTP 500), as a deny interrupted after its
    block row was committed: the decision stays unacknowledged, the row pending."""
    assert parts.iam is not None
    client = parts.iam._iam
    calls = {"n": 0}

    def fail(**kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)

    client.meta.events.register(f"before-call.iam.{operation}", fail)


def test_a_deny_interrupted_before_iam_and_completed_by_the_reconciler_is_audited_once(world: World) -> None:
    """The decision's deny is interrupted after its row (IAM fails); the reconciler completes it; the
    decision comes again. One audit row (the decision's key) and one notification, never two."""
    parts = world.parts()
    kim = world.person(user_arn("kim"), IdentityType.IAM_USER, email="kim@example.com")
    decision = exceeded(kim)
    _iam_fails_once(parts, "AttachUserPolicy")
    with pytest.raises(ClientError):
        parts.decisions.handle(decision)
    assert world.rows("SELECT iam_state FROM blocks") == [("pending",)]

    report = parts.reconciler.run_once()
    assert report.missing == 1
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"kim"}
    parts.decisions.handle(decision)  # re-delivered: it was never acknowledged

    key = digest("decision", decision.decision_id, kim)
    assert world.rows("SELECT action_key, action FROM enforcement_actions WHERE principal = %s", kim) == [
        (key, "block")]
    assert world.rows("SELECT action_key FROM blocks") == [(key,)]
    assert world.rows("SELECT kind FROM notifications") == [("blocked",)]
    assert parts.reconciler.run_once().drift == 0


def test_a_deny_applied_but_not_recorded_is_recorded_once_under_the_decisions_key(world: World) -> None:
    """Killed after the IAM call, before its audit row: the reconciler finds the deny in IAM and records
    the action under the decision's key; the re-delivered decision then adds nothing."""
    parts = world.parts()
    lea = world.person(user_arn("lea"), IdentityType.IAM_USER)
    decision = exceeded(lea)
    parts.decisions.handle(decision)
    with world.conn.cursor() as cur:  # the state a kill between IAM and the audit commit leaves
        cur.execute("DELETE FROM enforcement_actions")
        cur.execute("DELETE FROM notifications")
        cur.execute("UPDATE blocks SET iam_state = 'pending'")
    world.conn.commit()

    parts.reconciler.run_once()
    parts.decisions.handle(decision)

    key = digest("decision", decision.decision_id, lea)
    assert world.rows("SELECT action_key, outcome FROM enforcement_actions") == [(key, "applied")]
    assert world.rows("SELECT iam_state FROM blocks") == [("applied",)]
    assert world.rows("SELECT COUNT(*) FROM notifications") == [(1,)]


def test_a_deny_removed_by_hand_after_it_was_recorded_is_a_new_audited_action(world: World) -> None:
    parts = world.parts()
    mo = world.person(user_arn("mo"), IdentityType.IAM_USER)
    parts.decisions.handle(exceeded(mo))
    assert parts.iam is not None
    world.iam.detach_user_policy(UserName="mo", PolicyArn=parts.iam.user_policy_arn)
    parts.reconciler.run_once()
    assert [r[0] for r in world.rows("SELECT actor FROM enforcement_actions ORDER BY id")] == [
        "system", "reconciler"]
