"""`bedrockctl prices sync [--dry-run] [--region R]`: prices from the AWS Price List API into MySQL.

Fetches every Bedrock price of the three service codes (bedrock_usage.pricing.price_list), says what it
left out and why, shows what would change against the `prices` table (added, changed old -> new, unchanged),
and without --dry-run imports the table through `bedrock_usage.pricing.store.import_table` (the same path
as `prices import FILE`: it replaces the prices it names from the table's effective date on).

Wired into the `prices` command group (bedrockctl/price_commands.py) by `add_sync_command`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from pymysql.connections import Connection

from bedrock_usage import aws, db
from bedrock_usage.commands import CommandGroup
from bedrock_usage.pricing import price_list
from bedrock_usage.pricing.store import Change, import_table
from bedrock_usage.settings import SharedSettings

HELP = "fetch Bedrock prices from the AWS Price List API, show what changed, and import them"


def add_sync_command(prices: CommandGroup) -> argparse.ArgumentParser:
    parser = prices.add("sync", prices_sync, HELP, settings=SharedSettings)
    parser.add_argument("--dry-run", action="store_true", help="fetch and show what would change, write nothing")
    parser.add_argument("--region", default="us-east-1", choices=price_list.ENDPOINT_REGIONS,
                        help="Region of the Price List endpoint to ask (its prices cover every Region)")
    return parser


def prices_sync(args: argparse.Namespace, settings: SharedSettings) -> int:
    pricing = aws.client(settings, "pricing", region=args.region)
    conn = db.connect(settings.mysql)
    try:
        return sync(conn, pricing, dry_run=args.dry_run)
    finally:
        conn.close()


def sync(conn: Connection, pricing: Any, *, dry_run: bool, out: TextIO = sys.stdout) -> int:
    """Fetch, compare, and (unless `dry_run`) import. Nothing is written when the Price List gave no prices."""
    try:
        result = price_list.fetch(pricing)
    except price_list.PriceListError as error:
        print(f"bedrockctl: {error}; nothing written", file=sys.stderr)
        return 2
    print("\n".join(result.describe()), file=out)
    table = result.table
    if not table.entries:
        print("bedrockctl: the Price List gave no Bedrock prices; nothing written", file=sys.stderr)
        return 2
    print(f"source: {table.source}; effective from {table.effective_from}", file=out)
    # The same writer as `prices import`: what changes is shown first; the table replaces the prices it
    # names from its date on, and keeps the others.
    report = import_table(conn, table, dry_run=True)
    print("\n".join([*report.lines(), report.summary()]), file=out)
    if dry_run:
        print("dry run: nothing written", file=out)
        return 0
    if report.count(Change.ADDED) or report.count(Change.CHANGED):
        import_table(conn, table, dry_run=False)
        print("written", file=out)
    return 0
