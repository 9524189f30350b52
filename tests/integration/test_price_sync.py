"""`prices sync` on real MariaDB: what the recorded Price List pages would change in `prices`, written only
without --dry-run (pricing GetProducts served by a botocore Stubber on a real client: moto has no Pricing)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pymysql
import pytest
from botocore.stub import Stubber

from bedrock_usage.commands import CommandGroup
from bedrockctl.price_sync_command import add_sync_command, sync
from tests.pricing_stubs import PAGES, fake_credentials, stub_client, stub_price_list

TODAY = datetime.now(UTC).date()
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
PARTS = "input, output, cache_read, cache_write_5m, cache_write_1h"


@pytest.fixture
def conn(mysql: pymysql.connections.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        pymysql.connections.Connection]:
    fake_credentials(monkeypatch)
    with mysql.cursor() as cur:
        cur.execute("DELETE FROM prices")
        cur.executemany(
            f"INSERT INTO prices (model, region, scope, tier, effective_from, {PARTS}, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test')", [
                # in force and different: changed
                (SONNET, "us-east-1", "regional", "standard", date(2025, 1, 1), 3, 15, "0.3", "3.75", 6),
                # an older row of the same price (not the one in force) and a future one: neither is compared
                (SONNET, "us-east-1", "global", "standard", date(2024, 1, 1), 9, 9, 9, 9, 9),
                (SONNET, "us-east-1", "global", "standard", TODAY - timedelta(days=1), 3, 15, "0.3", "3.75", 6),
                ("amazon.nova-pro-v1:0", "us-east-1", "regional", "standard", TODAY + timedelta(days=30),
                 1, 1, 1, 0, 0),
                # the same as the Price List: unchanged
                ("qwen.qwen3-32b-v1:0", "us-east-1", "regional", "standard", date(2025, 6, 1),
                 "0.15", "0.6", 0, 0, 0),
                # a price the Price List does not name: kept
                ("mistral.mistral-large-2407-v1:0", "*", "regional", "standard", date(2025, 6, 1), 2, 6, 0, 0, 0),
            ])
    mysql.commit()
    yield mysql


def prices(conn: pymysql.connections.Connection) -> list[tuple[object, ...]]:
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(f"SELECT model, region, scope, tier, effective_from, {PARTS} FROM prices ORDER BY 1, 2, 3, 4, 5")
        return list(cur.fetchall())


def test_dry_run_shows_what_would_change_and_writes_nothing(conn: pymysql.connections.Connection) -> None:
    before = prices(conn)
    client, stubber = stub_price_list()
    out = io.StringIO()
    with stubber:
        assert sync(conn, client, dry_run=True, out=out) == 0
    text = out.getvalue()
    assert prices(conn) == before
    assert (f"~ {SONNET} us-east-1 regional standard: input 3 → 3.3, output 15 → 16.5, cache_read 0.3 → 0.33,"
            f" cache_write_5m 3.75 → 4.125, cache_write_1h 6 → 6.6 from {TODAY}") in text
    # Nothing in force today, a future row: replaced from today on.
    assert ("~ amazon.nova-pro-v1:0 us-east-1 regional standard: input 0.8, output 3.2, cache_read 0.2,"
            f" cache_write_5m 0, cache_write_1h 0 from {TODAY} (1 later price replaced)") in text
    assert f"9 added, 2 changed, 2 unchanged, from {TODAY}" in text
    assert "unmapped title 'Claude Mythical 9': 1 products" in text
    assert "incomplete, not imported: qwen.qwen3-32b-v1:0 us-east-1 global standard: no output price" in text
    assert text.rstrip().endswith("dry run: nothing written")


def test_an_empty_price_list_writes_nothing(conn: pymysql.connections.Connection,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = prices(conn)
    client = stub_client("pricing", "eu-central-1")
    stubber = Stubber(client)
    for _ in PAGES:
        stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    with stubber:
        assert sync(conn, client, dry_run=False, out=io.StringIO()) == 2
    assert "gave no Bedrock prices; nothing written" in capsys.readouterr().err
    assert prices(conn) == before


def test_the_sync_parser_takes_the_price_list_endpoints_only() -> None:
    parser = argparse.ArgumentParser(prog="prices")
    add_sync_command(CommandGroup.root(parser))
    args = parser.parse_args(["sync", "--dry-run", "--region", "ap-south-1"])
    assert (args.dry_run, args.region, args.handler.__name__) == (True, "ap-south-1", "prices_sync")
    assert parser.parse_args(["sync"]).region == "us-east-1"
    with pytest.raises(SystemExit):
        parser.parse_args(["sync", "--region", "eu-west-1"])


def test_sync_imports_the_table_from_today(conn: pymysql.connections.Connection) -> None:
    client, stubber = stub_price_list()
    with stubber:
        assert sync(conn, client, dry_run=False, out=io.StringIO()) == 0
    rows = {row[:5]: row[5:] for row in prices(conn)}
    d = Decimal
    assert rows[(SONNET, "us-east-1", "regional", "standard", TODAY)] == (d("3.3"), d("16.5"), d("0.33"),
                                                                          d("4.125"), d("6.6"))
    assert rows[(SONNET, "us-east-1", "regional", "standard", date(2025, 1, 1))][0] == d(3)  # history kept
    assert ("mistral.mistral-large-2407-v1:0", "*", "regional", "standard", date(2025, 6, 1)) in rows
