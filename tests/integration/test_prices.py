"""The price table in real MariaDB: `prices import` (dry run, replace from the effective date on, a second
import writing nothing), PriceBook.load and its version, and `bedrockctl prices show / missing`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest

from bedrock_usage.pricing import store
from bedrock_usage.pricing.book import PriceBook
from bedrock_usage.pricing.model_ids import parse_model_id
from bedrock_usage.pricing.price_file import load_price_file, parse_price_file
from bedrock_usage.pricing.rates import Charge, PriceScope, PriceStatus, Tokens
from bedrock_usage.pricing.store import Change
from bedrockctl.main import main
from tests.conftest import test_env as settings_env

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
SHIPPED = Path(__file__).parents[2] / "infra" / "prices" / "bedrock-prices.yaml"


def price_file(effective: str | None, sonnet_input: str = "3.30", *, nova: bool = True) -> str:
    lines = ["currency: USD", "source: test prices", *([f"effective: {effective}"] if effective else []), "prices:",
             f"  - model: {SONNET}", '    region: "*"', "    scope: regional",
             f"    per_million: {{input: {sonnet_input}, output: 16.50, cache_read: 0.33, cache_write_5m: 4.125,"
             " cache_write_1h: 6.60}"]
    if nova:
        lines += [f"  - model: {NOVA}", "    region: eu-west-3", "    scope: regional", "    tier: flex",
                  "    per_million: {input: 0.40, output: 1.60, cache_read: 0.10, cache_write_5m: 0,"
                  " cache_write_1h: 0}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def conn(mysql: pymysql.connections.Connection) -> Iterator[pymysql.connections.Connection]:
    with mysql.cursor() as cur:
        cur.execute("DELETE FROM prices")
        cur.execute("DELETE FROM unpriced_models")
    mysql.commit()
    yield mysql


def table_rows(conn: Any) -> list[tuple[Any, ...]]:
    conn.rollback()  # a fresh snapshot
    with conn.cursor() as cur:
        cur.execute("SELECT model, region, scope, tier, effective_from, input, source FROM prices"
                    " ORDER BY model, effective_from")
        return list(cur.fetchall())


def load(text: str) -> Any:
    return parse_price_file(text, today=date(2026, 12, 1))


def test_dry_run_reports_and_writes_nothing(conn: Any) -> None:
    report = store.import_table(conn, load(price_file("2026-11-01")), dry_run=True)
    assert [c.change for c in report.changes] == [Change.ADDED, Change.ADDED] and not report.written
    assert report.lines()[0] == (f"+ {SONNET} * regional standard: input 3.3, output 16.5, cache_read 0.33,"
                                 " cache_write_5m 4.125, cache_write_1h 6.6 from 2026-11-01")
    assert table_rows(conn) == []


def test_import_replaces_the_prices_it_names_from_its_date_on(conn: Any) -> None:
    store.import_table(conn, load(price_file("2026-01-01", "3.00")), dry_run=False)
    store.import_table(conn, load(price_file("2026-12-01", "3.60", nova=False)), dry_run=False)
    # A correction from 2026-11-01: replaces the December row (on or after its date), keeps January's.
    report = store.import_table(conn, load(price_file("2026-11-01", "3.30", nova=False)), dry_run=False)
    (change,) = report.changes
    assert (change.change, change.before.input if change.before else None, change.replaced) == (
        Change.CHANGED, Decimal("3.00"), 1)
    assert report.lines() == [
        f"~ {SONNET} * regional standard: input 3 → 3.3 from 2026-11-01 (1 later price replaced)"]
    assert [(r[0], r[4], r[5]) for r in table_rows(conn)] == [
        (NOVA, date(2026, 1, 1), Decimal("0.400000")),  # not named by the later files: untouched
        (SONNET, date(2026, 1, 1), Decimal("3.000000")),  # before the date: past calls keep their price
        (SONNET, date(2026, 11, 1), Decimal("3.300000")),
    ]
    # Charged by the day of the call.
    book = PriceBook.load(conn, "provider")
    ref = parse_model_id(f"us.{SONNET}")
    assert book.charge(ref, "us-east-1", "standard", date(2026, 10, 31), Tokens(input=1000)).nanos == 3_000_000
    assert book.charge(ref, "us-east-1", "standard", date(2026, 12, 24), Tokens(input=1000)).nanos == 3_300_000


def test_a_second_import_of_the_same_prices_changes_nothing(conn: Any) -> None:
    store.import_table(conn, load(price_file("2026-11-01")), dry_run=False)
    before = table_rows(conn)
    version = PriceBook.load(conn, "provider").version
    # Same prices, and the same prices a month later (no effective: the day of the import): nothing to write.
    for text in (price_file("2026-11-01"), price_file("2026-12-01"), price_file(None)):
        report = store.import_table(conn, load(text), dry_run=False)
        assert [c.change for c in report.changes] == [Change.UNCHANGED, Change.UNCHANGED]
        assert report.lines() == [] and report.summary().startswith("0 added, 0 changed, 2 unchanged")
    assert table_rows(conn) == before
    assert PriceBook.load(conn, "provider").version == version


def test_price_book_version_tells_a_change_cheaply(conn: Any) -> None:
    store.import_table(conn, load(price_file("2026-11-01")), dry_run=False)
    conn.commit()
    book = PriceBook.load(conn, "provider")
    conn.rollback()
    assert book.refreshed(conn) is book
    conn.rollback()
    store.import_table(conn, load(price_file("2026-11-01", "3.45", nova=False)), dry_run=False)
    newer = book.refreshed(conn)
    assert newer is not book
    day, tokens = date(2026, 11, 2), Tokens(input=1_000_000)
    assert newer.charge(parse_model_id(SONNET), "us-east-1", "standard", day, tokens) == Charge(
        3_450_000_000, PriceStatus.PRICED, SONNET, PriceScope.REGIONAL)
    # A row edited by hand (same count, same imported_at) still changes the version.
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("UPDATE prices SET output = output + 1, imported_at = imported_at WHERE model = %s", (NOVA,))
    conn.commit()
    assert newer.refreshed(conn) is not newer


def test_the_shipped_price_file_imports(conn: Any) -> None:
    table = load_price_file(SHIPPED, today=date(2026, 12, 1))
    report = store.import_table(conn, table, dry_run=False)
    assert report.count(Change.ADDED) == len(table.entries) >= 19
    book = PriceBook.load(conn, "provider")
    tokens = Tokens(input=1_000_000, output=1_000_000)
    assert book.charge(parse_model_id(f"global.{SONNET}"), "us-east-1", "standard", date(2026, 12, 1), tokens) == \
        Charge(18_000_000_000, PriceStatus.PRICED, SONNET, PriceScope.GLOBAL)
    assert book.charge(parse_model_id(f"eu.{SONNET}"), "eu-west-1", "standard", date(2026, 12, 1), tokens).nanos == \
        19_800_000_000
    assert store.import_table(conn, table, dry_run=False).count(Change.UNCHANGED) == len(table.entries)


# -- bedrockctl --------------------------------------------------------------------------------

@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, conn: Any) -> None:
    for name, value in settings_env().items():
        monkeypatch.setenv(name, value)


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_cli_import_dry_run_then_import_then_show_json(
        env: None, conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(price_file("2026-11-01"))
    out = run(capsys, "prices", "import", str(path), "--dry-run")
    assert f"+ {SONNET} * regional standard" in out and "dry run: 2 added, 0 changed, 0 unchanged" in out
    assert table_rows(conn) == []
    out = run(capsys, "prices", "import", str(path))
    assert f"imported {path}: 2 added" in out
    shown = json.loads(run(capsys, "prices", "show", "--json", "--at", "2026-11-15"))
    assert shown == [
        {"model": NOVA, "region": "eu-west-3", "scope": "regional", "tier": "flex", "effective_from": "2026-11-01",
         "per_million": {"input": 0.4, "output": 1.6, "cache_read": 0.1, "cache_write_5m": 0, "cache_write_1h": 0},
         "currency": "USD", "source": "test prices"},
        {"model": SONNET, "region": "*", "scope": "regional", "tier": "standard", "effective_from": "2026-11-01",
         "per_million": {"input": 3.3, "output": 16.5, "cache_read": 0.33, "cache_write_5m": 4.125,
                         "cache_write_1h": 6.6},
         "currency": "USD", "source": "test prices"},
    ]
    # Numbers exactly as written, never through a float.
    raw = run(capsys, "prices", "show", "--json", "--model", SONNET)
    assert '"cache_write_5m": 4.125' in raw and json.loads(raw)[0]["model"] == SONNET
    text = run(capsys, "prices", "show", "--at", "2026-11-15")
    assert "prices in force on 2026-11-15" in text and "4.125" in text


def test_cli_show_at_a_date_shows_the_price_then_in_force(
        env: None, conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for effective, price in (("2026-01-01", "3"), ("2026-11-01", "3.30")):
        (tmp_path / "p.yaml").write_text(price_file(effective, price, nova=False))
        run(capsys, "prices", "import", str(tmp_path / "p.yaml"))
    assert json.loads(run(capsys, "prices", "show", "--json", "--at", "2026-06-30"))[0]["per_million"]["input"] == 3
    assert json.loads(run(capsys, "prices", "show", "--json", "--at", "2026-11-01"))[0]["per_million"]["input"] == 3.3


def test_cli_import_rejects_a_bad_file_whole(
        env: None, conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(price_file("2026-11-01").replace("output: 16.50", "output: -16.50").replace("USD", "EUR"))
    out = run(capsys, "prices", "import", str(path), code=2)
    assert "rejected (2 problems), nothing written" in out
    assert "prices[0].per_million.output: must be a number >= 0, got -16.50" in out
    assert table_rows(conn) == []


def test_cli_missing(env: None, conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert "every model called has a price" in run(capsys, "prices", "missing")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO unpriced_models (model, fallback_model, first_seen, last_seen, calls, notified_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s), (%s, %s, %s, %s, %s, NULL)",
                    ("mistral.mistral-large-2407-v1:0", "anthropic.claude-opus-4-1-20250805-v1:0",
                     datetime(2026, 11, 2, 9, 30), datetime(2026, 11, 20, 17, 5, 1), 42, datetime(2026, 11, 2, 9, 31),
                     "amazon.nova-mega-v1:0", NOVA, datetime(2026, 11, 21), datetime(2026, 11, 21, 8), 1))
    conn.commit()
    listed = json.loads(run(capsys, "prices", "missing", "--json"))
    assert listed == [
        {"model": "amazon.nova-mega-v1:0", "fallback_model": NOVA, "calls": 1,
         "first_seen": "2026-11-21T00:00:00+00:00", "last_seen": "2026-11-21T08:00:00+00:00", "notified_at": None},
        {"model": "mistral.mistral-large-2407-v1:0", "fallback_model": "anthropic.claude-opus-4-1-20250805-v1:0",
         "calls": 42, "first_seen": "2026-11-02T09:30:00+00:00", "last_seen": "2026-11-20T17:05:01+00:00",
         "notified_at": "2026-11-02T09:31:00+00:00"},
    ]
    text = run(capsys, "prices", "missing")
    assert "mistral.mistral-large-2407-v1:0" in text and "42" in text
