"""The deny policies' documents, the session pool's arithmetic and what a deny may name (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bedrock_usage.config import SettingsError
from bedrock_usage.identity import IdentityType
from bedrock_usage.quota import Quota
from devtools.settings import AllSettings
from enforcement import policies
from enforcement.decisions import period_end
from enforcement.targets import PrincipalRecord, Refusal, Target, TargetKind, target_of

ACCOUNT = "123456789012"


def test_the_user_policy_denies_exactly_the_three_bedrock_actions() -> None:
    (statement,) = policies.user_deny_document()["Statement"]
    assert statement == {"Sid": policies.USER_SID, "Effect": "Deny", "Resource": "*", "Action": [
        "bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:CallWithBearerToken"]}


def test_a_session_document_round_trips_and_an_empty_pool_matches_nobody() -> None:
    doc = policies.session_document(["AROAABCDEFGHIJ:bob", "*:ana@example.com"])
    assert policies.session_entries(policies.compact(doc)) == {"AROAABCDEFGHIJ:bob", "*:ana@example.com"}
    empty = policies.session_document([])
    assert empty["Statement"][0]["Condition"]["StringLike"]["aws:userid"] == [policies.NOBODY]
    assert policies.session_entries(empty) == frozenset()


@pytest.mark.parametrize("edit", [
    lambda d: d["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    lambda d: d["Statement"][0].update(Effect="Allow"),
    lambda d: d["Statement"][0]["Condition"].update(IpAddress={"aws:SourceIp": "10.0.0.0/8"}),
    lambda d: d["Statement"][0].update(Action=["bedrock:*"]),
    lambda d: d["Statement"][0].update(Sid="SomeoneElses"),
])
def test_a_document_edited_by_hand_is_unreadable_not_overwritten(edit) -> None:  # type: ignore[no-untyped-def]
    doc = policies.session_document(["*:ana@example.com"])
    edit(doc)
    with pytest.raises(policies.UnreadablePolicy):
        policies.session_entries(json.dumps(doc))


def test_entries_go_where_they_are_else_to_the_first_pool_with_room() -> None:
    full = frozenset(f"AROAEXAMPLEROLEID0001:session-number-{i:04d}" for i in range(500))
    while not policies.fits(full):
        full = frozenset(sorted(full)[:-1])
    another = "AROAEXAMPLEROLEID0001:session-number-9999"
    assert policies.place(another, [full, frozenset()]) == 1
    assert policies.place(sorted(full)[0], [full, frozenset()]) == 0
    assert policies.place(another, [frozenset(), frozenset()]) == 0
    with pytest.raises(policies.PoolFull):
        policies.place("AROAEXAMPLEROLEID0001:one-more-session", [full, full])
    assert len(policies.compact(policies.session_document(full))) <= policies.MANAGED_POLICY_MAX_CHARS


def test_the_oldest_non_default_version_makes_room_for_the_sixth() -> None:
    versions = [{"VersionId": f"v{i}", "IsDefaultVersion": i == 12, "CreateDate": datetime(2026, 1, i, tzinfo=UTC)}
                for i in (8, 9, 10, 11, 12)]
    assert policies.oldest_removable_version(versions) == "v8"
    assert policies.oldest_removable_version(versions[:4]) is None


@pytest.mark.parametrize(("person", "expected"), [
    (PrincipalRecord(f"arn:aws:iam::{ACCOUNT}:user/dev/alice", IdentityType.IAM_USER,
                     arn=f"arn:aws:iam::{ACCOUNT}:user/dev/alice"), "user:alice"),
    (PrincipalRecord("sso:ana@example.com", IdentityType.SSO_USER, session_name="Ana@Example.com"),
     "session:*:Ana@Example.com"),
    (PrincipalRecord(f"arn:aws:sts::{ACCOUNT}:assumed-role/bedrock-users/maria", IdentityType.ROLE_SESSION,
                     account_id=ACCOUNT, role_arn=f"arn:aws:iam::{ACCOUNT}:role/bedrock-users",
                     role_id="AROAEXAMPLEROLEID01", session_name="maria"), "session:AROAEXAMPLEROLEID01:maria"),
    (PrincipalRecord(f"arn:aws:iam::{ACCOUNT}:role/ci-runner", IdentityType.ROLE,
                     arn=f"arn:aws:iam::{ACCOUNT}:role/ci-runner"), "role:ci-runner"),
])
def test_each_kind_of_person_has_one_precise_target(person: PrincipalRecord, expected: str) -> None:
    target = target_of(person, ACCOUNT)
    assert isinstance(target, Target) and str(target) == expected


@pytest.mark.parametrize(("person", "reason"), [
    (PrincipalRecord("arn:aws:iam::999999999999:user/x", IdentityType.IAM_USER, arn="arn:aws:iam::999999999999:user/x"),
     "other_account"),
    (PrincipalRecord("sso:ana@example.com", IdentityType.SSO_USER, session_name=None), "unknown_session"),
    (PrincipalRecord("sso:ana*", IdentityType.SSO_USER, session_name="ana*"), "unknown_session"),
    (PrincipalRecord("sso:ana@example.com", IdentityType.SSO_USER, session_name="bob@example.com"), "unknown_session"),
    (PrincipalRecord(f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s", IdentityType.ROLE_SESSION, account_id=ACCOUNT,
                     role_arn=f"arn:aws:iam::{ACCOUNT}:role/r", role_id=None, session_name="s1"), "unknown_role_id"),
    (PrincipalRecord(f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Admin_1", IdentityType.ROLE,
                     arn=f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Admin_1"), "sso_role"),
    (PrincipalRecord(f"arn:aws:iam::{ACCOUNT}:root", IdentityType.ROOT, account_id=ACCOUNT), "not_deniable"),
])
def test_what_cannot_be_named_precisely_is_refused(person: PrincipalRecord, reason: str) -> None:
    refusal = target_of(person, ACCOUNT)
    assert isinstance(refusal, Refusal) and refusal.reason == reason


def test_targets_parse_back() -> None:
    assert Target.parse("session:*:ana@example.com") == Target(TargetKind.SESSION, "*:ana@example.com")


def test_periods_end_at_local_midnight_and_on_the_first_across_dst() -> None:
    settings = AllSettings.from_env({})
    # Madrid leaves summer time on the last Sunday of October: midnight is 23:00 UTC after, 22:00 before.
    assert period_end(Quota.DAILY_REQUESTS, "2026-10-24", settings) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert period_end(Quota.DAILY_REQUESTS, "2026-10-25", settings) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert period_end(Quota.MONTHLY_REQUESTS, "2026-12", settings) == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("name", "value"), [
    ("ENFORCEMENT_MODE", "dry-run"), ("DENY_POLICY_NAME", "has space"), ("SESSION_DENY_POLICIES", "9"),
    ("SESSION_DENY_POLICIES", "0"), ("RECONCILE_INTERVAL_SECONDS", "1"),
])
def test_enforcement_settings_are_validated(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        AllSettings.from_env({name: value})
