"""bedrockctl against real MariaDB and Redis: limits, usage, ingest, rebuild, migrate."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pymysql
import pytest
import redis

from bedrock_usage.keys import Keys
from bedrock_usage.quota import Limits, Scope
from bedrock_usage.redis_state import RedisState
from bedrockctl.main import main
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.simulate import Person, invocation_log, subscription_payload
from tests.conftest import DAY, EVENTS, NOW, envelope, records
from tests.conftest import test_env as settings_env

ALICE = Person("alice", sso=False)
BOB = Person("bob@example.com", sso=True)
QUOTAS = """
teams:
  research: {daily_limit: 100, monthly_limit: 2000}
  platform: {}
users:
  "arn:aws:iam::111122223333:user/alice": {team: research, daily_limit: 5}
  "SSO:Bob@Example.com": {team: platform, monthly_limit: 900, email: bob@example.com}
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> None:
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_limits_apply_writes_mysql_and_the_redis_cache(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_client: redis.Redis,
    mysql: pymysql.connections.Connection,
) -> None:
    (tmp_path / "q.yaml").write_text(QUOTAS)
    assert "2 people" in run(capsys, "limits", "apply", str(tmp_path / "q.yaml"))
    state = RedisState(redis_client, Keys("test"))
    assert state.limit_overrides(Scope.USER, ALICE.quota_key) == Limits(5, None)
    assert state.limit_overrides(Scope.USER, "sso:bob@example.com") == Limits(None, 900)
    assert state.limit_overrides(Scope.TEAM, "research") == Limits(100, 2000)
    shown = json.loads(run(capsys, "limits", "show", "--json"))
    assert {u["principal"]: u["team"] for u in shown["users"]} == {
        ALICE.quota_key: "research", "sso:bob@example.com": "platform"}

    # Declarative: whoever leaves the file goes back to the defaults, in MySQL and in Redis.
    (tmp_path / "q.yaml").write_text("teams: {platform: {}}\nusers:\n  \"sso:bob@example.com\": {team: platform}\n")
    run(capsys, "limits", "apply", str(tmp_path / "q.yaml"))
    assert state.limit_overrides(Scope.USER, ALICE.quota_key) == Limits(None, None)
    assert state.limit_overrides(Scope.USER, "sso:bob@example.com") == Limits(None, None)
    assert state.limit_overrides(Scope.TEAM, "research") == Limits(None, None)
    with mysql.cursor() as cur:
        cur.execute("SELECT quota_key, team, team_source FROM principals ORDER BY quota_key")
        assert cur.fetchall() == ((ALICE.quota_key, None, "default"), ("sso:bob@example.com", "platform", "quota_file"))


def test_a_bad_quota_file_is_a_one_line_error(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "q.yaml").write_text("users:\n  alice: {daily_limit: 5}\n")
    assert main(["limits", "apply", str(tmp_path / "q.yaml")]) == 2
    assert "is not a quota key" in capsys.readouterr().err


def test_usage_json_reports_requests_limits_and_state(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_consumer: Callable[..., ConsumerParts],
) -> None:
    (tmp_path / "q.yaml").write_text(QUOTAS)
    run(capsys, "limits", "apply", str(tmp_path / "q.yaml"))
    consumer = make_consumer()
    events = [envelope(ALICE, NOW - timedelta(seconds=i), seed=i) for i in range(6)]
    events += [envelope(BOB, NOW, seed=50 + i) for i in range(2)]
    events.append(envelope(BOB, NOW, seed=99, error="AccessDenied"))
    consumer.processor.process(records(events))

    rows = {r["principal"]: r for r in json.loads(run(capsys, "usage", "--json"))}
    alice, bob = rows[ALICE.quota_key], rows["sso:bob@example.com"]
    assert (alice["team"], alice["date"], alice["requests"], alice["daily_limit"], alice["state"]) == (
        "research", DAY, 6, 5, "exceeded")
    assert (bob["team"], bob["requests"], bob["failed"], bob["daily_limit"], bob["monthly_limit"], bob["state"]) == (
        "platform", 2, 1, 250, 900, "ok")
    only = json.loads(run(capsys, "usage", "--json", "--team", "platform"))
    assert [r["principal"] for r in only] == ["sso:bob@example.com"]
    assert "research" in run(capsys, "usage", "--user", ALICE.quota_key)


def test_usage_teams_lists_teams_alone_with_the_people_counted_in_them(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_consumer: Callable[..., ConsumerParts],
) -> None:
    (tmp_path / "q.yaml").write_text(QUOTAS)
    run(capsys, "limits", "apply", str(tmp_path / "q.yaml"))
    carol = Person("carol", sso=False)  # in no team: listed apart, never as a team
    consumer = make_consumer()
    events = [envelope(ALICE, NOW - timedelta(seconds=i), seed=i) for i in range(3)]
    events += [envelope(BOB, NOW, seed=50), envelope(BOB, NOW, seed=51, error="ThrottlingException")]
    events += [envelope(carol, NOW, seed=70 + i) for i in range(4)]
    consumer.processor.process(records(events))

    teams = {t["team"]: t for t in json.loads(run(capsys, "usage", "--teams", "--json"))}
    assert set(teams) == {"research", "platform"}  # DEFAULT_TEAM is not a team
    assert teams["research"] == {"team": "research", "date": DAY, "requests": 3, "failed": 0, "daily_limit": 100,
                                 "monthly_requests": 3, "monthly_limit": 2000, "state": "ok",
                                 "members": [ALICE.quota_key],
                                 # No invocation logs: no cost, no tokens; no team cost quota by default.
                                 "cost_usd": 0, "monthly_cost_usd": 0, "daily_cost_limit_usd": None,
                                 "monthly_cost_limit_usd": None, "input_tokens": 0, "output_tokens": 0,
                                 "cache_read_tokens": 0, "cache_write_tokens": 0}
    assert (teams["platform"]["requests"], teams["platform"]["failed"], teams["platform"]["members"]) == (
        1, 1, ["sso:bob@example.com"])
    people = {r["principal"]: r for r in json.loads(run(capsys, "usage", "--json"))}
    assert (people[carol.quota_key]["team"], people[carol.quota_key]["team_status"]) == ("unassigned", "none")
    assert people[ALICE.quota_key]["team_status"] == "team"
    text = run(capsys, "usage")
    assert f"1 without a team (unassigned is not a team): {carol.quota_key} (none)" in text


def test_ingest_runs_files_through_the_same_core(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql: pymysql.connections.Connection,
    redis_client: redis.Redis,
) -> None:
    events = [envelope(ALICE, NOW - timedelta(seconds=i), seed=i) for i in range(5)]
    (tmp_path / "day.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\nnot json\n")
    (tmp_path / "more.jsonl.gz").write_bytes(gzip.compress(orjson.dumps(events[0]) + b"\n"))
    log_file = (EVENTS / "cloudtrail-logfile.json").read_bytes()
    (tmp_path / "trail.json.gz").write_bytes(gzip.compress(log_file))

    line = run(capsys, "ingest", str(tmp_path / "day.jsonl"), str(tmp_path / "more.jsonl.gz"),
               str(tmp_path / "trail.json.gz"))
    # The CloudTrail log file's 3 calls are from 2024: recorded in MySQL, beyond the Redis horizon.
    assert line.startswith("ingested 8 records from 3 files: 9 calls (5 new, 1 duplicates, 8 rows written,"
                           " 3 MySQL-only), 0 invocation logs (0 new, $0.00), 0 skipped, 1 dead letters;"
                           " decisions: none")
    assert RedisState(redis_client, Keys("test")).usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 5}
    with mysql.cursor() as cur:
        cur.execute("SELECT source, sequence_number, reason FROM dead_letters")
        assert cur.fetchall() == ((f"file:{tmp_path / 'day.jsonl'}", "6", "not_json"),)
    # Usage of a day Redis no longer holds comes from MySQL.
    past = {r["principal"]: r for r in json.loads(run(capsys, "usage", "--json", "--date", "2024-10-01"))}
    himan = past["arn:aws:iam::956882123456:user/himan"]
    assert (himan["requests"], himan["failed"], himan["monthly_requests"], himan["state"]) == (1, 1, 1, "ok")
    assert past["sso:alice@example.com"]["requests"] == 1
    again = run(capsys, "ingest", str(tmp_path / "day.jsonl"))
    assert again.startswith("ingested 6 records from 1 files: 5 calls (0 new, 5 duplicates, 0 rows written")


def test_counters_rebuild_restores_redis_from_mysql(
    env: None, capsys: pytest.CaptureFixture[str], make_consumer: Callable[..., ConsumerParts],
    redis_client: redis.Redis,
) -> None:
    consumer = make_consumer(DEFAULT_DAILY_REQUEST_LIMIT="3")
    consumer.processor.process(records([envelope(ALICE, NOW, seed=i) for i in range(4)]
                                      + [envelope(BOB, NOW, seed=9, error="ThrottlingException")]))
    decided = _decision_ids(redis_client)
    redis_client.flushdb()

    assert "5 calls and invocation logs replayed into Redis, 5 were missing" in run(capsys, "counters", "rebuild")
    state = RedisState(redis_client, Keys("test"))
    assert state.usage(Scope.USER, ALICE.quota_key, DAY) == {"req": 4}
    assert state.usage(Scope.USER, "sso:bob@example.com", DAY) == {"err": 1}
    assert state.usage(Scope.TEAM, "unassigned", DAY[:7]) == {"req": 4, "err": 1}
    # Decisions are not taken again; those recorded that no enforcer acted on yet are published again (the
    # stream went with the data), with the same ids.
    assert _decision_ids(redis_client) == decided and len(decided) == 3
    assert "0 were missing" in run(capsys, "counters", "rebuild")  # a merge: safe to repeat


def _decision_ids(client: redis.Redis) -> list[str]:
    return [fields[b"decision_id"].decode() for _, fields in client.xrange(Keys("test").decisions)]


def test_a_bad_setting_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WARNING_THRESHOLDS", "60,120")
    assert main(["usage"]) == 2
    assert capsys.readouterr().err.startswith("bedrockctl: bad setting: WARNING_THRESHOLDS")


def test_limits_show_includes_the_identity_center_rule(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "q.yaml").write_text(QUOTAS + 'identity_center:\n  store_id: d-1234567890\n'
                                     '  team_from_groups: {"bedrock-team-*": "{name}", "Data Science": research}\n')
    run(capsys, "limits", "apply", str(tmp_path / "q.yaml"))
    shown = json.loads(run(capsys, "limits", "show", "--json"))
    assert shown["identity_center"] == {"store_id": "d-1234567890", "region": None, "team_from_groups": [
        {"group": "bedrock-team-*", "team": "{name}"}, {"group": "Data Science", "team": "research"}]}
    assert "identity center: store d-1234567890" in run(capsys, "limits", "show")


def _logs_of(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = random.Random(3)
    return [invocation_log(call, rng) for call in calls]


def test_ingest_reads_invocation_logs_as_bedrock_delivers_them_to_s3(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql: pymysql.connections.Connection,
    redis_client: redis.Redis,
) -> None:
    calls = [envelope(ALICE, NOW - timedelta(seconds=i), seed=i) for i in range(4)]
    logs = _logs_of(calls)
    # AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<id>.json.gz: one record per line.
    (tmp_path / "20261125T1000Z_a1b2.json.gz").write_bytes(gzip.compress(b"\n".join(orjson.dumps(x) for x in logs)))
    line = run(capsys, "ingest", str(tmp_path / "20261125T1000Z_a1b2.json.gz"))
    assert "4 invocation logs (4 new, $" in line
    usage = RedisState(redis_client, Keys("test")).usage(Scope.USER, ALICE.quota_key, DAY)
    assert usage["logs"] == 4 and usage["cost"] > 0
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM invocation_logs")
        assert cur.fetchone() == (4,)
    mysql.commit()
    assert "4 invocation logs (0 new, $0.00)" in run(capsys, "ingest", str(tmp_path / "20261125T1000Z_a1b2.json.gz"))


def test_counters_rebuild_restores_cost_from_the_logs(
    env: None, capsys: pytest.CaptureFixture[str], make_consumer: Callable[..., ConsumerParts],
    redis_client: redis.Redis,
) -> None:
    calls = [envelope(ALICE, NOW, seed=i) for i in range(3)]
    consumer = make_consumer()
    consumer.processor.process([*records(calls), InputRecord(subscription_payload(_logs_of(calls)), "s", "99")])
    state = RedisState(redis_client, Keys("test"))
    before = state.usage(Scope.USER, ALICE.quota_key, DAY)
    team_before = state.usage(Scope.TEAM, "unassigned", DAY)
    redis_client.flushdb()
    run(capsys, "counters", "rebuild")
    assert state.usage(Scope.USER, ALICE.quota_key, DAY) == before
    assert state.usage(Scope.TEAM, "unassigned", DAY) == team_before
    assert before["cost"] > 0 and before["logs"] == 3
