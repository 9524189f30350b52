"""The console's `bedrockctl` commands: `console run` (the service) and `console rollup` (the hourly
summaries its cost and hourly pages read, brought up to date once)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from bedrock_usage import db, usage_hourly
from bedrock_usage.commands import CommandGroup
from bedrock_usage.settings import SharedSettings
from console.settings import ConsoleSettings


def console_run(args: argparse.Namespace, settings: ConsoleSettings) -> int:
    from console import server  # noqa: PLC0415 — the web stack is loaded by the console alone, not every command

    return server.run(settings)


def console_rollup(args: argparse.Namespace, settings: SharedSettings) -> int:
    """Bring usage_hourly up to date: with --backfill, first mark every hour that has rows (a database that
    predates the summaries). Needs only the database: no console settings (it runs from cron or a shell)."""
    conn = db.connect(settings.mysql)
    try:
        if args.backfill:
            marked = usage_hourly.backfill(conn, settings.quota_timezone, args.since)
            print(f"hours marked: {marked}")
        elif args.since is not None:
            print("--since goes with --backfill", file=sys.stderr)
            return 2
        print(f"hours refreshed: {usage_hourly.refresh_all(conn, settings.quota_timezone)}")
    finally:
        conn.close()
    return 0


def register(commands: CommandGroup) -> None:
    console = commands.group("console", "the admin console (a web app)")
    console.add("run", console_run, "serve the console on CONSOLE_HOST:CONSOLE_PORT", settings=ConsoleSettings)
    rollup = console.add("rollup", console_rollup, "recompute the hourly usage summaries of every hour marked dirty",
                         settings=SharedSettings)
    rollup.add_argument("--backfill", action="store_true",
                        help="first mark every hour that has calls or logs (once, for rows older than the summaries)")
    rollup.add_argument("--since", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="with --backfill: from this quota day on")
