"""Cost quotas on real MariaDB and Redis: `limits apply` (and --dry-run, and the Redis sync) writes the
dollar columns and the nano-dollar override fields; `UsageReader` and `bedrockctl usage` read cost and
tokens from the counter hashes (written here as the counting script writes them: consumer/counters.lua) and
from `invocation_logs` before the Redis horizon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis

from bedrock_usage import limits
from bedrock_usage.keys import Keys
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Limits, Scope
from bedrock_usage.redis_state import RedisState
from bedrock_usage.usage import UsageReader
from bedrockctl.main import main
from devtools.settings import AllSettings
from tests.conftest import DAY, MONTH
from tests.conftest import test_env as settings_env

ALICE = "arn:aws:iam::111122223333:user/alice"
BOB = "sso:bob@example.com"
USD = 10**9
QUOTAS = f"""
teams:
  research: {{daily_limit: 100, daily_cost_limit_usd: 200, monthly_cost_limit_usd: 2500.75}}
users:
  "{ALICE}": {{team: research, daily_cost_limit_usd: 12.5, monthly_cost_limit_usd: 300}}
  "{BOB}": {{team: research, monthly_limit: 900}}
"""


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, mysql: pymysql.connections.Connection,
       redis_client: redis.Redis) -> Iterator[pymysql.connections.Connection]:
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)
    with mysql.cursor() as cur:  # the shared fixture empties neither of these
        cur.execute("UPDATE directory_state SET version = 0, identity_center = NULL WHERE id = 1")
        cur.execute("DELETE FROM invocation_logs")
    mysql.commit()
    yield mysql
    with mysql.cursor() as cur:
        cur.execute("DELETE FROM invocation_logs")
    mysql.commit()


def rows(conn: pymysql.connections.Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        found = list(cur.fetchall())
    conn.commit()
    return found


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str, text: str | None = None) -> str:
    if text is not None:
        (tmp_path / "q.yaml").write_text(text)
    capsys.readouterr()
    assert main([a.replace("FILE", str(tmp_path / "q.yaml")) for a in argv]) == 0
    return capsys.readouterr().out


def state(client: redis.Redis) -> RedisState:
    return RedisState(client, Keys("test"))


def test_apply_writes_dollars_to_mysql_and_nano_dollars_to_the_redis_overrides(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    assert "+ team research: daily 100, daily cost $200.00, monthly cost $2500.75" in out
    assert f"+ person {ALICE}: team research, daily cost $12.50, monthly cost $300.00" in out

    assert rows(db, "SELECT quota_key, daily_cost_limit_usd, monthly_cost_limit_usd FROM principals"
                    " ORDER BY quota_key") == [(ALICE, Decimal("12.5000"), Decimal("300.0000")), (BOB, None, None)]
    assert rows(db, "SELECT daily_cost_limit_usd, monthly_cost_limit_usd FROM teams") == [
        (Decimal("200.0000"), Decimal("2500.7500"))]
    # The fields the counting script reads (Limits.fields), cost in nano-dollars.
    assert redis_client.hgetall(Keys("test").limits(Scope.USER, ALICE)) == {
        b"daily_cost": b"12500000000", b"monthly_cost": b"300000000000"}
    assert state(redis_client).limit_overrides(Scope.TEAM, "research") == Limits(100, None, 200 * USD, 2500_750_000_000)
    assert state(redis_client).limit_overrides(Scope.USER, BOB) == Limits(None, 900)

    # Someone the file no longer gives a cost limit goes back to the default, in MySQL and Redis.
    out = run(capsys, tmp_path, "limits", "apply", "FILE",
              text=QUOTAS.replace(", daily_cost_limit_usd: 12.5, monthly_cost_limit_usd: 300", ""))
    assert f"~ person {ALICE}: daily cost $12.50 → default, monthly cost $300.00 → default" in out
    assert rows(db, "SELECT daily_cost_limit_usd, monthly_cost_limit_usd FROM principals WHERE quota_key = %s",
                ALICE) == [(None, None)]
    assert redis_client.exists(Keys("test").limits(Scope.USER, ALICE)) == 0
    out = run(capsys, tmp_path, "limits", "apply", "FILE", text=f'users:\n  "{BOB}": {{}}\n')
    assert "- team research: daily 100 → default, daily cost $200.00 → default, monthly cost $2500.75 → default" in out
    assert rows(db, "SELECT daily_request_limit, daily_cost_limit_usd, monthly_cost_limit_usd FROM teams") == [
        (None, None, None)]
    assert state(redis_client).limit_overrides(Scope.TEAM, "research") == Limits(None, None)


def test_a_person_with_only_a_cost_limit_is_cleared_when_the_file_drops_them(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    carol = "arn:aws:iam::111122223333:user/carol"
    run(capsys, tmp_path, "limits", "apply", "FILE", text=f'users:\n  "{carol}": {{monthly_cost_limit_usd: 80}}\n')
    assert state(redis_client).limit_overrides(Scope.USER, carol) == Limits(None, None, None, 80 * USD)
    out = run(capsys, tmp_path, "limits", "apply", "FILE", text=f'users:\n  "{BOB}": {{}}\n')
    assert f"- person {carol}: monthly cost $80.00 → default" in out
    assert rows(db, "SELECT monthly_cost_limit_usd FROM principals WHERE quota_key = %s", carol) == [(None,)]
    assert state(redis_client).limit_overrides(Scope.USER, carol) == Limits(None, None)


def test_dry_run_shows_cost_changes_in_dollars_and_writes_nothing(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    before = (rows(db, "SELECT * FROM principals ORDER BY id"), rows(db, "SELECT * FROM teams"),
              {k: redis_client.dump(k) for k in sorted(redis_client.keys("*"))})
    changed = QUOTAS.replace("daily_cost_limit_usd: 12.5,", "daily_cost_limit_usd: 12.3456,").replace(
        "monthly_cost_limit_usd: 2500.75", "monthly_cost_limit_usd: 2500.70")
    out = run(capsys, tmp_path, "limits", "apply", "FILE", "--dry-run", text=changed)
    assert out.splitlines() == [
        "~ team research: monthly cost $2500.75 → $2500.70",
        f"~ person {ALICE}: daily cost $12.50 → $12.3456",  # exact: never rounded to cents
        f"dry run: 2 changes in {tmp_path / 'q.yaml'}, nothing written",
    ]
    assert before == (rows(db, "SELECT * FROM principals ORDER BY id"), rows(db, "SELECT * FROM teams"),
                      {k: redis_client.dump(k) for k in sorted(redis_client.keys("*"))})
    # The same amount written differently is no change (12.5 and 12.50 are one limit).
    same = QUOTAS.replace("12.5,", "12.50,").replace("300}", "300.0000}")
    assert run(capsys, tmp_path, "limits", "apply", "FILE", "--dry-run", text=same).splitlines()[0] == "no changes"
    version = rows(db, "SELECT version FROM directory_state")[0][0]
    run(capsys, tmp_path, "limits", "apply", "FILE", text=changed)
    assert rows(db, "SELECT version FROM principals WHERE quota_key = %s", ALICE) == [(version + 1,)]
    assert rows(db, "SELECT version FROM principals WHERE quota_key = %s", BOB) == [(1,)]  # unchanged: not stamped
    assert redis_client.hget(Keys("test").limits(Scope.USER, ALICE), "daily_cost") == b"12345600000"


def test_sync_to_redis_restores_cost_overrides_after_redis_lost_them(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    redis_client.flushdb()
    assert limits.sync_to_redis(db, state(redis_client)) == 3  # alice, bob, research
    assert state(redis_client).limit_overrides(Scope.USER, ALICE) == Limits(None, None, 12_500_000_000, 300 * USD)
    assert state(redis_client).limit_overrides(Scope.TEAM, "research") == Limits(100, None, 200 * USD,
                                                                                  2500_750_000_000)


def test_limits_show_adds_the_cost_limits_and_their_defaults(
    db: pymysql.connections.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEFAULT_TEAM_MONTHLY_COST_LIMIT_USD", "1000.5")
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    raw = run(capsys, tmp_path, "limits", "show", "--json")
    shown = json.loads(raw, parse_float=Decimal)
    assert shown["defaults"]["user"] == {"daily": 250, "monthly": 5000, "daily_cost_usd": 50,
                                         "monthly_cost_usd": 500}
    assert shown["defaults"]["team"] == {"daily": None, "monthly": None, "daily_cost_usd": None,
                                         "monthly_cost_usd": Decimal("1000.5")}
    assert shown["teams"] == [{"team": "research", "daily_limit": 100, "monthly_limit": None,
                               "daily_cost_limit_usd": 200, "monthly_cost_limit_usd": Decimal("2500.75")}]
    assert shown["users"][0] == {"principal": ALICE, "team": "research", "team_source": "quota_file",
                                 "daily_limit": None, "monthly_limit": None, "daily_cost_limit_usd": Decimal("12.5"),
                                 "monthly_cost_limit_usd": 300}
    assert '"daily_cost_limit_usd": 12.5,' in raw  # a number, not a string
    text = run(capsys, tmp_path, "limits", "show")
    assert "$50.00/day $500.00/month; team -/day -/month, -/day $1,000.50/month" in text
    assert "$2,500.75" in text and "$12.50" in text


def counters(client: redis.Redis, scope: Scope, subject: str, period: str, **fields: int) -> None:
    """What the counting script leaves in a day or month counter hash."""
    client.hset(Keys("test").counter(scope, subject, period), mapping=fields)  # type: ignore[arg-type]


def reader(conn: pymysql.connections.Connection, client: redis.Redis, **env: str) -> UsageReader:
    return UsageReader.for_settings(conn, client, AllSettings.from_env(settings_env(**env)), datetime.now(UTC))


def test_the_reader_adds_cost_tokens_cost_limits_and_a_state_over_all_four_quotas(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    today = date.fromisoformat(DAY)
    # Alice: few requests, but 85 % of her $12.50 a day spent → warning; Bob: $200 this month of $500 → ok.
    counters(redis_client, Scope.USER, ALICE, DAY, req=3, cost=10_625_000_000, **{"in": 1200, "out": 800, "cr": 300,
                                                                                 "cw5": 40, "cw1": 2})
    counters(redis_client, Scope.USER, ALICE, MONTH, req=3, cost=10_625_000_000, **{"in": 5000, "cw1": 7})
    counters(redis_client, Scope.USER, BOB, DAY, req=1, cost=1)
    counters(redis_client, Scope.USER, BOB, MONTH, req=1, cost=200 * USD)
    counters(redis_client, Scope.TEAM, "research", DAY, req=4, cost=10_625_000_001)
    counters(redis_client, Scope.TEAM, "research", MONTH, req=4, cost=2500_750_000_000)

    people = {p.principal: p for p in reader(db, redis_client).people(today)}
    alice, bob = people[ALICE], people[BOB]
    assert (alice.cost, alice.monthly_cost, alice.daily_cost_limit, alice.monthly_cost_limit) == (
        10_625_000_000, 10_625_000_000, 12_500_000_000, 300 * USD)
    assert alice.tokens == Tokens(1200, 800, 300, 40, 2) and alice.tokens.cache_write == 42
    assert alice.monthly_tokens == Tokens(input=5000, cache_write_1h=7)
    assert (alice.requests, alice.daily_limit, alice.state) == (3, 250, "warning")  # the cost quota's 85 %
    # Bob has no cost override: the settings' defaults ($50 a day, $500 a month).
    assert (bob.daily_cost_limit, bob.monthly_cost_limit, bob.monthly_cost, bob.state) == (
        50 * USD, 500 * USD, 200 * USD, "ok")
    (team,) = reader(db, redis_client).teams(today, ["research"])
    assert (team.cost, team.monthly_cost, team.daily_cost_limit, team.monthly_cost_limit, team.state) == (
        10_625_000_001, 2500_750_000_000, 200 * USD, 2500_750_000_000, "exceeded")  # the monthly cost quota
    assert team.requests == 4 and team.daily_limit == 100
    # The quotas one by one, as the reconciler walks them.
    from bedrock_usage.quota import Quota  # noqa: PLC0415

    assert [(q.value, team.usage_of(q), team.limit_of(q)) for q in Quota] == [
        ("daily_requests", 4, 100), ("monthly_requests", 4, None), ("daily_cost", 10_625_000_001, 200 * USD),
        ("monthly_cost", 2500_750_000_000, 2500_750_000_000)]


def test_someone_charged_for_logs_only_is_listed(db: pymysql.connections.Connection, redis_client: redis.Redis,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    counters(redis_client, Scope.USER, ALICE, DAY, cost=5, **{"in": 10})  # a log with no CloudTrail event yet
    assert [p.principal for p in reader(db, redis_client).people(date.fromisoformat(DAY))] == [ALICE]


def _log(conn: pymysql.connections.Connection, key: str, day: str, request_id: str, *, cost: str,
         tokens: tuple[int, int, int, int, int]) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM principals WHERE quota_key = %s", (key,))
        (principal_id,) = cur.fetchone()
        cur.execute(
            "INSERT INTO invocation_logs (event_date, event_time, request_id, principal_id, team, account_id,"
            " operation, model_ref, region, price_scope, tier, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_5m_tokens, cache_write_1h_tokens, cost_usd, price_status, cache_split) VALUES"
            " (%s, %s, %s, %s, %s, '111122223333', 'Converse', 1, 'eu-west-1', 'regional', 'standard',"
            " %s, %s, %s, %s, %s, %s, 'priced', 'body')",
            (day, f"{day} 10:00:00", request_id, principal_id, "research", *tokens, cost))
    conn.commit()


def test_before_the_redis_horizon_cost_and_tokens_come_from_invocation_logs(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    _log(db, ALICE, "2024-10-01", "r1", cost="12.500000001", tokens=(1000, 200, 30, 4, 5))
    _log(db, ALICE, "2024-10-01", "r2", cost="0.000000002", tokens=(1, 2, 3, 4, 5))
    _log(db, ALICE, "2024-10-09", "r3", cost="300", tokens=(10, 0, 0, 0, 0))
    _log(db, BOB, "2024-10-09", "r4", cost="1", tokens=(7, 0, 0, 0, 0))
    _log(db, ALICE, "2024-11-01", "r5", cost="99", tokens=(99, 0, 0, 0, 0))  # another month: not counted

    (alice,) = reader(db, redis_client).people(date(2024, 10, 1), user=ALICE)
    assert (alice.cost, alice.monthly_cost) == (12_500_000_003, 312_500_000_003)
    assert alice.tokens == Tokens(1001, 202, 33, 8, 10)
    assert alice.monthly_tokens == Tokens(1011, 202, 33, 8, 10)
    assert alice.state == "exceeded"  # $312.50 of her $300 a month
    (team,) = reader(db, redis_client).teams(date(2024, 10, 1), ["research"])
    assert (team.cost, team.monthly_cost, team.tokens.input) == (12_500_000_003, 313_500_000_003, 1001)


def test_usage_json_adds_exactly_the_cost_and_token_fields(
    db: pymysql.connections.Connection, redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, tmp_path, "limits", "apply", "FILE", text=QUOTAS)
    counters(redis_client, Scope.USER, ALICE, DAY, req=2, cost=41_200_000_000, **{
        "in": 1500, "out": 700, "cr": 90, "cw5": 12, "cw1": 3})
    counters(redis_client, Scope.USER, ALICE, MONTH, req=9, cost=123_456_789_012, **{"in": 99999})
    counters(redis_client, Scope.TEAM, "research", DAY, req=2, cost=41_200_000_000, **{"out": 700, "cw1": 3})
    counters(redis_client, Scope.TEAM, "research", MONTH, req=9, cost=123_456_789_012)

    raw = run(capsys, tmp_path, "usage", "--json", "--user", ALICE)
    (alice,) = json.loads(raw, parse_float=Decimal)
    assert set(alice) == {"principal", "display_name", "identity_type", "team", "team_status", "date", "requests",
                          "failed", "daily_limit", "monthly_requests", "monthly_limit", "state", "cost_usd",
                          "monthly_cost_usd", "daily_cost_limit_usd", "monthly_cost_limit_usd", "input_tokens",
                          "output_tokens", "cache_read_tokens", "cache_write_tokens"}
    assert {k: alice[k] for k in ("cost_usd", "monthly_cost_usd", "daily_cost_limit_usd", "monthly_cost_limit_usd",
                                  "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                                  "requests", "state")} == {
        "cost_usd": Decimal("41.2"), "monthly_cost_usd": Decimal("123.456789012"),
        "daily_cost_limit_usd": Decimal("12.5"), "monthly_cost_limit_usd": 300, "input_tokens": 1500,
        "output_tokens": 700, "cache_read_tokens": 90, "cache_write_tokens": 15, "requests": 2,
        "state": "exceeded"}  # $41.20 of $12.50 a day
    assert '"cost_usd": 41.2,' in raw and '"monthly_cost_usd": 123.456789012,' in raw  # numbers, exact digits

    (team,) = json.loads(run(capsys, tmp_path, "usage", "--teams", "--json"), parse_float=Decimal)
    assert {k: team[k] for k in ("team", "cost_usd", "monthly_cost_usd", "daily_cost_limit_usd",
                                 "monthly_cost_limit_usd", "input_tokens", "output_tokens", "cache_read_tokens",
                                 "cache_write_tokens", "members")} == {
        "team": "research", "cost_usd": Decimal("41.2"), "monthly_cost_usd": Decimal("123.456789012"),
        "daily_cost_limit_usd": 200, "monthly_cost_limit_usd": Decimal("2500.75"), "input_tokens": 0,
        "output_tokens": 700, "cache_read_tokens": 0, "cache_write_tokens": 3, "members": []}

    text = run(capsys, tmp_path, "usage")
    assert "$41.20 / $12.50" in text and "$123.46 / $300.00" in text and "$41.20 / $200.00" in text
    assert "1,500 / 700 / 90 / 15" in text and "99,999 / 0 / 0 / 0" in text
