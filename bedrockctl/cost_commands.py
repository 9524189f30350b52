"""`bedrockctl cost`: what Bedrock cost over quota days, by person, team, model or day (table or CSV).

Read from MySQL `invocation_logs` (exact dollars; one row per metered call), over the quota days
[--from, --to] in QUOTA_TIMEZONE — by default this month so far. The table shows cents; the CSV keeps
every digit (nano-dollars), for a spreadsheet reconciling it against the AWS bill.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bedrock_usage import db
from bedrock_usage.commands import CommandGroup
from bedrock_usage.cost_report import HEADERS, By, Line, spend, total
from bedrock_usage.periods import local_day
from bedrock_usage.printing import table
from bedrock_usage.quota import format_dollars
from bedrock_usage.settings import SharedSettings

COLUMNS = ("requests", "input", "output", "cache read", "cache write 5m", "cache write 1h", "cost usd", "share")
CSV_COLUMNS = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
               "cache_write_1h_tokens", "cost_usd", "share")


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not a date (YYYY-MM-DD)") from None


def days(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """[from, to]: by default the 1st of this month to today; a bad date or an empty span is an error."""
    start = _day(args.from_, "--from") or (_day(args.to, "--to") or today).replace(day=1)
    end = _day(args.to, "--to") or today
    if start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    return start, end


def _percent(share: Decimal) -> str:
    return format((share * 100).quantize(Decimal("0.1"), ROUND_HALF_UP), "f") + "%"


def rows_for_table(lines: Sequence[Line], width: int) -> list[list[Any]]:
    whole = total(lines)
    body = [[*x.key, x.requests, *x.tokens, format_dollars(x.cost), _percent(x.share(whole.cost))] for x in lines]
    return [*body, ["total", *[""] * (width - 1), whole.requests, *whole.tokens, format_dollars(whole.cost),
                    "100.0%" if whole.cost else "-"]]


def write_csv(lines: Sequence[Line], by: By, out: Any) -> None:
    """Full precision: cost to the nano-dollar, share as a fraction; the totals as the last line."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADERS[by], *CSV_COLUMNS])
    whole = total(lines)
    for x in lines:
        writer.writerow([*x.key, x.requests, *x.tokens, format(x.cost, "f"),
                         format(x.share(whole.cost).quantize(Decimal("0.000001")), "f")])
    writer.writerow(["total", *[""] * (len(HEADERS[by]) - 1), whole.requests, *whole.tokens, format(whole.cost, "f"),
                     "1" if whole.cost else "0"])


def cost(args: argparse.Namespace, settings: SharedSettings) -> int:
    start, end = days(args, local_day(datetime.now(UTC), settings.quota_timezone))
    by = By(args.by)
    conn = db.connect(settings.mysql)
    try:
        lines = spend(conn, start, end, by)
    finally:
        conn.close()
    if args.csv:
        write_csv(lines, by, sys.stdout)
        return 0
    print(f"Bedrock spend {start} to {end} (quota days in {settings.quota_timezone.key}), by {by.value};"
          " metered calls only (see the unmetered calls on the dashboard)")
    print(table((*HEADERS[by], *COLUMNS), rows_for_table(lines, len(HEADERS[by]))))
    return 0


def register(commands: CommandGroup) -> None:
    p = commands.add("cost", cost, "spend from the invocation logs over quota days, by person, team, model or day",
                     settings=SharedSettings)
    p.add_argument("--from", dest="from_", metavar="D", help="first quota day, YYYY-MM-DD (default: the 1st of"
                                                            " this month)")
    p.add_argument("--to", metavar="D", help="last quota day, YYYY-MM-DD, included (default: today)")
    p.add_argument("--by", choices=[b.value for b in By], default=By.TEAM.value)
    p.add_argument("--csv", action="store_true", help="CSV on stdout with a header, full precision")
