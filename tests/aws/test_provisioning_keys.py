"""bedrockctl user create-key | keys | revoke-key, and user delete of a user holding keys: moto's IAM for users
and groups, a stand-in for the service-specific credential calls moto lacks (tests/aws/service_credentials.py),
real MariaDB.

The commands run as bedrockctl parses them, with parts holding the stand-in instead of assembling their own."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import pymysql
import pytest

from bedrockctl.main import main, parser
from provisioning import commands, key_commands
from provisioning.parts import Parts
from tests.aws.service_credentials import MotoLacksServiceCredentials

ACCOUNT = "123456789012"  # moto's
ALICE_KEY = f"arn:aws:iam::{ACCOUNT}:user/bedrock-access/alice"

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def stand_in(stand_in_parts: tuple[Parts, MotoLacksServiceCredentials]) -> tuple[Parts, MotoLacksServiceCredentials]:
    assert main(["team", "create", "data"]) == 0
    assert main(["user", "create", "alice", "--person", "Ana García", "--team", "data"]) == 0
    return stand_in_parts


@pytest.fixture
def run(stand_in: tuple[Parts, MotoLacksServiceCredentials]) -> Run:
    works: dict[str, Callable[[Parts, Any, TextIO], int]] = {
        "create-key": key_commands.create_key, "keys": key_commands.keys, "revoke-key": key_commands.revoke_key,
        "delete": commands.user_delete}

    def command(*argv: str) -> tuple[int, str]:
        args = parser().parse_args(["user", *argv])
        out = io.StringIO()
        code = works[argv[0]](stand_in[0], args, out)
        return code, out.getvalue()

    return command


def key_rows(conn: pymysql.connections.Connection) -> list[dict[str, Any]]:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SELECT * FROM bedrock_api_keys ORDER BY created_at, credential_id")
        found = list(cur.fetchall())
    conn.commit()
    return found


def audit_rows(conn: pymysql.connections.Connection, action: str = "%key%") -> list[tuple[str, str, str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT actor, action, target, detail FROM provisioning_actions WHERE action LIKE %s"
                    " ORDER BY id", (action,))
        found = [tuple(str(v) for v in row) for row in cur.fetchall()]
    conn.commit()
    return found  # type: ignore[return-value]


def test_create_key_shows_the_secret_once_and_records_the_tool(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any) -> None:
    _, credentials = stand_in
    code, out = run("create-key", "alice", "--tool", "claude-code", "--expires-in", "30d", "--by", "ops-lead")

    assert code == 0
    [secret] = credentials.secrets_shown
    assert out.count(secret) == 1 and "shown this once" in out
    [credential_id] = credentials.held
    held = credentials.held[credential_id]
    assert (held["UserName"], held["ServiceName"], held["Status"]) == ("alice", "bedrock.amazonaws.com", "Active")
    assert (held["ExpirationDate"] - held["CreateDate"]).days == 30
    [row] = key_rows(mysql)
    assert (row["credential_id"], row["user_name"], row["quota_key"], row["tool"], row["created_by"]) == (
        credential_id, "alice", ALICE_KEY, "claude-code", "ops-lead")
    assert row["expires_at"] == held["ExpirationDate"].replace(tzinfo=None) and row["revoked_at"] is None
    [(actor, action, target, detail)] = audit_rows(mysql)
    assert (actor, action, target) == ("ops-lead", "user create-key", "alice")
    assert f"credential {credential_id}" in detail and "record the key as for claude-code" in detail
    assert secret not in detail and secret not in json.dumps(row, default=str)

    code, listed = run("keys", "alice")  # the secret is never shown again
    assert code == 0 and secret not in listed and credential_id in listed and "claude-code" in listed
    [shown] = json.loads(run("keys", "alice", "--json")[1])
    assert (shown["credential_id"], shown["status"], shown["tool"], shown["created_by"], shown["revoked"]) == (
        credential_id, "Active", "claude-code", "ops-lead", None)
    assert shown["expires"] == str(held["ExpirationDate"].replace(tzinfo=None))


def test_create_key_dry_run_writes_nothing_and_bad_input_is_refused(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any) -> None:
    _, credentials = stand_in
    code, out = run("create-key", "alice", "--tool", "claude-code", "--dry-run")

    assert code == 0 and "dry run" in out and "expires in 90 days" in out and "nothing written" in out
    assert credentials.held == {} and credentials.secrets_shown == []
    assert key_rows(mysql) == [] and audit_rows(mysql) == []
    assert "never expires" in run("create-key", "alice", "--tool", "x", "--expires-in", "never", "--dry-run")[1]
    for argv, message in [(("bob", "--tool", "x"), "no IAM user 'bob'"),
                          (("alice", "--tool", "x", "--expires-in", "90"), "--expires-in"),
                          (("alice", "--tool", "x", "--expires-in", "0d"), "--expires-in"),
                          (("alice", "--tool", "bad\ttool"), "--tool")]:
        with pytest.raises(ValueError, match=message):
            run("create-key", *argv)
    assert credentials.held == {} and audit_rows(mysql) == []


def test_a_second_key_for_the_same_tool_is_said_and_iams_limit_of_two_is_refused_before_calling(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any) -> None:
    _, credentials = stand_in
    run("create-key", "alice", "--tool", "claude-code")
    [first] = credentials.held

    code, out = run("create-key", "alice", "--tool", "claude-code")
    assert code == 0 and f"already has an active key for claude-code ({first})" in out
    assert len(credentials.held) == 2 and len(credentials.secrets_shown) == 2
    with pytest.raises(ValueError, match="IAM's limit"):
        run("create-key", "alice", "--tool", "cursor")
    assert len(credentials.held) == 2 and len(key_rows(mysql)) == 2 and len(audit_rows(mysql)) == 2


def test_revoke_key_deletes_or_deactivates_once_and_records_it(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any) -> None:
    _, credentials = stand_in
    run("create-key", "alice", "--tool", "claude-code")
    run("create-key", "alice", "--tool", "cursor")
    code_key, cursor_key = (r["credential_id"] for r in sorted(key_rows(mysql), key=lambda r: r["tool"]))

    code, out = run("revoke-key", "alice", cursor_key, "--deactivate", "--dry-run")
    assert code == 0 and "nothing written" in out
    assert credentials.held[cursor_key]["Status"] == "Active" and len(audit_rows(mysql)) == 2

    code, out = run("revoke-key", "alice", cursor_key, "--deactivate", "--by", "sec")
    assert code == 0 and f"deactivate Bedrock API key {cursor_key}" in out
    assert credentials.held[cursor_key]["Status"] == "Inactive"
    row = {r["credential_id"]: r for r in key_rows(mysql)}[cursor_key]
    assert (row["revoked_how"], row["revoked_by"]) == ("deactivated", "sec") and row["revoked_at"] is not None
    assert "no change" in run("revoke-key", "alice", cursor_key, "--deactivate")[1]
    assert len(audit_rows(mysql)) == 3

    code, out = run("revoke-key", "alice", code_key, "--by", "sec")
    assert code == 0 and f"delete Bedrock API key {code_key}" in out and code_key not in credentials.held
    code, out = run("revoke-key", "alice", code_key)  # revoking a revoked key: no change
    assert code == 0 and "no change" in out
    assert "no change" in run("revoke-key", "alice", code_key, "--deactivate")[1]  # deleted is final
    actions = audit_rows(mysql)
    assert [(a[0], a[1]) for a in actions[2:]] == [("sec", "user revoke-key"), ("sec", "user revoke-key")]
    assert f"record {code_key} (claude-code) as deleted" in actions[-1][3]

    listed = {k["credential_id"]: k for k in json.loads(run("keys", "alice", "--json")[1])}
    assert (listed[code_key]["status"], listed[code_key]["tool"]) == ("deleted", "claude-code")
    assert listed[code_key]["revoked"].startswith("deleted ") and listed[code_key]["revoked"].endswith(" by sec")
    assert (listed[cursor_key]["status"], listed[cursor_key]["tool"]) == ("Inactive", "cursor")
    assert listed[cursor_key]["revoked"].startswith("deactivated ")

    with pytest.raises(ValueError, match="no Bedrock API key"):
        run("revoke-key", "alice", "ACCA" + "0" * 16)
    with pytest.raises(ValueError, match="credential ID"):
        run("revoke-key", "alice", "short")


def test_a_key_deleted_outside_bedrockctl_is_recorded_as_deleted_and_one_made_outside_is_listed_unrecorded(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any) -> None:
    _, credentials = stand_in
    run("create-key", "alice", "--tool", "claude-code")
    [ours] = credentials.held
    credentials.delete_service_specific_credential(UserName="alice", ServiceSpecificCredentialId=ours)
    theirs = credentials.made_elsewhere("alice")

    listed = {k["credential_id"]: k for k in json.loads(run("keys", "alice", "--json")[1])}
    assert (listed[ours]["status"], listed[ours]["revoked"]) == ("deleted", "deleted elsewhere")
    assert (listed[theirs]["status"], listed[theirs]["tool"]) == ("Active", None)

    code, out = run("revoke-key", "alice", ours, "--by", "sec")
    assert code == 0 and "IAM no longer has" in out and "as deleted" in out
    code, out = run("revoke-key", "alice", theirs)
    assert code == 0 and "no tool recorded" in out and theirs not in credentials.held


def utc_now(conn: pymysql.connections.Connection) -> datetime:
    """MySQL's clock, which stamps revoked_at."""
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(3)")
        (now,) = cur.fetchone()
    conn.commit()
    return now  # type: ignore[no-any-return]


def test_user_delete_deletes_the_keys_and_records_them_revoked_by_the_admin_once(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, credentials = stand_in
    run("create-key", "alice", "--tool", "claude-code", "--by", "ops-lead")
    run("create-key", "alice", "--tool", "cursor", "--by", "ops-lead")
    code_key, cursor_key = (r["credential_id"] for r in sorted(key_rows(mysql), key=lambda r: r["tool"]))
    run("revoke-key", "alice", cursor_key, "--deactivate", "--by", "sec")
    deactivated_at = {r["credential_id"]: r for r in key_rows(mysql)}[cursor_key]["revoked_at"]
    before = key_rows(mysql)

    code, out = run("delete", "alice", "--dry-run", "--by", "hr-admin")
    assert code == 0 and "nothing written" in out
    for expected in (f"IAM: delete Bedrock API key {code_key}", f"IAM: delete Bedrock API key {cursor_key}",
                     f"MySQL: record {code_key} (claude-code) as deleted",
                     f"MySQL: record {cursor_key} (cursor) as deleted", "IAM: delete user"):
        assert expected in out, expected
    assert sorted(credentials.held) == sorted([code_key, cursor_key])
    assert key_rows(mysql) == before and audit_rows(mysql, "user delete") == []
    assert credentials.get_user(UserName="alice")["User"]["UserName"] == "alice"

    started = utc_now(mysql)
    code, out = run("delete", "alice", "--by", "hr-admin")
    assert code == 0 and credentials.held == {}
    with pytest.raises(credentials.exceptions.NoSuchEntityException):
        credentials.get_user(UserName="alice")
    rows = {r["credential_id"]: r for r in key_rows(mysql)}
    assert {(r["revoked_how"], r["revoked_by"]) for r in rows.values()} == {("deleted", "hr-admin")}
    assert started <= rows[code_key]["revoked_at"] <= utc_now(mysql)  # when user delete deleted it
    assert rows[cursor_key]["revoked_at"] == deactivated_at  # revoked first when deactivated, as revoke-key keeps
    [(actor, action, target, detail)] = audit_rows(mysql, "user delete")
    assert (actor, action, target) == ("hr-admin", "user delete", "alice")
    for expected in (f"delete Bedrock API key {code_key}", f"record {code_key} (claude-code) as deleted",
                     f"delete Bedrock API key {cursor_key}", f"record {cursor_key} (cursor) as deleted"):
        assert expected in detail, expected

    after = key_rows(mysql)
    code, out = run("delete", "alice", "--by", "someone-else")
    assert code == 0 and "no change" in out
    assert key_rows(mysql) == after and len(audit_rows(mysql, "user delete")) == 1

    code, listed = run("keys", "alice")  # the recorded keys, shown revoked, under a line that says why
    assert code == 0 and listed.startswith("no IAM user 'alice' (deleted ") and "by hr-admin" in listed.splitlines()[0]
    shown = {k["credential_id"]: k for k in json.loads(run("keys", "alice", "--json")[1])}
    assert {k["status"] for k in shown.values()} == {"deleted"}
    assert all(k["revoked"].startswith("deleted ") and k["revoked"].endswith(" by hr-admin") for k in shown.values())
    assert "elsewhere" not in json.dumps(shown)

    assert main(["user", "info", "alice"]) == 2
    error = capsys.readouterr().err
    assert "no IAM user 'alice' (deleted " in error and "by hr-admin" in error and "user keys alice" in error
    with pytest.raises(ValueError, match="no IAM user 'bob', and no Bedrock API key is recorded"):
        run("keys", "bob")
    assert main(["user", "info", "bob"]) == 2
    assert capsys.readouterr().err.strip() == "bedrockctl: no IAM user 'bob'"


def test_user_delete_of_a_user_deleted_in_iam_records_its_keys_as_deleted(
        run: Run, stand_in: tuple[Parts, MotoLacksServiceCredentials], mysql: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, credentials = stand_in
    run("create-key", "alice", "--tool", "claude-code")
    [key] = credentials.held
    credentials.delete_service_specific_credential(UserName="alice", ServiceSpecificCredentialId=key)
    credentials.remove_user_from_group(UserName="alice", GroupName="bedrock-team-data")
    credentials.delete_user(UserName="alice")  # in the console, say
    [shown] = json.loads(run("keys", "alice", "--json")[1])
    assert shown["revoked"] == "deleted elsewhere"

    code, out = run("delete", "alice", "--by", "hr-admin")
    assert code == 0 and "no IAM user alice" in out and f"IAM no longer has {key} (deleted elsewhere)" in out
    assert f"MySQL: record {key} (claude-code) as deleted" in out
    [row] = key_rows(mysql)
    assert (row["revoked_how"], row["revoked_by"]) == ("deleted", "hr-admin") and row["revoked_at"] is not None
    assert "no change" in run("delete", "alice", "--by", "hr-admin")[1]
    assert key_rows(mysql) == [row] and len(audit_rows(mysql, "user delete")) == 1

    assert main(["user", "info", "alice"]) == 2  # this run deleted no user: it does not claim to have
    assert capsys.readouterr().err.strip() == "bedrockctl: no IAM user 'alice'"
