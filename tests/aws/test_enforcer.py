"""Decisions → IAM denies and back: users, SSO sessions, role sessions, teams, shadow mode, protection."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bedrock_usage.identity import IdentityType
from bedrock_usage.quota import Kind, Quota, Scope
from enforcement import policies
from enforcement.model import Outcome
from tests.aws.conftest import (
    ACCOUNT,
    SSO_ROLE,
    World,
    attached_users,
    exceeded,
    pool_documents,
    pool_values,
    user_arn,
)


def _one(world: World, sql: str, *params: Any) -> tuple[Any, ...]:
    (row,) = world.rows(sql, *params)
    return row


def test_an_exceeded_iam_user_gets_the_deny_policy_and_a_replay_changes_nothing(world: World) -> None:
    parts = world.parts()
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER, display="Alice", email="alice@example.com")
    decision = exceeded(alice)

    (result,) = parts.decisions.handle(decision)
    (again,) = parts.decisions.handle(decision)  # a re-delivery after a crash

    assert result.outcome is Outcome.APPLIED and again.outcome is Outcome.APPLIED
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"alice"}
    arn = parts.iam.user_policy_arn
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/bedrock-usage-control/BedrockUsageControlDeny"
    doc = world.iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    statement = (json.loads(doc) if isinstance(doc, str) else doc)["Statement"][0]
    assert statement["Effect"] == "Deny" and sorted(statement["Action"]) == sorted(policies.DENIED_ACTIONS)
    blocked, until, state, target = _one(world, "SELECT blocked, blocked_until, iam_state, iam_target FROM blocks")
    assert (blocked, state, target) == (1, "applied", "user:alice")
    assert until > NOW_NAIVE()
    assert world.rows("SELECT action, outcome, actor, usage_count, limit_count FROM enforcement_actions") == [
        ("block", "applied", "system", 10, 10)]
    assert world.rows("SELECT kind, email, display_name, usage_count, limit_count, percent FROM notifications") == [
        ("blocked", "alice@example.com", "Alice", 10, 10, 100)]


def NOW_NAIVE() -> Any:
    from tests.conftest import NOW  # noqa: PLC0415

    return NOW.replace(tzinfo=None)


def test_warnings_notify_and_change_no_policy(world: World) -> None:
    parts = world.parts()
    bob = world.person(user_arn("bob"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(bob, kind=Kind.WARNING, percent=85, usage=9))
    assert result.outcome is Outcome.NOTIFIED
    assert parts.iam is not None
    assert world.iam.list_attached_user_policies(UserName="bob")["AttachedPolicies"] == []
    assert world.rows("SELECT kind, percent, usage_count FROM notifications") == [("warning", 85, 9)]
    assert world.rows("SELECT COUNT(*) FROM blocks") == [(0,)]


def test_the_block_ends_at_the_reset_and_says_so(world: World) -> None:
    parts = world.parts()
    carol = world.person(user_arn("carol"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(carol))
    assert result.blocked_until is not None
    local = result.blocked_until.astimezone(parts.enforcer.settings.quota_timezone)
    assert (local.hour, local.minute) == (0, 0)  # next local midnight

    world.now = result.blocked_until - timedelta(seconds=1)
    assert parts.enforcer.expire_due() == []
    world.now = result.blocked_until + timedelta(seconds=1)
    (lifted,) = parts.enforcer.expire_due()
    assert lifted.outcome is Outcome.APPLIED
    assert world.iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == []
    assert parts.enforcer.expire_due() == []  # done once
    assert world.rows("SELECT action, reason FROM enforcement_actions ORDER BY id")[-1] == (
        "unblock", "quota period reset")
    assert [r[0] for r in world.rows("SELECT kind FROM notifications ORDER BY id")] == ["blocked", "unblocked"]


def test_a_monthly_block_lasts_until_the_first(world: World) -> None:
    parts = world.parts()
    dan = world.person(user_arn("dan"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(dan, quota=Quota.MONTHLY_REQUESTS))
    assert result.blocked_until is not None
    local = result.blocked_until.astimezone(parts.enforcer.settings.quota_timezone)
    assert (local.day, local.hour) == (1, 0)


def test_a_decision_for_a_period_already_over_is_recorded_not_applied(world: World) -> None:
    parts = world.parts()
    erin = world.person(user_arn("erin"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(erin, period="2020-01-01"))
    assert result.outcome is Outcome.STALE
    assert world.iam.list_attached_user_policies(UserName="erin")["AttachedPolicies"] == []


def test_an_sso_deny_names_only_that_user_and_never_touches_the_sso_role(world: World) -> None:
    parts = world.parts()
    world.iam.create_role(RoleName=SSO_ROLE, Path="/aws-reserved/sso.amazonaws.com/eu-west-1/",
                          AssumeRolePolicyDocument="{}")
    ana = world.sso("Ana.Garcia@example.com")
    world.sso("luis@example.com")

    (result,) = parts.decisions.handle(exceeded(ana))

    assert result.outcome is Outcome.APPLIED
    values = pool_values(world.iam, parts)
    assert values[0] == ["*:Ana.Garcia@example.com"]  # her session name as IAM sees it, and no one else
    assert all(v == [policies.NOBODY] for v in values[1:])
    statement = pool_documents(world.iam, parts)[0]["Statement"][0]
    assert statement["Effect"] == "Deny" and set(statement["Condition"]) == {"StringLike"}
    # Identity Center's role is never edited: the permission set references the policies instead.
    assert world.iam.list_attached_role_policies(RoleName=SSO_ROLE)["AttachedPolicies"] == []

    world.now = result.blocked_until + timedelta(seconds=1)  # type: ignore[operator]
    parts.enforcer.expire_due()
    assert pool_values(world.iam, parts)[0] == [policies.NOBODY]


def test_a_role_session_is_denied_by_role_id_and_session_and_the_pool_attached_to_the_role(world: World) -> None:
    parts = world.parts(SESSION_ROLES="bedrock-*")
    role = world.iam.create_role(RoleName="bedrock-users", AssumeRolePolicyDocument="{}")["Role"]
    key = f"arn:aws:sts::{ACCOUNT}:assumed-role/bedrock-users/maria"
    world.person(key, IdentityType.ROLE_SESSION, role_arn=role["Arn"], role_id=role["RoleId"], session="maria")

    (result,) = parts.decisions.handle(exceeded(key))

    assert result.outcome is Outcome.APPLIED
    assert pool_values(world.iam, parts)[0] == [f"{role['RoleId']}:maria"]
    attached = {p["PolicyName"] for p in world.iam.list_attached_role_policies(RoleName="bedrock-users")[
        "AttachedPolicies"]}
    assert attached == set(policies.PolicyNames("BedrockUsageControlDeny", 3).sessions)


def test_a_session_whose_role_id_is_unknown_is_refused_and_alerted_never_denied_broadly(world: World) -> None:
    parts = world.parts(SESSION_ROLES="bedrock-*")
    key = f"arn:aws:sts::{ACCOUNT}:assumed-role/bedrock-users/pablo"
    world.person(key, IdentityType.ROLE_SESSION, role_arn=f"arn:aws:iam::{ACCOUNT}:role/bedrock-users",
                 role_id=None, session="pablo")
    assert parts.iam is not None
    parts.iam.ensure_policies()  # as `enforcer run` does at start

    (result,) = parts.decisions.handle(exceeded(key))

    assert result.outcome is Outcome.REFUSED
    assert all(v == [policies.NOBODY] for v in pool_values(world.iam, parts))
    assert world.iam.list_entities_for_policy(PolicyArn=parts.iam.user_policy_arn)["PolicyRoles"] == []
    assert world.rows("SELECT outcome FROM enforcement_actions") == [("refused",)]
    assert world.rows("SELECT kind, scope FROM notifications") == [("alert", "admins")]
    assert world.rows("SELECT blocked, iam_state FROM blocks") == [(1, "refused")]


def test_an_identity_center_role_keyed_as_a_whole_is_refused(world: World) -> None:
    parts = world.parts()
    key = f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE}"
    world.person(key, IdentityType.ROLE)
    (result,) = parts.decisions.handle(exceeded(key))
    assert result.outcome is Outcome.REFUSED


def test_sessions_spill_into_the_next_policy_and_versions_stay_within_five(world: World) -> None:
    parts = world.parts(MAX_QUOTA_DENIES_PER_HOUR="0")
    names = [f"person.with.a.long.name.{i:03d}@example.com" for i in range(260)]
    for name in names:
        world.sso(name)
    for name in names:
        parts.decisions.handle(exceeded(f"sso:{name}"))

    values = pool_values(world.iam, parts)
    assert len(values[0]) > 100 and len(values[1]) > 0  # the first filled up, the next took the rest
    assert sorted(v for vs in values for v in vs if v != policies.NOBODY) == sorted(f"*:{n}" for n in names)
    for doc in pool_documents(world.iam, parts):
        assert len(policies.compact(doc)) <= policies.MANAGED_POLICY_MAX_CHARS
    assert parts.iam is not None
    for arn in parts.iam.pool_policy_arns:
        assert len(world.iam.list_policy_versions(PolicyArn=arn)["Versions"]) <= policies.MAX_POLICY_VERSIONS


def test_a_team_over_its_quota_denies_each_person_counted_in_it_alone(world: World) -> None:
    parts = world.parts()
    members = [world.person(user_arn(n), IdentityType.IAM_USER, team="ml") for n in ("t1", "t2")]
    world.counted("ml", *members)
    # In the team now, but counted in it by no call today: not among those who used its quota up.
    world.person(user_arn("newcomer"), IdentityType.IAM_USER, team="ml")
    # Counted in it earlier today, in another team now: used the quota, so covered by the block.
    mover = world.person(user_arn("mover"), IdentityType.IAM_USER, team="finance")
    world.counted("ml", mover)
    world.person(user_arn("outsider"), IdentityType.IAM_USER, team="finance")
    results = parts.decisions.handle(exceeded("ml", scope=Scope.TEAM, usage=100, limit=100, team="ml"))
    assert {r.principal for r in results} == {*members, mover}
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"t1", "t2", "mover"}
    reasons = {r[0] for r in world.rows("SELECT reason FROM blocks")}
    assert reasons == {"team ml exceeded its daily quota: 100 of 100"}
    # Each member hears of their own block; the team's admins and the channels get one message.
    assert sorted(world.rows("SELECT kind, scope, quota_scope, COUNT(*) FROM notifications"
                             " GROUP BY kind, scope, quota_scope")) == [
        ("blocked", "user", "team", 3), ("team_blocked", "team", "team", 1)]
    parts.decisions.handle(exceeded("ml", scope=Scope.TEAM, usage=100, limit=100, team="ml"))  # redelivered
    assert world.rows("SELECT COUNT(*) FROM notifications") == [(4,)]


def test_people_without_a_team_are_never_blocked_together(world: World) -> None:
    parts = world.parts()
    loner = world.person(user_arn("loner"), IdentityType.IAM_USER, team=None)  # type: ignore[arg-type]
    world.counted("unassigned", loner)
    assert parts.decisions.handle(exceeded("unassigned", scope=Scope.TEAM, usage=9, limit=9, team="unassigned")) == []
    assert world.rows("SELECT COUNT(*) FROM blocks") == [(0,)]


def test_shadow_mode_records_and_notifies_but_changes_no_iam(world: World) -> None:
    parts = world.parts(ENFORCEMENT_MODE="shadow")
    frank = world.person(user_arn("frank"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(frank))
    assert result.outcome is Outcome.SHADOW
    assert world.iam.list_policies(Scope="Local")["Policies"] == []  # not even created
    assert world.iam.list_attached_user_policies(UserName="frank")["AttachedPolicies"] == []
    assert world.rows("SELECT outcome, shadow FROM enforcement_actions") == [("shadow", 1)]
    assert world.rows("SELECT kind, shadow FROM notifications") == [("blocked", 1)]
    assert parts.status.rows(frank)[0]["blocked"] is True
    parts.reconciler.run_once()
    assert world.iam.list_policies(Scope="Local")["Policies"] == []


def test_protected_principals_are_never_denied(world: World) -> None:
    parts = world.parts(PROTECTED_PRINCIPALS="arn:aws:iam::*:user/breakglass-*,sso:root-admin@example.com")
    admin = world.person(user_arn("breakglass-ops"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(admin))
    admin_result = parts.enforcer.admin_block(admin, actor="ops", reason="test", until=None)
    assert result.outcome is Outcome.PROTECTED and admin_result.outcome is Outcome.PROTECTED
    assert world.iam.list_attached_user_policies(UserName="breakglass-ops")["AttachedPolicies"] == []
    assert world.rows("SELECT outcome FROM enforcement_actions ORDER BY id") == [("protected",), ("protected",)]
    assert world.rows("SELECT COUNT(*) FROM notifications") == [(0,)]


def test_admin_block_for_a_duration_then_unblock_with_protection_shields_from_quota_blocks(world: World) -> None:
    parts = world.parts()
    gina = world.person(user_arn("gina"), IdentityType.IAM_USER)
    blocked = parts.enforcer.admin_block(gina, actor="ops-lead", reason="runaway script",
                                      until=world.now + timedelta(hours=4))
    assert blocked.outcome is Outcome.APPLIED
    assert parts.status.rows(gina)[0]["blocked_until"] == (world.now + timedelta(hours=4)).isoformat()

    unblocked = parts.enforcer.admin_unblock(gina, actor="ops-lead", reason="fixed", protect=True)
    assert unblocked.outcome is Outcome.APPLIED
    status = parts.status.rows(gina)[0]
    assert status["blocked"] is False and status["protected_until"] is not None
    (shielded,) = parts.decisions.handle(exceeded(gina))
    assert shielded.outcome is Outcome.SHIELDED
    assert world.iam.list_attached_user_policies(UserName="gina")["AttachedPolicies"] == []
    kinds = [r[0] for r in world.rows("SELECT kind FROM notifications ORDER BY id")]
    assert kinds == ["admin_blocked", "admin_unblocked"]
    actors = world.rows("SELECT actor, action, outcome FROM enforcement_actions ORDER BY id")
    assert actors == [("ops-lead", "block", "applied"), ("ops-lead", "unblock", "applied"),
                      ("system", "block", "shielded")]


def test_an_indefinite_admin_block_outlives_a_quota_reset(world: World) -> None:
    parts = world.parts()
    hugo = world.person(user_arn("hugo"), IdentityType.IAM_USER)
    parts.enforcer.admin_block(hugo, actor="sec", reason="left the company", until=None)
    (quota,) = parts.decisions.handle(exceeded(hugo))
    world.now = quota.blocked_until or world.now  # type: ignore[assignment]
    world.now += timedelta(days=2)
    assert parts.enforcer.expire_due() == []
    status = parts.status.rows(hugo)[0]
    assert status["blocked"] is True and status["indefinite"] is True and status["reason"] == "left the company"


def test_lifting_what_is_already_gone_is_a_success(world: World) -> None:
    parts = world.parts()
    ivan = world.person(user_arn("ivan"), IdentityType.IAM_USER)
    parts.decisions.handle(exceeded(ivan))
    assert parts.iam is not None
    world.iam.detach_user_policy(UserName="ivan", PolicyArn=parts.iam.user_policy_arn)
    result = parts.enforcer.admin_unblock(ivan, actor="ops", reason="done", protect=False)
    assert result.outcome is Outcome.UNCHANGED


@pytest.mark.parametrize("protect", [False, True])
def test_status_json_shape(world: World, protect: bool) -> None:
    parts = world.parts()
    jan = world.person(user_arn("jan"), IdentityType.IAM_USER)
    parts.decisions.handle(exceeded(jan))
    if protect:
        parts.enforcer.admin_unblock(jan, actor="ops", reason="ok", protect=True)
    (status,) = parts.status.rows(jan)
    assert {"principal", "blocked", "blocked_until", "reason", "protected_until"} <= set(status)
    assert status["blocked"] is (not protect)
    assert (status["protected_until"] is not None) is protect
    json.dumps(status)


def test_a_warning_crossed_with_the_limit_is_superseded_by_the_block_notice(world: World) -> None:
    parts = world.parts()
    kay = world.person(user_arn("kay"), IdentityType.IAM_USER)
    (result,) = parts.decisions.handle(exceeded(kay, kind=Kind.WARNING, percent=85, usage=10, limit=10))
    assert result.outcome is Outcome.SUPERSEDED
    assert world.rows("SELECT COUNT(*) FROM notifications") == [(0,)]


def test_a_session_policy_edited_by_hand_is_never_overwritten(world: World) -> None:
    parts = world.parts()
    lea = world.sso("lea@example.com")
    parts.decisions.handle(exceeded(lea))
    assert parts.iam is not None
    pool = parts.iam.pool_policy_arns[0]
    edited = pool_documents(world.iam, parts)[0]
    edited["Statement"].append({"Sid": "SomeonesException", "Effect": "Allow", "Action": "s3:GetObject",
                                "Resource": "*"})
    world.iam.create_policy_version(PolicyArn=pool, PolicyDocument=json.dumps(edited), SetAsDefault=True)
    mia = world.sso("mia@example.com")

    (blocked,) = parts.decisions.handle(exceeded(mia))
    lifted = parts.enforcer.admin_unblock(lea, actor="ops", reason="done", protect=False)
    report = parts.reconciler.run_once()

    assert blocked.outcome is Outcome.REFUSED and lifted.outcome is Outcome.REFUSED
    assert pool_documents(world.iam, parts)[0] == edited  # untouched
    assert parts.status.rows(lea)[0]["iam_state"] == "lift_refused"
    assert report.unexpected == 0 and report.missing == 0
    kinds = [r[0] for r in world.rows("SELECT kind FROM notifications ORDER BY id")]
    assert kinds == ["blocked", "alert", "alert"]  # no "access is back" to Lea: it is not


def test_the_circuit_breaker_refuses_quota_denies_past_the_hourly_cap_but_not_admin_blocks(world: World) -> None:
    parts = world.parts(MAX_QUOTA_DENIES_PER_HOUR="2")
    people = [world.person(user_arn(f"cb{i}"), IdentityType.IAM_USER) for i in range(4)]
    outcomes = [parts.decisions.handle(exceeded(p))[0].outcome for p in people[:3]]
    admin = parts.enforcer.admin_block(people[3], actor="ops", reason="manual", until=None)

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.REFUSED]
    assert admin.outcome is Outcome.APPLIED
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"cb0", "cb1", "cb3"}
    assert world.rows("SELECT kind, reason LIKE %s FROM notifications WHERE kind = 'alert'",
                      "%MAX_QUOTA_DENIES_PER_HOUR%") == [("alert", 1)]
    parts.decisions.handle(exceeded(people[0]))  # already blocked: an extension is not a new deny
    assert parts.status.rows(people[0])[0]["iam_state"] == "applied"

    raised = world.parts(MAX_QUOTA_DENIES_PER_HOUR="10")  # an admin raises the cap: the reconciler applies it
    assert raised.reconciler.run_once().missing == 1
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"cb0", "cb1", "cb2", "cb3"}


def test_a_monthly_quota_used_up_while_blocked_for_the_day_extends_the_block_to_the_first(world: World) -> None:
    parts = world.parts()
    ned = world.person(user_arn("ned"), IdentityType.IAM_USER)
    (daily,) = parts.decisions.handle(exceeded(ned))
    (monthly,) = parts.decisions.handle(exceeded(ned, quota=Quota.MONTHLY_REQUESTS, usage=5000, limit=5000))
    (shorter,) = parts.decisions.handle(exceeded(ned, quota=Quota.DAILY_REQUESTS, usage=10, limit=10))  # a replay
    assert daily.blocked_until is not None and monthly.blocked_until is not None
    if monthly.blocked_until == daily.blocked_until:
        pytest.skip("the last day of a month: the day and the month end at the same midnight")
    assert monthly.blocked_until > daily.blocked_until and shorter.blocked_until == monthly.blocked_until
    (status,) = parts.status.rows(ned)
    assert status["quota"] == "monthly_requests" and status["reason"] == "monthly quota exceeded: 5000 of 5000"
    world.now = daily.blocked_until + timedelta(seconds=1)
    assert parts.enforcer.expire_due() == []  # the daily reset does not lift a monthly block
    kinds = [r[0] for r in world.rows("SELECT kind FROM notifications ORDER BY id")]
    assert kinds == ["blocked", "blocked"]  # the second says: until the 1st


def test_a_refused_block_stays_refused_when_more_decisions_come_and_ends_without_a_message(world: World) -> None:
    parts = world.parts(MAX_QUOTA_DENIES_PER_HOUR="1")
    first, second = (world.person(user_arn(n), IdentityType.IAM_USER) for n in ("rb1", "rb2"))
    parts.decisions.handle(exceeded(first))
    (refused,) = parts.decisions.handle(exceeded(second))
    (again,) = parts.decisions.handle(exceeded(second, quota=Quota.MONTHLY_REQUESTS, usage=5000, limit=5000))
    assert refused.outcome is Outcome.REFUSED and again.outcome is Outcome.REFUSED  # the breaker holds
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"rb1"}
    world.now = (again.blocked_until or world.now) + timedelta(seconds=1)
    parts.enforcer.expire_due()
    kinds = [r[0] for r in world.rows("SELECT kind FROM notifications WHERE principal = %s ORDER BY id", second)]
    assert "unblocked" not in kinds  # never blocked in fact: no "access is back"


def test_a_role_now_named_by_session_roles_is_never_denied_whole(world: World) -> None:
    parts = world.parts(SESSION_ROLES="shared-*")
    world.iam.create_role(RoleName="shared-analysts", AssumeRolePolicyDocument="{}")
    key = world.person(f"arn:aws:iam::{ACCOUNT}:role/shared-analysts", IdentityType.ROLE)
    (result,) = parts.decisions.handle(exceeded(key))
    assert result.outcome is Outcome.REFUSED and "SESSION_ROLES" in result.detail


def test_a_decision_waits_for_an_admin_acting_on_the_same_person_and_sees_the_result(world: World) -> None:
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from bedrock_usage import db  # noqa: PLC0415

    parts = world.parts()
    ida = world.person(user_arn("ida"), IdentityType.IAM_USER)
    parts.enforcer.admin_block(ida, actor="ops", reason="check", until=None)
    locked = threading.Event()

    def admin_unblocking_with_protection() -> None:  # what `bedrockctl unblock --protect` does, slowly
        conn = db.connect(parts.enforcer.settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT principal FROM blocks WHERE principal = %s FOR UPDATE", (ida,))
            locked.set()
            time.sleep(0.5)
            cur.execute("UPDATE blocks SET blocked = 0, protected_until = %s WHERE principal = %s",
                        ((world.now + timedelta(hours=6)).replace(tzinfo=None), ida))
        conn.commit()
        conn.close()

    admin = threading.Thread(target=admin_unblocking_with_protection)
    admin.start()
    assert locked.wait(5)
    (result,) = world.parts().decisions.handle(exceeded(ida))  # another enforcer, meanwhile
    admin.join()
    assert result.outcome is Outcome.SHIELDED  # it waited for the admin, then respected the protection
