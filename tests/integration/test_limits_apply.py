"""`bedrockctl limits apply` on real MariaDB and Redis: a rejected file or a dry run writes nothing, a
real apply stamps what it changes with one directory version and stores the Identity Center rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis

from bedrock_usage import directory_state, limits
from bedrock_usage.directory_state import IdentityCenterRule
from bedrock_usage.keys import Keys
from bedrock_usage.quota_file import parse_quota_file
from bedrock_usage.redis_state import RedisState
from bedrockctl.main import main
from tests.conftest import test_env as settings_env

ALICE = "arn:aws:iam::111122223333:user/alice"
BOB = "sso:bob@example.com"
CAROL = "arn:aws:iam::111122223333:user/carol"
QUOTAS = f"""
teams:
  research: {{daily_limit: 100, monthly_limit: 2000, admins: [lead@example.com]}}
  platform: {{}}
users:
  "{ALICE}": {{team: research, daily_limit: 5, email: alice@example.com}}
  "{BOB}": {{team: platform, monthly_limit: 900}}
  "{CAROL}": {{daily_limit: 7}}
identity_center:
  store_id: d-1234567890
  region: eu-west-1
  team_from_groups:
    "bedrock-team-*": "{{name}}"
    "Research": research
"""


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, mysql: pymysql.connections.Connection,
       redis_client: redis.Redis) -> Iterator[pymysql.connections.Connection]:
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)
    with mysql.cursor() as cur:  # the shared fixture empties the tables, not the directory's state
        cur.execute("UPDATE directory_state SET version = 0, identity_center = NULL WHERE id = 1")
    mysql.commit()
    yield mysql


def rows(conn: pymysql.connections.Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        result = list(cur.fetchall())
    conn.commit()
    return result


def snapshot(conn: pymysql.connections.Connection, client: redis.Redis) -> dict[str, Any]:
    """Every row apply could write, and every Redis key with its value."""
    return {
        "principals": rows(conn, "SELECT * FROM principals ORDER BY quota_key"),
        "teams": rows(conn, "SELECT * FROM teams ORDER BY name"),
        "directory_state": rows(conn, "SELECT * FROM directory_state"),
        "redis": {key: client.dump(key) for key in sorted(client.keys("*"))},
    }


def apply_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *options: str) -> tuple[int, str, str]:
    capsys.readouterr()
    (tmp_path / "q.yaml").write_text(text)
    code = main(["limits", "apply", str(tmp_path / "q.yaml"), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def version(conn: pymysql.connections.Connection) -> int:
    return int(rows(conn, "SELECT version FROM directory_state")[0][0])


@pytest.mark.parametrize("case", [
    (f'teams: {{research: {{}}}}\nusers:\n  "{ALICE}": {{team: reserch}}\n',
     f"users.\"{ALICE}\".team: team 'reserch' is not declared under teams:"),
    (f'users:\n  "{ALICE}": {{daily_limit: 50, monthly_limit: 10}}\n',
     f'users."{ALICE}".daily_limit: 50 is above the monthly_limit 10'),
    (f'users:\n  "{ALICE}": {{email: alice.example.com}}\n',
     f"users.\"{ALICE}\".email: 'alice.example.com' is not an email address"),
    ('users:\n  "arn:aws:iam::1111:user/alice": {daily_limit: 5}\n',
     "users.\"arn:aws:iam::1111:user/alice\": 'arn:aws:iam::1111:user/alice': the account ('1111') is not 12 digits"),
    ("# everything was deleted by mistake\n", "(the file): declares no teams, no users and no identity_center"),
    (f'users:\n  "{ALICE}": {{team: unassigned}}\n', f"users.\"{ALICE}\".team: 'unassigned' is DEFAULT_TEAM"),
    ("identity_center: {store_id: d-12345}\n", "identity_center.store_id: 'd-12345' is not an Identity Store ID"),
])
def test_a_rejected_file_writes_nothing(db: pymysql.connections.Connection, redis_client: redis.Redis,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        case: tuple[str, str]) -> None:
    text, problem = case
    assert apply_file(tmp_path, capsys, QUOTAS)[0] == 0
    before = snapshot(db, redis_client)

    code, out, err = apply_file(tmp_path, capsys, text)

    assert code == 2 and out == ""
    assert err.startswith(f"bedrockctl: {tmp_path / 'q.yaml'} rejected (1 problem), nothing written:\n")
    assert f"\n  {problem}" in err
    assert snapshot(db, redis_client) == before


def test_every_problem_is_reported_and_nothing_written(db: pymysql.connections.Connection,
                                                       redis_client: redis.Redis, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(db, redis_client)
    code, _, err = apply_file(tmp_path, capsys, f'users:\n  "{ALICE}": {{team: x, email: nope, daily_limit: 0}}\n'
                                                '  "sso:": {}\n')
    assert code == 2
    assert err.splitlines() == [
        f"bedrockctl: {tmp_path / 'q.yaml'} rejected (4 problems), nothing written:",
        f"  users.\"{ALICE}\".team: team 'x' is not declared under teams: (declare it, or use --allow-new-teams)",
        f'  users."{ALICE}".daily_limit: must be a positive integer, got 0',
        f"  users.\"{ALICE}\".email: 'nope' is not an email address",
        "  users.\"sso:\": 'sso:': sso: must be followed by the user name",
    ]
    assert snapshot(db, redis_client) == before


def test_allow_new_teams_and_allow_empty(db: pymysql.connections.Connection, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = apply_file(tmp_path, capsys, f'users:\n  "{ALICE}": {{team: brand-new}}\n', "--allow-new-teams")
    assert code == 0 and f"+ person {ALICE}: team brand-new" in out
    code, out, _ = apply_file(tmp_path, capsys, "", "--allow-empty")
    assert code == 0 and f"- person {ALICE}: team brand-new (from the file) → looked up again" in out
    assert rows(db, "SELECT team, team_source FROM principals") == [(None, "default")]


def test_dry_run_prints_the_changes_and_writes_nothing(db: pymysql.connections.Connection,
                                                       redis_client: redis.Redis, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = apply_file(tmp_path, capsys, QUOTAS, "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        "+ team research: daily 100, monthly 2000, admins lead@example.com",
        "+ team platform: no limits of its own",
        f"+ person {ALICE}: team research, daily 5, email alice@example.com",
        f"+ person {BOB}: team platform, monthly 900",
        f"+ person {CAROL}: daily 7",
        "+ identity_center: store d-1234567890 in eu-west-1, 2 group rules",
        f"dry run: 6 changes in {tmp_path / 'q.yaml'}, nothing written",
    ]
    assert rows(db, "SELECT COUNT(*) FROM principals") == [(0,)] and redis_client.dbsize() == 0

    # A real apply prints the same changes.
    code, applied, _ = apply_file(tmp_path, capsys, QUOTAS)
    assert code == 0 and applied.splitlines()[:6] == out.splitlines()[:6]
    assert applied.splitlines()[6].endswith("(directory version 1)")
    before = snapshot(db, redis_client)

    changed = f"""
teams:
  research: {{daily_limit: 100, monthly_limit: 3000}}
users:
  "{ALICE}": {{team: research, daily_limit: 6}}
  "{BOB}": {{monthly_limit: 900, name: Bob}}
"""
    code, out, _ = apply_file(tmp_path, capsys, changed, "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        "~ team research: monthly 2000 → 3000, admins lead@example.com → none",
        f"~ person {ALICE}: daily 5 → 6",
        f"~ person {BOB}: team platform (from the file) → looked up again, name none → Bob",
        f"- person {CAROL}: daily 7 → default",
        "- identity_center: was store d-1234567890 in eu-west-1, 2 group rules, no Identity Store lookups",
        f"dry run: 5 changes in {tmp_path / 'q.yaml'}, nothing written",
    ]
    assert snapshot(db, redis_client) == before

    code, out, _ = apply_file(tmp_path, capsys, QUOTAS, "--dry-run")
    assert code == 0 and out.splitlines()[0] == "no changes"


def test_identity_center_is_stored_then_cleared_when_absent(db: pymysql.connections.Connection, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert apply_file(tmp_path, capsys, QUOTAS)[0] == 0
    with db.cursor() as cur:
        assert directory_state.read_state(cur) == (1, IdentityCenterRule(
            "d-1234567890", "eu-west-1", (("bedrock-team-*", "{name}"), ("Research", "research"))))
    db.commit()

    assert apply_file(tmp_path, capsys, QUOTAS.split("identity_center:", maxsplit=1)[0])[0] == 0
    with db.cursor() as cur:
        assert directory_state.read_state(cur) == (2, None)
    db.commit()


def test_one_version_per_apply_stamped_on_the_rows_it_changes(db: pymysql.connections.Connection,
                                                                redis_client: redis.Redis) -> None:
    state = RedisState(redis_client, Keys("test"))
    with db.cursor() as cur:  # someone the consumer met and resolved by their tags, before any file
        cur.execute("INSERT INTO principals (quota_key, identity_type, team, team_source, resolved_at,"
                    " tags_checked_at, version) VALUES ('arn:aws:iam::111122223333:user/dan', 'iam_user', 'ops',"
                    " 'tag', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), 0)")
    db.commit()

    def stamped() -> dict[str, int]:
        return {str(k): int(v) for k, v in rows(db, "SELECT quota_key, version FROM principals")}

    first = limits.apply(db, state, parse_quota_file(QUOTAS, default_team="unassigned"))
    assert first.version == version(db) == 1
    assert stamped() == {ALICE: 1, BOB: 1, CAROL: 1, "arn:aws:iam::111122223333:user/dan": 0}

    # Nothing changes: a version is taken, no row carries it.
    again = limits.apply(db, state, parse_quota_file(QUOTAS, default_team="unassigned"))
    assert (again.version, again.changes) == (2, ())
    assert stamped() == {ALICE: 1, BOB: 1, CAROL: 1, "arn:aws:iam::111122223333:user/dan": 0}

    # Alice's limit changes, Bob loses his team, Carol leaves the file, Dan enters it: one version, 3.
    text = QUOTAS.replace("daily_limit: 5,", "daily_limit: 6,").replace("{team: platform, monthly_limit: 900}",
                                                                         "{monthly_limit: 900}")
    text = text.replace(f'  "{CAROL}": {{daily_limit: 7}}\n', '  "arn:aws:iam::111122223333:user/dan": {name: Dan}\n')
    third = limits.apply(db, state, parse_quota_file(text, default_team="unassigned"))
    assert third.version == version(db) == 3
    assert stamped() == {ALICE: 3, BOB: 3, CAROL: 3, "arn:aws:iam::111122223333:user/dan": 3}
    assert [c.subject for c in third.changes] == [ALICE, BOB, "arn:aws:iam::111122223333:user/dan", CAROL]


def test_resolution_follows_the_team_the_file_gives(db: pymysql.connections.Connection,
                                                     redis_client: redis.Redis) -> None:
    state = RedisState(redis_client, Keys("test"))
    with db.cursor() as cur:  # seen by the consumer, not yet resolved
        cur.execute(f"INSERT INTO principals (quota_key, identity_type) VALUES ('{ALICE}', 'iam_user')")
    db.commit()

    limits.apply(db, state, parse_quota_file(QUOTAS, default_team="unassigned"))
    resolved = dict(rows(db, "SELECT quota_key, resolved_at IS NOT NULL FROM principals"))
    assert resolved == {ALICE: 1, BOB: 1, CAROL: 0}  # Carol has no team in the file: still to be looked up
    with db.cursor() as cur:
        cur.execute("UPDATE principals SET tags_checked_at = UTC_TIMESTAMP(3)")
    db.commit()

    # Alice leaves the file, Bob stays without a team: both are to be looked up again.
    text = f"teams: {{platform: {{}}}}\nusers:\n  \"{BOB}\": {{monthly_limit: 900}}\n"
    limits.apply(db, state, parse_quota_file(text, default_team="unassigned"))
    assert rows(db, "SELECT quota_key, team, team_source, resolved_at, tags_checked_at FROM principals"
                    " WHERE quota_key IN ('" + ALICE + "', '" + BOB + "') ORDER BY quota_key") == [
        (ALICE, None, "default", None, None), (BOB, None, "default", None, None)]
    (carol_checked,) = rows(db, f"SELECT tags_checked_at FROM principals WHERE quota_key = '{CAROL}'")
    assert carol_checked[0] is not None  # her team never came from the file: her lookup stands
