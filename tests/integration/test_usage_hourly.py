"""The hourly and daily summaries (usage_hourly, usage_daily) on real MariaDB and Redis: calls and logs through the
consumer's processor core, then a refresh, and the summaries equal a GROUP BY of the raw tables — after duplicates,
late logs, a batch that commits while an hour is being refreshed, and a backfill of rows that predate them."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest
import redis

from bedrock_usage import db, limits, quota_file, usage_hourly
from bedrock_usage.keys import Keys
from bedrock_usage.redis_state import RedisState
from bedrockctl.main import main
from consumer.assembly import ConsumerParts
from consumer.records import InputRecord
from devtools.settings import AllSettings
from devtools.simulate import Person, invocation_log, subscription_payload
from tests.conftest import NOW, envelope, records
from tests.conftest import test_env as settings_env

ZONE = ZoneInfo("Europe/Madrid")  # the tests' QUOTA_TIMEZONE (the settings' default)
PEOPLE = [Person("ana", sso=False), Person("ben", sso=False), Person("cleo@example.com", sso=True)]
MODELS = ["anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon.nova-lite-v1:0",
          "eu.anthropic.claude-3-haiku-20240307-v1:0"]
QUOTAS = """
teams: {research: {}, platform: {}}
users:
  "arn:aws:iam::111122223333:user/ana": {team: research}
  "arn:aws:iam::111122223333:user/ben": {team: platform}
"""
Key = tuple[Any, ...]  # (event_date, hour_utc, team, model_ref)


@pytest.fixture
def teams(mysql: pymysql.connections.Connection, redis_client: redis.Redis) -> None:
    """Ana in research, Ben in platform, Cleo in the default team: three teams in the rows."""
    limits.apply(mysql, RedisState(redis_client, Keys("test")),
                 quota_file.parse_quota_file(QUOTAS, default_team="unassigned"))


def traffic(count: int, seed: int, *, minutes_apart: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Calls of three people over several hours, three models, one in six failed; the logs of the others."""
    rng = random.Random(seed)
    calls = []
    for i in range(count):
        call = envelope(PEOPLE[i % 3], NOW - timedelta(minutes=minutes_apart * i, seconds=rng.randrange(60)),
                        seed=seed * 10_000 + i, error="ThrottlingException" if i % 6 == 5 else None)
        call["detail"]["requestParameters"]["modelId"] = MODELS[rng.randrange(3)]
        calls.append(call)
    return calls, [invocation_log(call, rng) for call in calls if not call["detail"].get("errorCode")]


def log_records(logs: list[dict[str, Any]], start: int = 5000) -> list[InputRecord]:
    return [InputRecord(subscription_payload(logs[i:i + 5]), "shardId-000000000001", str(start + i))
            for i in range(0, len(logs), 5)]


def rows(conn: pymysql.connections.Connection, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        found = list(cur.fetchall())
    conn.commit()
    return found


def expected(conn: pymysql.connections.Connection) -> dict[Key, tuple[Any, ...]]:
    """The summary as a GROUP BY of the whole raw tables computes it."""
    hour = "DATE_FORMAT(event_time, '%%Y-%%m-%%d %%H:00:00')"
    found: dict[Key, list[Any]] = {}
    for day, at, team, model, requests, failed in rows(
            conn, f"SELECT event_date, {hour} h, team, model_ref, COUNT(*), SUM(error_code IS NOT NULL)"
                  " FROM bedrock_calls GROUP BY event_date, h, team, model_ref"):
        found[(day, datetime.fromisoformat(at), team, model)] = [requests, failed, 0, 0, 0, 0, 0, Decimal(0)]
    for day, at, team, model, *sums in rows(
            conn, f"SELECT event_date, {hour} h, team, COALESCE(price_model_ref, model_ref) m, COUNT(*),"
                  " SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
                  " SUM(cache_write_5m_tokens) + SUM(cache_write_1h_tokens), SUM(cost_usd)"
                  " FROM invocation_logs GROUP BY event_date, h, team, m"):
        found.setdefault((day, datetime.fromisoformat(at), team, model), [0, 0, 0, 0, 0, 0, 0, Decimal(0)])[2:] = sums
    return {key: tuple(int(v) if i < 7 else Decimal(v) for i, v in enumerate(values)) for key, values in found.items()}


def summary(conn: pymysql.connections.Connection) -> dict[Key, tuple[Any, ...]]:
    return {tuple(row[:4]): tuple(row[4:]) for row in rows(
        conn, "SELECT event_date, hour_utc, team, model_ref, requests, failed, logs, input_tokens, output_tokens,"
              " cache_read_tokens, cache_write_tokens, cost_usd FROM usage_hourly")}


def daily(conn: pymysql.connections.Connection) -> dict[Key, tuple[Any, ...]]:
    return {tuple(row[:3]): tuple(row[3:]) for row in rows(
        conn, "SELECT event_date, team, model_ref, requests, failed, logs, input_tokens, output_tokens,"
              " cache_read_tokens, cache_write_tokens, cost_usd FROM usage_daily")}


def by_day(hourly: dict[Key, tuple[Any, ...]]) -> dict[Key, tuple[Any, ...]]:
    """The hourly expectation summed by (quota day, team, model): what usage_daily must hold."""
    found: dict[Key, list[Any]] = {}
    for (day, _, team, model), values in hourly.items():
        line = found.setdefault((day, team, model), [0] * 7 + [Decimal(0)])
        for i, value in enumerate(values):
            line[i] += value
    return {key: tuple(values) for key, values in found.items()}


def hour_team(conn: pymysql.connections.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {tuple(row[:2]): tuple(row[2:]) for row in rows(
        conn, "SELECT hour_utc, team, requests, failed, cost_usd FROM usage_hour_team")}


def by_hour_and_team(hourly: dict[Key, tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The hourly expectation summed by (hour, team): what usage_hour_team must hold."""
    found: dict[tuple[Any, ...], list[Any]] = {}
    for (_, hour, team, _), values in hourly.items():
        line = found.setdefault((hour, team), [0, 0, Decimal(0)])
        line[0] += values[0]
        line[1] += values[1]
        line[2] += values[7]
    return {key: tuple(values) for key, values in found.items()}


def dirty(conn: pymysql.connections.Connection) -> dict[datetime, int]:
    return {hour: int(version) for hour, version in rows(conn, "SELECT hour_utc, version FROM usage_hourly_dirty")}


def test_the_summary_equals_a_group_by_of_the_raw_rows_and_a_duplicate_batch_changes_nothing(
    teams: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection
) -> None:
    consumer = make_consumer()
    calls, logs = traffic(60, seed=1)
    consumer.processor.process(records(calls) + log_records(logs))
    hours = {usage_hourly.hour_of(datetime.fromisoformat(c["detail"]["eventTime"])) for c in calls}
    assert set(dirty(mysql)) == hours and len(hours) >= 5  # the batch marked exactly its hours

    assert usage_hourly.refresh(mysql, ZONE) == len(hours)
    want = expected(mysql)
    assert summary(mysql) == want and dirty(mysql) == {}
    assert daily(mysql) == by_day(want)
    assert hour_team(mysql) == by_hour_and_team(want)
    # Every dimension is there: three teams, three models, failed calls, tokens and cost.
    assert {key[2] for key in want} == {"research", "platform", "unassigned"}
    # Calls by the model as called, logs by the model they were priced as: the `eu.` profile's calls and its
    # base model's cost are two models.
    assert len({key[3] for key in want}) == 4
    assert sum(v[0] for v in want.values()) == 60 and sum(v[1] for v in want.values()) == 10
    assert sum(v[2] for v in want.values()) == 50 and sum(v[7] for v in want.values()) > 0

    # The same batch again (a redo after a crash): the hours are marked again, and recomputed the same.
    again = consumer.processor.process(records(calls) + log_records(logs))
    assert (again.new, again.logs_new) == (0, 0)
    assert set(dirty(mysql)) == hours
    assert usage_hourly.refresh_all(mysql, ZONE) == len(hours)
    assert summary(mysql) == want and dirty(mysql) == {} and daily(mysql) == by_day(want)


def test_a_log_arriving_after_its_call_updates_the_hour(
    teams: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection
) -> None:
    consumer = make_consumer()
    calls, logs = traffic(24, seed=2, minutes_apart=3)
    consumer.processor.process(records(calls))
    usage_hourly.refresh_all(mysql, ZONE)
    before = summary(mysql)
    assert before == expected(mysql) and sum(v[2] for v in before.values()) == 0  # requests, no cost yet

    consumer.processor.process(log_records(logs[:10]))  # some logs, a batch later
    assert dirty(mysql)
    usage_hourly.refresh_all(mysql, ZONE)
    assert summary(mysql) == expected(mysql)
    assert sum(v[2] for v in summary(mysql).values()) == 10
    consumer.processor.process(log_records(logs))  # all of them, the first ten again
    usage_hourly.refresh_all(mysql, ZONE)
    after = summary(mysql)
    assert after == expected(mysql) and sum(v[2] for v in after.values()) == len(logs)
    assert daily(mysql) == by_day(after)
    assert hour_team(mysql) == by_hour_and_team(after)
    assert _requests_by_hour(after) == _requests_by_hour(before)  # the calls' side unchanged


def _requests_by_hour(found: dict[Key, tuple[Any, ...]]) -> dict[datetime, tuple[int, int]]:
    by_hour: dict[datetime, tuple[int, int]] = {}
    for key, values in found.items():
        requests, failed = by_hour.get(key[1], (0, 0))
        by_hour[key[1]] = (requests + values[0], failed + values[1])
    return by_hour


def test_a_batch_committing_during_a_refresh_leaves_its_hour_dirty(
    teams: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    settings: AllSettings,
) -> None:
    consumer = make_consumer()
    calls, _ = traffic(3, seed=3, minutes_apart=0)
    consumer.processor.process(records(calls))
    (hour,) = dirty(mysql)
    # A batch in flight: a new call in the hour and its mark, not committed yet (its lock on the mark held).
    batch = db.connect(settings.mysql)
    with batch.cursor() as cur:
        cur.execute("INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id,"
                    " operation, model_ref, region) SELECT event_date, 'late-one', event_time, principal_id, team,"
                    " account_id, operation, model_ref, region FROM bedrock_calls LIMIT 1")
        usage_hourly.mark(cur, [hour])
    refreshed: list[int] = []
    refresher = threading.Thread(target=lambda: refreshed.append(usage_hourly.refresh(mysql, ZONE)))
    refresher.start()
    _wait_for_lock_wait(batch)  # the refresh has read the hour and waits to clear its mark
    batch.commit()
    refresher.join(10)
    batch.close()
    assert refreshed == [1]
    assert dirty(mysql) == {hour: 2}  # the batch's mark survived the refresh
    assert sum(v[0] for v in summary(mysql).values()) == 3  # the refresh's snapshot had not the new call
    assert usage_hourly.refresh(mysql, ZONE) == 1
    assert summary(mysql) == expected(mysql) and sum(v[0] for v in summary(mysql).values()) == 4
    assert daily(mysql) == by_day(expected(mysql))
    assert dirty(mysql) == {}


def _wait_for_lock_wait(conn: pymysql.connections.Connection) -> None:
    deadline = time.monotonic() + 10
    while True:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
                        " AND info LIKE 'DELETE FROM usage_hourly_dirty%%'")
            (waiting,) = cur.fetchone() or (0,)
        if waiting:
            return
        assert time.monotonic() < deadline, "the refresh never waited for the batch's mark"
        time.sleep(0.05)


def test_a_backfill_marks_the_hours_of_rows_older_than_the_summaries(
    teams: None, make_consumer: Callable[..., ConsumerParts], mysql: pymysql.connections.Connection,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    consumer = make_consumer()
    calls, logs = traffic(40, seed=4, minutes_apart=11)
    consumer.processor.process(records(calls) + log_records(logs))
    # As a database from before the console: rows, no summaries, nothing marked.
    rows(mysql, "DELETE FROM usage_hourly_dirty")
    first_day = min(r[0] for r in rows(mysql, "SELECT DISTINCT event_date FROM bedrock_calls"))
    assert usage_hourly.backfill(mysql, ZONE, since=first_day + timedelta(days=2)) == 0
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)
    assert main(["console", "rollup", "--backfill", "--since", first_day.isoformat()]) == 0
    out = capsys.readouterr().out
    days = {r[0] for r in rows(mysql, "SELECT DISTINCT event_date FROM bedrock_calls")}
    assert f"hours marked: {sum(_hours_in(day) for day in days)}" in out  # every hour of each quota day with rows
    assert summary(mysql) == expected(mysql) and dirty(mysql) == {}
    assert daily(mysql) == by_day(expected(mysql)) and daily(mysql)
    assert "hours refreshed: 0" in _run_rollup(capsys)  # nothing left to do


def _hours_in(day: date) -> int:
    start, end = (datetime.combine(d, clock(), ZONE).astimezone(UTC) for d in (day, day + timedelta(days=1)))
    return int((end - start) / timedelta(hours=1))


def _run_rollup(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["console", "rollup"]) == 0
    return capsys.readouterr().out


def test_the_hours_a_call_can_fall_on_are_bounded_to_its_quota_days() -> None:
    hour = datetime(2026, 3, 28, 23)  # 00:00-01:00 in Madrid, the 29th (a DST day: 02:00 becomes 03:00)
    assert usage_hourly.quota_days(hour, ZONE) == [datetime(2026, 3, 29).date()]
    # Where the offset is not whole hours, an hour spans two quota days.
    assert [d.day for d in usage_hourly.quota_days(datetime(2026, 3, 28, 18), ZoneInfo("Asia/Kolkata"))] == [28, 29]

