"""bedrock_usage.identity: CloudTrail `userIdentity` → the principal (quota key) a call is charged to."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_usage.identity import IdentityError, IdentityType, Principal, is_sso_role, principal_from_identity
from tests.conftest import load_event

ACCOUNT = "111122223333"
SSO_ROLE = "AWSReservedSSO_BedrockUsers_aa59d952f393cb6a"
SSO_ROLE_ID = "AROAZLY3W2WBRTBIFDNWJ"


def sso_identity(
    session: str,
    *,
    role: str = SSO_ROLE,
    role_id: str = SSO_ROLE_ID,
    account: str = ACCOUNT,
    region_path: str = "eu-west-1/",
) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{region_path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-10-01T09:12:01Z", "mfaAuthenticated": "false"},
        },
    }


def role_identity(role: str, session: str, *, path: str = "", role_id: str = "AROAEXAMPLEROLEID0001") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{path}{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
        },
    }


def test_iam_user_is_keyed_by_its_user_arn() -> None:
    identity = load_event("cloudtrail-invokemodel-iamuser.json")["userIdentity"]

    assert principal_from_identity(identity) == Principal(
        key="arn:aws:iam::956882123456:user/himan",
        identity_type=IdentityType.IAM_USER,
        arn="arn:aws:iam::956882123456:user/himan",
        account_id="956882123456",
        display_name="himan",
    )


def test_iam_user_without_user_name_takes_it_from_the_arn() -> None:
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::956882123456:user/teams/ops/bob", "accountId": "956882123456"}

    principal = principal_from_identity(identity)

    assert (principal.key, principal.display_name) == ("arn:aws:iam::956882123456:user/teams/ops/bob", "bob")


def test_iam_user_without_a_user_arn_is_an_error() -> None:
    with pytest.raises(IdentityError, match="IAMUser"):
        principal_from_identity({"type": "IAMUser", "arn": "arn:aws:iam::1:role/x", "accountId": "1"})


def test_sso_session_is_keyed_by_the_lower_cased_user_name() -> None:
    principal = principal_from_identity(sso_identity("Alice.Smith@Example.COM"))

    assert principal == Principal(
        key="sso:alice.smith@example.com",
        identity_type=IdentityType.SSO_USER,
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/Alice.Smith@Example.COM",
        account_id=ACCOUNT,
        display_name="Alice.Smith@Example.COM",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}",
        role_id=SSO_ROLE_ID,
        session_name="Alice.Smith@Example.COM",
    )


def test_sso_sample_event_maps_to_alice() -> None:
    identity = load_event("cloudtrail-conversestream-sso.json")["userIdentity"]

    principal = principal_from_identity(identity)

    assert (principal.key, principal.identity_type, principal.role_id, principal.session_name) == (
        "sso:alice@example.com", IdentityType.SSO_USER, "AROAZLY3W2WBRTBIFDNWJ", "alice@example.com")


def test_same_sso_user_is_one_person_whatever_the_permission_set_or_account() -> None:
    through = [
        sso_identity("alice@example.com"),
        sso_identity("ALICE@example.com", role="AWSReservedSSO_AdministratorAccess_0123456789abcdef",
                     role_id="AROAOTHERPERMSET0001"),
        sso_identity("Alice@Example.com", account="444455556666", role_id="AROAOTHERACCOUNT0001"),
    ]

    principals = [principal_from_identity(identity) for identity in through]

    assert {p.key for p in principals} == {"sso:alice@example.com"}
    assert [p.identity_type for p in principals] == [IdentityType.SSO_USER] * 3
    # What the enforcer needs to deny that one session differs per path.
    assert [(p.account_id, p.role_id) for p in principals] == [
        (ACCOUNT, SSO_ROLE_ID), (ACCOUNT, "AROAOTHERPERMSET0001"), ("444455556666", "AROAOTHERACCOUNT0001")]


@pytest.mark.parametrize("region_path", ["", "eu-west-1/", "us-east-2/"])
def test_sso_role_is_recognised_with_or_without_a_region_in_its_path(region_path: str) -> None:
    principal = principal_from_identity(sso_identity("bob@example.com", region_path=region_path))

    assert (principal.key, principal.identity_type) == ("sso:bob@example.com", IdentityType.SSO_USER)
    assert principal.role_arn == f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{region_path}{SSO_ROLE}"


@pytest.mark.parametrize(
    ("role_arn", "expected"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}", True),
        (f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}", True),
        # The name alone, or the path alone, is not Identity Center.
        (f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE}", False),
        (f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/BedrockUsers", False),
        (f"arn:aws:iam::{ACCOUNT}:role/service-role/LambdaExec", False),
    ],
)
def test_is_sso_role(role_arn: str, expected: bool) -> None:
    assert is_sso_role(role_arn) is expected


def test_other_assumed_role_is_keyed_by_the_role_arn() -> None:
    identity = role_identity("LambdaExec", "botocore-session-1727779957", path="service-role/")

    assert principal_from_identity(identity) == Principal(
        key=f"arn:aws:iam::{ACCOUNT}:role/service-role/LambdaExec",
        identity_type=IdentityType.ROLE,
        arn=f"arn:aws:iam::{ACCOUNT}:role/service-role/LambdaExec",
        account_id=ACCOUNT,
        display_name="LambdaExec",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/service-role/LambdaExec",
        role_id="AROAEXAMPLEROLEID0001",
    )


def test_sessions_of_a_shared_role_are_one_principal() -> None:
    keys = {principal_from_identity(role_identity("CiDeploy", f"run-{i}")).key for i in range(3)}

    assert keys == {f"arn:aws:iam::{ACCOUNT}:role/CiDeploy"}


def test_role_matching_session_roles_is_keyed_by_its_assumed_role_arn() -> None:
    identity = role_identity("DeveloperAccess", "jane.doe")

    principal = principal_from_identity(identity, ["Ops*", "Dev*"])

    assert principal == Principal(
        key=f"arn:aws:sts::{ACCOUNT}:assumed-role/DeveloperAccess/jane.doe",
        identity_type=IdentityType.ROLE_SESSION,
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/DeveloperAccess/jane.doe",
        account_id=ACCOUNT,
        display_name="jane.doe",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/DeveloperAccess",
        role_id="AROAEXAMPLEROLEID0001",
        session_name="jane.doe",
    )


@pytest.mark.parametrize("patterns", [["dev*"], ["Developer"], ["*Admin*"], ["service-role/*"]])
def test_session_roles_globs_match_the_whole_role_name_case_sensitively(patterns: list[str]) -> None:
    identity = role_identity("DeveloperAccess", "jane.doe", path="service-role/")

    principal = principal_from_identity(identity, patterns)

    assert (principal.key, principal.identity_type) == (
        f"arn:aws:iam::{ACCOUNT}:role/service-role/DeveloperAccess", IdentityType.ROLE)


def test_sso_takes_precedence_over_session_roles() -> None:
    principal = principal_from_identity(sso_identity("Carol@example.com"), ["*"])

    assert (principal.key, principal.identity_type) == ("sso:carol@example.com", IdentityType.SSO_USER)


def test_root_is_keyed_by_the_account_root_arn() -> None:
    identity = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}

    assert principal_from_identity(identity) == Principal(
        f"arn:aws:iam::{ACCOUNT}:root", IdentityType.ROOT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root")


def test_federated_user_is_keyed_by_its_arn() -> None:
    identity = {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT}:bob",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "accountId": ACCOUNT,
    }

    assert principal_from_identity(identity) == Principal(
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob", IdentityType.FEDERATED_USER,
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob", ACCOUNT, "bob")


def test_assumed_role_without_session_context_rebuilds_the_role_arn() -> None:
    identity = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEROLEID0002:jane",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane",
        "accountId": ACCOUNT,
    }

    assert principal_from_identity(identity) == Principal(
        key=f"arn:aws:iam::{ACCOUNT}:role/Admin",
        identity_type=IdentityType.ROLE,
        arn=f"arn:aws:iam::{ACCOUNT}:role/Admin",
        account_id=ACCOUNT,
        display_name="Admin",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/Admin",
        role_id="AROAEXAMPLEROLEID0002",
    )


def test_assumed_role_without_session_context_or_principal_id_takes_the_session_from_the_arn() -> None:
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane", "accountId": ACCOUNT}

    principal = principal_from_identity(identity, ["Admin"])

    assert (principal.key, principal.identity_type, principal.session_name, principal.role_id) == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jane", IdentityType.ROLE_SESSION, "jane", None)


def test_sso_role_without_session_context_still_counts_as_sso() -> None:
    identity = {
        "type": "AssumedRole",
        "principalId": f"{SSO_ROLE_ID}:Dave@Example.com",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/Dave@Example.com",
        "accountId": ACCOUNT,
    }

    assert principal_from_identity(identity) == Principal(
        key="sso:dave@example.com",
        identity_type=IdentityType.SSO_USER,
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/Dave@Example.com",
        account_id=ACCOUNT,
        display_name="Dave@Example.com",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{SSO_ROLE}",
        role_id=SSO_ROLE_ID,
        session_name="Dave@Example.com",
    )


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "AWSService", "invokedBy": "bedrock.amazonaws.com"},
        {"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "444455556666"},
        {"type": "WebIdentityUser", "arn": "", "accountId": ACCOUNT},
        {"arn": f"arn:aws:iam::{ACCOUNT}:user/x", "accountId": ACCOUNT},
    ],
)
def test_unsupported_identity_type_raises(identity: dict[str, Any]) -> None:
    with pytest.raises(IdentityError, match=r"unsupported userIdentity\.type"):
        principal_from_identity(identity)


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "Root", "accountId": ACCOUNT},
        {"type": "FederatedUser", "accountId": ACCOUNT},
        {"type": "AssumedRole", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin", "accountId": ACCOUNT},
        {"type": "IAMUser", "arn": 42, "accountId": ACCOUNT},
        {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/x", "accountId": 111122223333},
    ],
)
def test_incomplete_identities_raise(identity: dict[str, Any]) -> None:
    with pytest.raises(IdentityError):
        principal_from_identity(identity)
