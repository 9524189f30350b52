"""The consumer's `bedrockctl` commands: `consumer run` (the service), `ingest` (files through the same
processor: backfills, audits), `counters rebuild` (Redis from MySQL) and `counters marker` (does Redis hold the
marker of record?)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bedrock_usage import db, redis_marker
from bedrock_usage.commands import CommandGroup
from bedrock_usage.keys import Keys
from bedrock_usage.redis_state import redis_client
from consumer import daemon
from consumer.ingest import ingest_paths
from consumer.rebuild import rebuild
from consumer.settings import ConsumerSettings


def counters_rebuild(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    report = rebuild(settings)
    print(f"rebuilt from MySQL: {report.rows} calls and invocation logs replayed into Redis, {report.new} were missing"
          f" (periods from {report.since.isoformat()})")
    return 0


def counters_marker(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    """The marker of record, what Redis holds, and the last rebuilds. Exit 1 when they differ (counting is
    then paused until a consumer, or `counters rebuild`, repairs Redis)."""
    conn = db.connect(settings.mysql)
    client = redis_client(settings)
    try:
        marker = redis_marker.read(conn)
        found = redis_marker.in_redis(client, Keys(settings.redis_key_prefix, cluster=settings.redis_cluster))
        with conn.cursor() as cur:
            cur.execute("SELECT reason, started_at, finished_at, rows_replayed, written_by FROM redis_rebuilds"
                        " ORDER BY id DESC LIMIT 5")
            rebuilds: Any = cur.fetchall()
    finally:
        conn.close()
        client.close()
    if marker is None:
        print("marker of record: none yet (the first consumer writes it)")
    else:
        print(f"marker of record: {marker.epoch} ({marker.state.value}, written {marker.written_at:%Y-%m-%d %H:%M:%S}"
              f" UTC by {marker.written_by})")
    print(f"marker in Redis:  {found or 'none'}")
    for reason, started, finished, rows, by in rebuilds:
        took = f"{(finished - started).total_seconds():.1f} s" if finished else "not finished"
        print(f"  {started:%Y-%m-%d %H:%M:%S} {reason}: {rows} rows replayed, {took}, by {by}")
    intact = marker is not None and marker.ready and found == marker.epoch
    print("Redis holds the marker of record: counting" if intact else
          "Redis does NOT hold the marker of record: nothing is counted until it is rebuilt")
    return 0 if intact else 1


def ingest(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    summary = ingest_paths(settings, [Path(p) for p in args.paths])
    print(summary.line())
    return 0


def consumer_run(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    return daemon.run(settings)


def register(commands: CommandGroup) -> None:
    counters = commands.group("counters", "Redis counters")
    counters.add("rebuild", counters_rebuild, "rebuild Redis counters from MySQL (idempotent merge)",
                 settings=ConsumerSettings)
    counters.add("marker", counters_marker, "show the Redis marker: of record (MySQL), in Redis, last rebuilds",
                 settings=ConsumerSettings)

    files = commands.add("ingest", ingest, "run event files through the processor (backfills, audits)",
                         settings=ConsumerSettings)
    files.add_argument("paths", nargs="+", metavar="PATH")

    consumer = commands.group("consumer", "the KCL consumer")
    consumer.add("run", consumer_run, "write the daemon's properties and run the KCL consumer",
                 settings=ConsumerSettings)
