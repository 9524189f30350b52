"""`bedrockctl prices`: prices import / show / missing.

`prices sync` (bedrockctl/price_sync_command.py) writes through the same `import_table`: it shows
what changes, and writes nothing with --dry-run.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path

from bedrock_usage import db, json_decimal
from bedrock_usage.commands import CommandGroup
from bedrock_usage.pricing import store
from bedrock_usage.pricing.price_file import PriceFileError, load_price_file
from bedrock_usage.pricing.rates import PARTS, PriceTable
from bedrock_usage.printing import rejected, table
from bedrock_usage.settings import SharedSettings
from bedrockctl.price_sync_command import add_sync_command


def today(settings: SharedSettings) -> date:
    """The import's day: prices without an `effective:` date apply from it. In UTC, the day a call is
    priced on (AWS bills by the UTC day)."""
    return datetime.now(UTC).date()


def write_table(settings: SharedSettings, prices: PriceTable, *, dry_run: bool, origin: str) -> int:
    """Import `prices` (from a file, or the Price List API), printing every added and changed price."""
    conn = db.connect(settings.mysql)
    try:
        report = store.import_table(conn, prices, dry_run=dry_run)
    finally:
        conn.close()
    lines = report.lines()
    if lines:
        print("\n".join(lines))
    if dry_run:
        print(f"dry run: {report.summary()} in {origin}, nothing written")
    else:
        print(f"imported {origin}: {report.summary()}")
    return 0


def prices_import(args: argparse.Namespace, settings: SharedSettings) -> int:
    try:
        prices = load_price_file(Path(args.file), today=today(settings))
    except PriceFileError as error:
        return rejected(args.file, error.problems)
    return write_table(settings, prices, dry_run=args.dry_run, origin=args.file)


def prices_show(args: argparse.Namespace, settings: SharedSettings) -> int:
    at = date.fromisoformat(args.at) if args.at else today(settings)
    conn = db.connect(settings.mysql)
    try:
        shown = store.rows(conn, at=at, model=args.model)
    finally:
        conn.close()
    if args.json:
        print(json_decimal.dumps([p.as_dict() for p in shown], indent=2))
        return 0
    print(f"prices in force on {at.isoformat()} (USD per million tokens; PRICE_FALLBACK={settings.price_fallback})")
    print(table(("model", "region", "scope", "tier", *PARTS, "from"),
                [(p.model, p.region, p.scope, p.tier, *(json_decimal.number(getattr(p.rates, part)) for part in PARTS),
                  p.effective_from.isoformat()) for p in shown]))
    return 0


def prices_missing(args: argparse.Namespace, settings: SharedSettings) -> int:
    conn = db.connect(settings.mysql)
    try:
        unpriced = store.missing(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps([u.as_dict() for u in unpriced], indent=2))
        return 0
    if not unpriced:
        print("every model called has a price")
        return 0
    print("models without a price, charged at the fallback (PRICE_FALLBACK) — add them to a price file:")
    print(table(("model", "charged as", "calls", "first seen", "last seen", "admins told"),
                [(u.model, u.fallback_model, u.calls, _when(u.first_seen), _when(u.last_seen), _when(u.notified_at))
                 for u in unpriced]))
    return 0


def register(commands: CommandGroup) -> None:
    prices = commands.group("prices", "the price table (USD per million tokens)")
    p = prices.add("import", prices_import, "load a price file (YAML or JSON): it replaces the prices it names"
                   " from its effective date on", settings=SharedSettings)
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="check the file, print what would change, write nothing")
    p = prices.add("show", prices_show, "the prices in force", settings=SharedSettings)
    p.add_argument("--json", action="store_true")
    p.add_argument("--model", help="one base model ID")
    p.add_argument("--at", help="YYYY-MM-DD (default: today, UTC: the day AWS bills by)")
    p = prices.add("missing", prices_missing, "models charged at the fallback price because the table has none",
                   settings=SharedSettings)
    p.add_argument("--json", action="store_true")
    add_sync_command(prices)


# -- output -------------------------------------------------------------------------------------

def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None
