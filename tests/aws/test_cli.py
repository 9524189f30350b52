"""bedrockctl block / unblock / status / audit / reconcile, as an admin types them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bedrock_usage.identity import IdentityType
from bedrockctl.main import main
from devtools.settings import AllSettings
from enforcement.commands import parse_duration, parse_instant
from tests.aws.conftest import World, attached_users, user_arn
from tests.conftest import test_env as _env


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for name, value in _env(DEFAULT_DAILY_REQUEST_LIMIT="10").items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        return code, capsys.readouterr().out

    return run


def test_block_for_a_duration_then_status_json_then_unblock_with_protection(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER)
    code, out = cli("block", alice, "--for", "4h", "--reason", "runaway notebook", "--by", "ops-lead")
    assert code == 0 and "blocked" in out

    code, out = cli("status", alice, "--json")
    status = json.loads(out)
    assert code == 0 and status["principal"] == alice and status["blocked"] is True
    until = datetime.fromisoformat(status["blocked_until"])
    assert timedelta(hours=3, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=4)
    assert status["reason"] == "runaway notebook" and status["protected_until"] is None
    parts = world.parts()
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"alice"}

    code, out = cli("unblock", alice, "--protect", "--reason", "script fixed", "--by", "ops-lead")
    assert code == 0 and "protected from quota blocks until" in out
    status = json.loads(cli("status", alice, "--json")[1])
    assert status["blocked"] is False and status["protected_until"] is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == set()

    code, out = cli("audit", "--principal", alice)
    assert code == 0 and "runaway notebook" in out and "script fixed" in out and "ops-lead" in out
    entries = json.loads(cli("audit", "--principal", alice, "--json")[1])
    assert [(e["action"], e["outcome"], e["actor"]) for e in entries] == [
        ("block", "applied", "ops-lead"), ("unblock", "applied", "ops-lead")]


def test_indefinite_block_and_a_listing_of_everyone_blocked(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    bob = world.person(user_arn("bob"), IdentityType.IAM_USER)
    assert cli("block", bob, "--indefinite", "--reason", "left the company")[0] == 0
    code, out = cli("status")
    assert code == 0 and bob in out and "indefinite" in out
    (row,) = json.loads(cli("status", "--json")[1])
    assert row["principal"] == bob and row["indefinite"] is True and row["blocked_until"] is None


def test_a_protected_principal_cannot_be_blocked_by_an_admin_either(world: World, cli,  # type: ignore[no-untyped-def]
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTECTED_PRINCIPALS", "arn:aws:iam::*:user/breakglass")
    ops = world.person(user_arn("breakglass"), IdentityType.IAM_USER)
    code, out = cli("block", ops, "--reason", "oops")
    assert code == 1 and "NOT blocked (protected)" in out


def test_reconcile_once_reports_what_it_fixed(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    carl = world.person(user_arn("carl"), IdentityType.IAM_USER)
    cli("block", carl, "--for", "1h", "--reason", "test")
    parts = world.parts()
    assert parts.iam is not None
    world.iam.detach_user_policy(UserName="carl", PolicyArn=parts.iam.user_policy_arn)
    code, out = cli("reconcile", "--once")
    assert code == 0 and "denies re-applied 1" in out
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"carl"}


def test_bad_durations_and_times_are_clear_errors(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    dan = world.person(user_arn("dan"), IdentityType.IAM_USER)
    assert cli("block", dan, "--for", "forever", "--reason", "x")[0] == 2
    assert cli("block", dan, "--until", "2001-01-01T00:00", "--reason", "x")[0] == 2
    with pytest.raises(ValueError, match="30m, 4h"):
        parse_duration("0h")
    assert parse_duration("90m") == timedelta(minutes=90)
    settings = AllSettings.from_env(_env())
    assert parse_instant("2026-12-01T09:00", settings) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Madrid, CET


def test_blocking_a_key_never_seen_is_refused_with_the_closest_known_keys(  # type: ignore[no-untyped-def]
        world: World, cli, capsys: pytest.CaptureFixture[str]) -> None:
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER)
    alicia = world.person(user_arn("alicia"), IdentityType.IAM_USER)
    world.person(user_arn("bob"), IdentityType.IAM_USER)
    world.iam.create_user(UserName="alcie")  # exists in IAM, but Bedrock never saw it and no file names it
    nothing = [("blocks", 0), ("enforcement_actions", 0), ("notifications", 0)]

    def written() -> list[tuple[str, int]]:
        return [(t, world.rows(f"SELECT COUNT(*) FROM {t}")[0][0]) for t, _ in nothing]

    capsys.readouterr()
    assert main(["block", user_arn("alcie"), "--reason", "typo"]) == 2
    assert capsys.readouterr().err == (
        f"bedrockctl: refused: {user_arn('alcie')!r} is not a known person (never seen, not in the quota file);"
        f" did you mean: {alice}, {alicia}? Use --force to block it anyway.\n")
    assert main(["block", user_arn("zed"), "--reason", "typo", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        f"bedrockctl: refused: {user_arn('zed')!r} is not a known person (never seen, not in the quota file)."
        " Use --force to block it anyway.\n")
    assert written() == nothing
    parts = world.parts()
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == set()

    code, out = cli("block", user_arn("alcie"), "--reason", "on purpose", "--force")
    assert code == 0 and out.startswith(f"blocked {user_arn('alcie')}")
    assert attached_users(world.iam, parts.iam.user_policy_arn) == {"alcie"}


def test_block_dry_run_says_what_would_happen_and_writes_nothing(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    alice = world.person(user_arn("alice"), IdentityType.IAM_USER)
    code, out = cli("block", alice, "--for", "2h", "--reason", "runaway notebook", "--by", "ops-lead", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"dry run: would block {alice} until ")
    assert lines[0].endswith("(reason: runaway notebook; by: ops-lead)")
    assert lines[1:] == ["  IAM: deny user:alice", "nothing written"]
    assert [world.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("blocks", "enforcement_actions",
                                                                       "notifications")] == [0, 0, 0]
    parts = world.parts()
    assert parts.iam is not None
    assert attached_users(world.iam, parts.iam.user_policy_arn) == set()

    assert cli("block", alice, "--indefinite", "--reason", "left")[0] == 0
    code, out = cli("block", alice, "--reason", "again", "--dry-run")
    assert code == 0 and "  already blocked until an admin unblocks (the later end stands)" in out.splitlines()
