"""bedrockctl team … and user … on moto's IAM, real MariaDB: what IAM and MySQL hold after each command,
a second run changing nothing, --dry-run writing nothing, and the audit rows."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pymysql
import pytest

from consumer.assembly import ConsumerParts
from devtools.simulate import Person
from provisioning import changes, users
from provisioning.parts import Parts
from tests.aws.conftest import Cli
from tests.aws.service_credentials import MotoLacksServiceCredentials
from tests.conftest import NOW, envelope, records

ACCOUNT = "123456789012"  # moto's
PATH = "/bedrock-access/"
ALICE_KEY = f"arn:aws:iam::{ACCOUNT}:user{PATH}alice"

@pytest.fixture
def cli(admin_cli: Cli) -> Cli:
    return admin_cli


def audit_rows(conn: pymysql.connections.Connection) -> list[tuple[str, str, str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT actor, action, target, detail FROM provisioning_actions ORDER BY id")
        found = [tuple(str(v) for v in row) for row in cur.fetchall()]
    conn.commit()
    return found  # type: ignore[return-value]


def principal(conn: pymysql.connections.Connection, key: str) -> dict[str, Any] | None:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SELECT team, team_source, display_name, email, tags, resolved_at, identity_type, version"
                    " FROM principals WHERE quota_key = %s", (key,))
        row = cur.fetchone()
    conn.commit()
    return row


def team_rows(conn: pymysql.connections.Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM teams ORDER BY name")
        found = [str(n) for (n,) in cur.fetchall()]
    conn.commit()
    return found


def policy_document(iam: Any, team: str) -> dict[str, Any]:
    arn = f"arn:aws:iam::{ACCOUNT}:policy{PATH}bedrock-team-{team}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return doc if isinstance(doc, dict) else json.loads(doc)


def iam_state(iam: Any) -> dict[str, Any]:
    """Everything provisioning could touch, to compare before and after a dry run."""
    return {
        "users": sorted((u["UserName"], u["Path"]) for u in iam.list_users()["Users"]),
        "groups": sorted(g["GroupName"] for g in iam.list_groups()["Groups"]),
        "policies": sorted(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]),
        "members": {g["GroupName"]: sorted(u["UserName"] for u in iam.get_group(GroupName=g["GroupName"])["Users"])
                    for g in iam.list_groups()["Groups"]},
        "tags": {u["UserName"]: iam.list_user_tags(UserName=u["UserName"])["Tags"] for u in iam.list_users()["Users"]},
    }


def test_team_create_makes_the_group_and_a_policy_for_the_chosen_models_only(cli: Cli, moto_iam: Any,
                                                                             mysql: Any) -> None:
    code, out, _ = cli("team", "create", "data", "--models", "anthropic.claude-sonnet-4*", "amazon.nova-pro*",
                       "--by", "ops-lead")

    assert code == 0 and "create group bedrock-team-data" in out
    group = moto_iam.get_group(GroupName="bedrock-team-data")["Group"]
    assert group["Path"] == PATH
    attached = moto_iam.list_attached_group_policies(GroupName="bedrock-team-data")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [f"arn:aws:iam::{ACCOUNT}:policy{PATH}bedrock-team-data"]
    invoke, keys = policy_document(moto_iam, "data")["Statement"]
    assert invoke["Effect"] == "Allow"
    assert sorted(invoke["Action"]) == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert invoke["Resource"] == [
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4*",
        "arn:aws:bedrock:*:*:inference-profile/anthropic.claude-sonnet-4*",
        "arn:aws:bedrock:*:*:inference-profile/*.anthropic.claude-sonnet-4*",
        "arn:aws:bedrock:*::foundation-model/amazon.nova-pro*",
        "arn:aws:bedrock:*:*:inference-profile/amazon.nova-pro*",
        "arn:aws:bedrock:*:*:inference-profile/*.amazon.nova-pro*",
    ]
    assert (keys["Action"], keys["Resource"]) == (["bedrock:CallWithBearerToken"], "*")
    assert team_rows(mysql) == ["data"]
    [(actor, action, target, detail)] = audit_rows(mysql)
    assert (actor, action, target) == ("ops-lead", "team create", "data")
    assert "create group" in detail and "attach" in detail and "register team data" in detail

    code, out, _ = cli("team", "create", "data", "--by", "ops-lead")  # again: nothing to do
    assert code == 0 and "no change" in out
    assert len(audit_rows(mysql)) == 1
    assert len(moto_iam.list_policy_versions(PolicyArn=attached[0]["PolicyArn"])["Versions"]) == 1


def test_team_create_without_models_uses_the_default_and_dry_run_writes_nothing(cli: Cli, moto_iam: Any,
                                                                                 mysql: Any) -> None:
    before = iam_state(moto_iam)
    code, out, _ = cli("team", "create", "ml", "--dry-run")

    assert code == 0 and "dry run" in out and "anthropic.claude-*, amazon.nova-*" in out and "nothing written" in out
    assert iam_state(moto_iam) == before
    assert team_rows(mysql) == [] and audit_rows(mysql) == []

    assert cli("team", "create", "ml")[0] == 0
    resources = policy_document(moto_iam, "ml")["Statement"][0]["Resource"]
    assert "arn:aws:bedrock:*::foundation-model/anthropic.claude-*" in resources
    assert "arn:aws:bedrock:*::foundation-model/amazon.nova-*" in resources


def test_bad_names_are_refused_before_anything_is_written(cli: Cli, moto_iam: Any, mysql: Any) -> None:
    for argv, message in [(("team", "create", "unassigned"), "DEFAULT_TEAM"),
                          (("team", "create", "da ta"), "a team name is"),
                          (("team", "create", "data", "--models", "anthropic claude"), "not a model ID pattern"),
                          (("user", "create", "alice", "--person", "Ana", "--team", "nope"), "does not exist"),
                          (("user", "create", "al/ice", "--person", "Ana", "--team", "nope"), "IAM user name")]:
        code, _, err = cli(*argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert iam_state(moto_iam)["groups"] == [] and audit_rows(mysql) == []


def test_team_policy_makes_a_new_version_and_prunes_old_ones(cli: Cli, moto_iam: Any, mysql: Any) -> None:
    cli("team", "create", "data", "--models", "anthropic.claude-*")
    arn = f"arn:aws:iam::{ACCOUNT}:policy{PATH}bedrock-team-data"
    for i in range(7):
        code, out, _ = cli("team", "policy", "data", "--models", f"amazon.nova-{i}*")
        assert code == 0 and "new default policy version" in out

    versions = moto_iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == 5  # IAM's limit, never exceeded
    assert policy_document(moto_iam, "data")["Statement"][0]["Resource"][0] == (
        "arn:aws:bedrock:*::foundation-model/amazon.nova-6*")
    code, out, _ = cli("team", "policy", "data", "--models", "amazon.nova-6*")
    assert code == 0 and "no change" in out
    assert len(moto_iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 5
    assert cli("team", "policy", "nope", "--models", "x*")[0] == 2

    code, out, _ = cli("team", "show", "data", "--json")
    shown = json.loads(out)
    assert shown["models"] == ["amazon.nova-6*"] and shown["policy_versions"] == 5 and shown["attached"]


def test_user_create_tags_the_user_puts_it_in_its_team_and_records_it_resolved(cli: Cli, moto_iam: Any,
                                                                               mysql: Any) -> None:
    cli("team", "create", "data")
    argv = ("user", "create", "alice", "--person", "Ana García", "--team", "data", "--email", "Ana@Example.com",
            "--tool", "claude-code", "--language", "es", "--by", "ops-lead")
    before = iam_state(moto_iam)
    code, out, _ = cli(*argv, "--dry-run")
    assert code == 0 and "nothing written" in out
    assert iam_state(moto_iam) == before and principal(mysql, ALICE_KEY) is None
    assert [a for _, a, _, _ in audit_rows(mysql)] == ["team create"]

    code, out, _ = cli(*argv)
    assert code == 0 and "create user alice" in out and "add alice to group bedrock-team-data" in out
    user = moto_iam.get_user(UserName="alice")["User"]
    assert user["Arn"] == ALICE_KEY and user["Path"] == PATH
    tags = {t["Key"]: t["Value"] for t in moto_iam.list_user_tags(UserName="alice")["Tags"]}
    assert tags == {"Person": "Ana García", "Team": "data", "Email": "ana@example.com", "Tool": "claude-code",
                    "Language": "es"}
    assert [g["GroupName"] for g in moto_iam.list_groups_for_user(UserName="alice")["Groups"]] == ["bedrock-team-data"]
    assert moto_iam.list_access_keys(UserName="alice")["AccessKeyMetadata"] == []
    with pytest.raises(moto_iam.exceptions.NoSuchEntityException):
        moto_iam.get_login_profile(UserName="alice")
    row = principal(mysql, ALICE_KEY)
    assert row is not None
    assert (row["team"], row["team_source"], row["display_name"], row["email"], row["identity_type"]) == (
        "data", "iam_tag", "Ana García", "ana@example.com", "iam_user")
    assert row["resolved_at"] is not None and json.loads(row["tags"])["Language"] == "es" and row["version"] > 0
    assert audit_rows(mysql)[-1][:3] == ("ops-lead", "user create", "alice")

    state, audits = iam_state(moto_iam), len(audit_rows(mysql))
    code, out, _ = cli(*argv)  # again: nothing to do
    assert code == 0 and "no change" in out
    assert iam_state(moto_iam) == state and len(audit_rows(mysql)) == audits
    assert principal(mysql, ALICE_KEY) == row

    info = json.loads(cli("user", "info", "alice", "--json")[1])
    assert (info["quota_key"], info["team"], info["resolved"], info["access_keys"]) == (ALICE_KEY, "data", True, 0)
    listed = json.loads(cli("user", "list", "--team", "data", "--json")[1])
    assert [(u["user"], u["person"], u["team"]) for u in listed] == [("alice", "Ana García", "data")]


def test_user_create_changes_only_what_differs_on_an_existing_user(cli: Cli, moto_iam: Any, mysql: Any) -> None:
    cli("team", "create", "data")
    cli("user", "create", "alice", "--person", "Ana", "--team", "data")
    code, out, _ = cli("user", "create", "alice", "--person", "Ana García", "--team", "data", "--tool", "cli")

    assert code == 0 and "tag user Person=Ana García, Tool=cli" in out and "create user" not in out
    row = principal(mysql, ALICE_KEY)
    assert row is not None and row["display_name"] == "Ana García"
    cli("team", "create", "ml")
    code, _, err = cli("user", "create", "alice", "--person", "Ana García", "--team", "ml")
    assert code == 2 and "user move alice --team ml" in err


def test_user_move_changes_group_tag_and_team_and_team_delete_waits_for_the_members(cli: Cli, moto_iam: Any,
                                                                                    mysql: Any) -> None:
    cli("team", "create", "data")
    cli("team", "create", "ml")
    cli("user", "create", "alice", "--person", "Ana", "--team", "data")
    version = principal(mysql, ALICE_KEY)["version"]  # type: ignore[index]

    code, _, err = cli("team", "delete", "data")
    assert code == 2 and "refused" in err and "alice" in err
    assert moto_iam.get_group(GroupName="bedrock-team-data")["Group"]["GroupName"] == "bedrock-team-data"

    code, out, _ = cli("user", "move", "alice", "--team", "ml", "--dry-run")
    assert code == 0 and "nothing written" in out
    assert principal(mysql, ALICE_KEY)["team"] == "data"  # type: ignore[index]

    code, out, _ = cli("user", "move", "alice", "--team", "ml")
    assert code == 0 and "remove alice from group bedrock-team-data" in out
    assert [g["GroupName"] for g in moto_iam.list_groups_for_user(UserName="alice")["Groups"]] == ["bedrock-team-ml"]
    tags = {t["Key"]: t["Value"] for t in moto_iam.list_user_tags(UserName="alice")["Tags"]}
    assert tags["Team"] == "ml"
    row = principal(mysql, ALICE_KEY)
    assert row is not None and row["team"] == "ml" and row["version"] > version
    assert "no change" in cli("user", "move", "alice", "--team", "ml")[1]

    code, out, _ = cli("team", "delete", "data", "--by", "ops-lead")
    assert code == 0
    assert [g["GroupName"] for g in moto_iam.list_groups()["Groups"]] == ["bedrock-team-ml"]
    assert [p["PolicyName"] for p in moto_iam.list_policies(Scope="Local")["Policies"]] == ["bedrock-team-ml"]
    assert team_rows(mysql) == ["ml"]
    assert audit_rows(mysql)[-1][:3] == ("ops-lead", "team delete", "data")
    assert "no change" in cli("team", "delete", "data")[1]


@pytest.fixture
def parts(cli: Cli, stand_in_parts: tuple[Parts, MotoLacksServiceCredentials]
          ) -> tuple[Parts, MotoLacksServiceCredentials]:
    return stand_in_parts


def test_user_delete_removes_everything_iam_holds_for_the_user_and_keeps_the_history(
        cli: Cli, moto_iam: Any, mysql: Any, parts: tuple[Parts, MotoLacksServiceCredentials]) -> None:
    made, credentials = parts
    cli("team", "create", "data")
    cli("user", "create", "alice", "--person", "Ana", "--team", "data")
    moto_iam.create_access_key(UserName="alice")
    moto_iam.put_user_policy(UserName="alice", PolicyName="extra", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    managed = moto_iam.create_policy(PolicyName="other", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    moto_iam.attach_user_policy(UserName="alice", PolicyArn=managed["Policy"]["Arn"])
    moto_iam.create_login_profile(UserName="alice", Password="Xx-0123456789-long")
    key_id = credentials.made_elsewhere("alice")
    other = credentials.create_service_specific_credential(  # another service's: deleted, nothing recorded
        UserName="alice", ServiceName="codecommit.amazonaws.com")["ServiceSpecificCredential"]
    other_id = other["ServiceSpecificCredentialId"]

    out = io.StringIO()
    assert changes.run(users.delete(made, "alice", actor="ops"), made.conn, actor="ops", dry_run=True, out=out) == 0
    assert "delete user" in out.getvalue() and moto_iam.get_user(UserName="alice")
    assert sorted(credentials.held) == sorted([key_id, other_id])

    out = io.StringIO()
    assert changes.run(users.delete(made, "alice", actor="ops"), made.conn, actor="ops", dry_run=False, out=out) == 0
    text = out.getvalue()
    for expected in ("remove from group bedrock-team-data", "delete inline policy extra", "detach", "delete access key",
                     f"delete Bedrock API key {key_id}", f"delete service-specific credential {other_id}",
                     "delete console password", "delete user"):
        assert expected in text, expected
    with pytest.raises(moto_iam.exceptions.NoSuchEntityException):
        moto_iam.get_user(UserName="alice")
    assert credentials.held == {}
    assert moto_iam.get_group(GroupName="bedrock-team-data")["Users"] == []
    assert principal(mysql, ALICE_KEY) is not None  # usage history stays theirs
    assert audit_rows(mysql)[-1][:3] == ("ops", "user delete", "alice")

    again = users.delete(made, "alice", actor="ops")
    assert again.changes == [] and again.notes == ["no IAM user alice"]
    assert cli("team", "delete", "data")[0] == 0  # no members left


def test_the_first_call_of_a_provisioned_person_is_charged_to_their_team(
        cli: Cli, moto_iam: Any, mysql: Any, make_consumer: Callable[..., ConsumerParts]) -> None:
    cli("team", "create", "data")
    cli("user", "create", "alice", "--person", "Ana", "--team", "data")
    event = envelope(Person("alice", sso=False, account=ACCOUNT), NOW - timedelta(minutes=1), seed=1)
    event["detail"]["userIdentity"]["arn"] = ALICE_KEY  # CloudTrail names the user with its path

    make_consumer().processor.process(records([event]))  # TEAM_TAG_LOOKUP=false: no lookup helps it

    with mysql.cursor() as cur:
        cur.execute("SELECT c.team FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
                    " WHERE p.quota_key = %s", (ALICE_KEY,))
        assert cur.fetchall() == (("data",),)
    mysql.commit()
