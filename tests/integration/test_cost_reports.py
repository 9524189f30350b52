"""Issue 10, points 5 and 6 on real MariaDB: `bedrockctl cost`, calls without a cost, models without a
price alerted exactly once, and the daily summary's cost lines. Rows are inserted as the consumer writes
them (sql/010_cost.sql)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest
from prometheus_client import CollectorRegistry

from bedrock_usage import db
from bedrock_usage.db import to_db
from bedrockctl.main import main
from devtools.settings import AllSettings
from enforcement.metering_watch import FULL_EVERY_SECONDS, MeteringWatch, days_of, statement
from enforcement.metrics import EnforcerMetrics
from enforcement.unpriced_alerts import alert_unpriced
from notifier import summary
from notifier.outbox import Outbox
from notifier.recipients import routes
from notifier.render import Renderer
from tests.conftest import test_env as settings_env

MADRID = ZoneInfo("Europe/Madrid")
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def conn(mysql: pymysql.connections.Connection) -> Iterator[pymysql.connections.Connection]:
    with mysql.cursor() as cur:  # tables of issue 10 the shared fixture does not empty (yet)
        cur.execute("DELETE FROM invocation_logs")
        cur.execute("DELETE FROM unpriced_models")
    mysql.commit()
    yield mysql


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, conn: pymysql.connections.Connection) -> None:
    for name, value in settings_env(QUOTA_TIMEZONE="Europe/Madrid").items():
        monkeypatch.setenv(name, value)


def person(conn: pymysql.connections.Connection, key: str, name: str | None, team: str | None) -> int:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO principals (quota_key, identity_type, display_name, team) VALUES (%s, 'iam_user', %s,"
                    " %s)", (key, name, team))
        conn.commit()
        return int(cur.lastrowid)


def model(conn: pymysql.connections.Connection, model_id: str) -> int:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO models (model_id) VALUES (%s) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
                    (model_id,))
        conn.commit()
        return int(cur.lastrowid)


def log_row(conn: pymysql.connections.Connection, request_id: str, when: datetime, principal_id: int,  # noqa: PLR0917
            team: str, logged: str, priced: str | None, tokens: tuple[int, int, int, int, int], cost: str,
            region: str = "us-east-1") -> None:
    """One invocation_logs row as the consumer writes it (positional: the columns' order)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO invocation_logs (event_date, event_time, request_id, principal_id, team, account_id,"
            " operation, model_ref, price_model_ref, region, price_scope, tier, input_tokens, output_tokens,"
            " cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_usd, price_status, cache_split)"
            " VALUES (%s, %s, %s, %s, %s, '111122223333', 'Converse', %s, %s, %s, 'regional', 'standard',"
            " %s, %s, %s, %s, %s, %s, %s, 'body')",
            (when.astimezone(MADRID).date(), to_db(when), request_id, principal_id, team, model(conn, logged),
             model(conn, priced) if priced else None, region, *tokens, cost, "priced" if priced else "fallback"))
    conn.commit()


def call_row(conn: pymysql.connections.Connection, event_id: str, when: datetime, region: str, *,
             metered: bool, error: str | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO bedrock_calls (event_date, event_id, event_time, principal_id, team, account_id, operation,"
            " model_ref, region, request_id, error_code, input_tokens, cost_usd) VALUES (%s, %s, %s, 1, 't',"
            " '111122223333', 'Converse', 1, %s, %s, %s, %s, %s)",
            (when.astimezone(MADRID).date(), event_id, to_db(when), region, f"req-{event_id}", error,
             10 if metered else None, "0.000030000" if metered else None))
    conn.commit()


# -- bedrockctl cost ------------------------------------------------------------------------------

def _spend_rows(conn: pymysql.connections.Connection) -> None:
    ana = person(conn, "arn:aws:iam::111122223333:user/ana", "Ana García", "research")
    li = person(conn, "sso:li@example.com", "Li", "platform")
    first = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    log_row(conn, "r1", first, ana, "research", f"us.{SONNET}", SONNET, (1000, 200, 5000, 100, 0), "0.007200000")
    log_row(conn, "r2", first + timedelta(minutes=1), ana, "research", SONNET, SONNET, (10, 20, 0, 0, 40),
            "0.000594000")
    log_row(conn, "r3", first + timedelta(days=1), li, "platform", f"global.{HAIKU}", HAIKU, (300, 30, 0, 0, 0),
            "0.000450000")
    # 23:30 UTC on 3 March is the 4th in Madrid: outside --to 2026-03-03.
    log_row(conn, "r4", datetime(2026, 3, 3, 23, 30, tzinfo=UTC), li, "platform", HAIKU, HAIKU, (1, 1, 0, 0, 0),
            "9.000000000")


def test_cost_by_person_team_model_and_day(env: None, conn: pymysql.connections.Connection,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _spend_rows(conn)
    span = ["--from", "2026-03-01", "--to", "2026-03-03"]
    assert main(["cost", *span, "--by", "team"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()[3:]]
    # Dearest first, cents, share of the total; the totals line sums them.
    assert lines[0][:9] == ["research", "2", "1010", "220", "5000", "100", "40", "$0.01", "94.5%"]
    assert lines[1][:9] == ["platform", "1", "300", "30", "0", "0", "0", "$0.00", "5.5%"]
    assert lines[2] == ["total", "3", "1310", "250", "5000", "100", "40", "$0.01", "100.0%"]

    assert main(["cost", *span, "--by", "person", "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["person"] for r in table] == ["arn:aws:iam::111122223333:user/ana", "sso:li@example.com", "total"]
    assert table[0]["name"] == "Ana García" and table[0]["team"] == "research"
    # Full precision: the exact sum of the logs' DECIMAL costs, never a float.
    assert Decimal(table[0]["cost_usd"]) == Decimal("0.007794000")
    assert Decimal(table[-1]["cost_usd"]) == Decimal("0.008244000")
    assert Decimal(table[0]["share"]) + Decimal(table[1]["share"]) == Decimal("1.000000")

    assert main(["cost", *span, "--by", "model", "--csv"]) == 0
    by_model = {r["model"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert by_model[SONNET]["requests"] == "2"
    assert by_model[SONNET]["model ids logged"] == f"{SONNET} us.{SONNET}"
    assert by_model[HAIKU]["model ids logged"] == f"global.{HAIKU}"

    assert main(["cost", "--from", "2026-03-01", "--to", "2026-03-04", "--by", "day", "--csv"]) == 0
    by_day = [(r["day"], r["cost_usd"]) for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert by_day == [("2026-03-02", "0.007794000"), ("2026-03-03", "0.000450000"), ("2026-03-04", "9.000000000"),
                      ("total", "9.008244000")]


def test_cost_defaults_to_this_month_so_far(env: None, conn: pymysql.connections.Connection,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ana = person(conn, "arn:aws:iam::111122223333:user/ana", "Ana", "research")
    now = datetime.now(UTC)
    log_row(conn, "now", now - timedelta(minutes=5), ana, "research", SONNET, SONNET, (1, 1, 0, 0, 0), "1.5")
    log_row(conn, "old", now - timedelta(days=40), ana, "research", SONNET, SONNET, (1, 1, 0, 0, 0), "7")
    assert main(["cost", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["team"], Decimal(r["cost_usd"])) for r in rows] == [("research", Decimal("1.5")),
                                                                   ("total", Decimal("1.5"))]


def test_cost_with_nothing_metered_prints_a_zero_total(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--from", "2020-01-01", "--to", "2020-01-31"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "0", "$0.00", "-"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "2026-02-30"], "--from '2026-02-30' is not a date"),
    (["--to", "yesterday"], "--to 'yesterday' is not a date"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], "--from 2026-03-05 is after --to 2026-03-01"),
])
def test_bad_dates_are_a_one_line_error(env: None, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        message: str) -> None:
    assert main(["cost", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


# -- calls without a cost -------------------------------------------------------------------------

def test_unmetered_calls_are_counted_per_region_within_the_window(conn: pymysql.connections.Connection) -> None:
    now = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # the night Madrid moves to summer time
    after = 900
    call_row(conn, "a", now - timedelta(minutes=20), "eu-west-3", metered=False)  # unmetered, recent
    call_row(conn, "b", now - timedelta(hours=5), "eu-west-3", metered=False)  # unmetered, not recent
    call_row(conn, "c", now - timedelta(minutes=30), "us-east-1", metered=True)  # metered: no
    call_row(conn, "d", now - timedelta(minutes=40), "us-east-1", metered=False, error="ThrottlingException")
    call_row(conn, "e", now - timedelta(minutes=5), "us-east-1", metered=False)  # too young to say
    call_row(conn, "f", now - timedelta(hours=25), "us-east-1", metered=False)  # older than the window
    registry = CollectorRegistry()
    clock = [now]
    watch = MeteringWatch(lambda: conn, EnforcerMetrics(registry), after_seconds=after, tz=MADRID,
                          clock=lambda: clock[0])
    watch.run_once()

    def gauge(name: str, region: str) -> float | None:
        return registry.get_sample_value(name, {"region": region})

    assert gauge("bedrock_usage_unmetered_calls", "eu-west-3") == 2
    assert gauge("bedrock_usage_unmetered_calls_recent", "eu-west-3") == 1
    assert gauge("bedrock_usage_calls_recent", "eu-west-3") == 1
    assert gauge("bedrock_usage_unmetered_calls", "us-east-1") == 0
    assert gauge("bedrock_usage_calls_recent", "us-east-1") == 1

    # The logs arrive late: the region goes back to 0 (the alert resolves), it does not vanish.
    with conn.cursor() as cur:
        cur.execute("UPDATE bedrock_calls SET input_tokens = 5 WHERE region = 'eu-west-3'")
    conn.commit()
    watch.run_once()  # the hour the alert reads is counted every pass: resolved at once
    assert gauge("bedrock_usage_unmetered_calls_recent", "eu-west-3") == 0
    assert gauge("bedrock_usage_unmetered_calls", "eu-west-3") == 2  # the 24 hours: at the next full count
    clock[0] = now + timedelta(seconds=FULL_EVERY_SECONDS)
    watch.run_once()
    assert gauge("bedrock_usage_unmetered_calls", "eu-west-3") == 0


def test_the_window_lists_every_quota_day_it_touches() -> None:
    # 24 hours ending at 00:30 on 30 March in Madrid, across the 23-hour day of 29 March: three days.
    end = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)
    assert days_of(end - timedelta(hours=24), end, MADRID) == [date(2026, 3, 28), date(2026, 3, 29),
                                                                date(2026, 3, 30)]


def test_the_unmetered_query_reads_a_range_of_the_primary_key(conn: pymysql.connections.Connection) -> None:
    now = datetime.now(UTC)
    sql, params = statement(now - timedelta(hours=24), now, now - timedelta(hours=1), MADRID)
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        names = [d[0] for d in cur.description]
        plans = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.commit()
    assert plans[0]["key"] == "PRIMARY" and plans[0]["type"] == "range", plans


# -- models without a price -----------------------------------------------------------------------

def _unpriced(conn: pymysql.connections.Connection, name: str, fallback: str, calls: int) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO unpriced_models (model, fallback_model, first_seen, last_seen, calls)"
                    " VALUES (%s, %s, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), %s)", (name, fallback, calls))
    conn.commit()


def _alerts(conn: pymysql.connections.Connection) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT kind, JSON_UNQUOTE(JSON_EXTRACT(payload, '$.model')) FROM notifications ORDER BY id")
        rows = [(str(k), str(m)) for k, m in cur.fetchall()]
    conn.commit()
    return rows


def test_each_unpriced_model_is_alerted_once(conn: pymysql.connections.Connection, schema: AllSettings) -> None:
    _unpriced(conn, "anthropic.claude-future-v1:0", "anthropic.claude-opus-4-1-20250805-v1:0", 3)
    now = datetime.now(UTC)
    assert alert_unpriced(conn, now) == ["anthropic.claude-future-v1:0"]
    assert alert_unpriced(conn, now) == []  # notified_at is set: never again
    _unpriced(conn, "amazon.nova-future-v1:0", "amazon.nova-premier-v1:0", 1)
    assert alert_unpriced(conn, now + timedelta(minutes=1)) == ["amazon.nova-future-v1:0"]
    assert _alerts(conn) == [("unpriced_model", "anthropic.claude-future-v1:0"),
                             ("unpriced_model", "amazon.nova-future-v1:0")]
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM unpriced_models WHERE notified_at IS NULL")
        assert cur.fetchone() == (0,)
    conn.commit()

    # The notifier reads it back, routes it to the admins and renders it in both languages.
    settings = AllSettings.from_env(settings_env(ADMIN_EMAILS="finops@example.com", EMAIL_BACKEND="ses"))
    outbox = Outbox(db_session(schema), max_attempts=3, lease_seconds=60)
    (note, _), _ = outbox.unplanned()
    assert [r.recipient for r in routes(note, settings, [])] == ["finops@example.com"]
    renderer = Renderer("en", MADRID, MADRID)
    assert ("Model anthropic.claude-future-v1:0 has no price; its calls are charged as"
            " anthropic.claude-opus-4-1-20250805-v1:0 (the fallback). ") in renderer.render(note, "en").text.replace(
                "\n", " ")
    assert "no tiene precio" in renderer.render(note, "es").text


def db_session(settings: AllSettings) -> Any:
    from bedrock_usage.mysql_session import MySQLSession  # noqa: PLC0415

    return MySQLSession(settings.mysql)


def test_two_enforcers_alert_once(conn: pymysql.connections.Connection, schema: AllSettings) -> None:
    for i in range(20):
        _unpriced(conn, f"vendor.model-{i:02d}-v1:0", "vendor.dearest-v1:0", i + 1)
    connections = [db.connect(schema.mysql) for _ in range(4)]
    barrier = threading.Barrier(len(connections))
    found: list[list[str]] = [[] for _ in connections]

    def enforcer(index: int) -> None:
        barrier.wait()
        found[index] = alert_unpriced(connections[index], datetime.now(UTC))

    threads = [threading.Thread(target=enforcer, args=(i,)) for i in range(len(connections))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in connections:
        c.close()
    alerted = sorted(m for models in found for m in models)
    assert alerted == [f"vendor.model-{i:02d}-v1:0" for i in range(20)]  # each once, by whichever got it
    assert sorted(m for _, m in _alerts(conn)) == alerted


# -- the daily summary ----------------------------------------------------------------------------

def test_the_summary_has_the_days_spend_and_unmetered_calls_by_region(
    conn: pymysql.connections.Connection, redis_client: Any,
) -> None:
    from bedrock_usage.usage import UsageReader  # noqa: PLC0415

    settings = AllSettings.from_env(settings_env(QUOTA_TIMEZONE="Europe/Madrid"))
    ana = person(conn, "arn:aws:iam::111122223333:user/ana", "Ana", "research")
    day = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    log_row(conn, "s1", day, ana, "research", SONNET, SONNET, (1, 1, 0, 0, 0), "12.345678901")
    log_row(conn, "s2", day, ana, "research", SONNET, SONNET, (1, 1, 0, 0, 0), "0.000000099")
    log_row(conn, "s3", day + timedelta(days=1), ana, "research", SONNET, SONNET, (1, 1, 0, 0, 0), "100")
    for i, region in enumerate(["eu-west-3", "eu-west-3", "ap-south-1"]):
        call_row(conn, f"u{i}", day, region, metered=False)
    call_row(conn, "m", day, "us-east-1", metered=True)
    reader = UsageReader.for_settings(conn, redis_client, settings, day)
    payload = summary.build(conn, reader, day.date(), settings)
    assert payload["spend_usd"] == "12.345679000" and payload["metered"] == 2
    assert payload["unmetered"] == [{"region": "eu-west-3", "calls": 2}, {"region": "ap-south-1", "calls": 1}]


def test_the_dashboards_cost_panels_run_on_the_schema(conn: pymysql.connections.Connection) -> None:
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    _spend_rows(conn)
    _unpriced(conn, "vendor.new-v1:0", HAIKU, 2)
    board = Path(__file__).parents[2] / "infra" / "grafana" / "dashboards" / "bedrock-usage-control.json"
    panels = {p["title"]: p["targets"][0]["rawSql"] for p in json.loads(board.read_text())["panels"]
              if "rawSql" in p["targets"][0]}
    results = {}
    for title, sql in panels.items():
        with conn.cursor() as cur:  # the panels use the database's CURDATE(): pin it to 3 March 2026
            cur.execute(sql.replace("CURDATE()", "DATE('2026-03-03')").replace("%", "%%"))
            results[title] = cur.fetchall()
        conn.commit()
    assert [(t, str(s)) for t, s, _ in results["Spend today by team"]] == [("platform", "0.000450000")]
    assert [(t, str(s)) for t, s, _ in results["Spend this month by team"]] == [
        ("research", "0.007794000"), ("platform", "0.000450000")]
    assert [(r[0], str(r[-1])) for r in results["Top spenders this month"]] == [
        ("Ana García", "0.007794000"), ("Li", "0.000450000")]
    assert results["Top spenders this month"][0][3] == 1010 + 5000 + 100 + 40  # input, cache included
    assert [(m, str(s)) for m, s in results["Spend by model this month"]] == [
        (SONNET, "0.007794000"), (HAIKU, "0.000450000")]
    assert [r[:3] for r in results["Models without a price"]] == [("vendor.new-v1:0", HAIKU, 2)]
