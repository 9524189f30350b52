"""`bedrockctl db migrate|retention`: the schema and the partitions of the call history."""

from __future__ import annotations

import argparse

from bedrock_usage import db, migrate, partitions
from bedrock_usage.commands import CommandGroup
from bedrock_usage.settings import SharedSettings


def db_migrate(args: argparse.Namespace, settings: SharedSettings) -> int:
    applied = migrate.migrate(settings.mysql)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (schema up to date)'}")
    return 0


def db_retention(args: argparse.Namespace, settings: SharedSettings) -> int:
    conn = db.connect(settings.mysql)
    try:
        dropped = partitions.drop_before(conn, args.keep_months)
        partitions.ensure_partitions(conn)
    finally:
        conn.close()
    print(f"partitions dropped: {', '.join(dropped) if dropped else 'none'}")
    return 0


def register(commands: CommandGroup) -> None:
    db_group = commands.group("db", "schema and retention")
    db_group.add("migrate", db_migrate, "apply pending migrations and extend partitions", settings=SharedSettings)
    retention = db_group.add("retention", db_retention, "drop call partitions older than N months",
                             settings=SharedSettings)
    retention.add_argument("--keep-months", type=int, required=True)
