"""The consumer's `bedrockctl` commands: `consumer run` (the service), `ingest` (files through the same
processor: backfills, audits) and `counters rebuild` (Redis from MySQL)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bedrock_usage.commands import CommandGroup
from consumer import daemon
from consumer.ingest import ingest_paths
from consumer.rebuild import rebuild
from consumer.settings import ConsumerSettings


def counters_rebuild(args: argparse.Namespace, settings: ConsumerSettings) -> int:
    report = rebuild(settings)
    print(f"rebuilt from MySQL: {report.rows} calls and invocation logs replayed into Redis, {report.new} were missing"
          f" (periods from {report.since.isoformat()})")
    return 0


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

    files = commands.add("ingest", ingest, "run event files through the processor (backfills, audits)",
                         settings=ConsumerSettings)
    files.add_argument("paths", nargs="+", metavar="PATH")

    consumer = commands.group("consumer", "the KCL consumer")
    consumer.add("run", consumer_run, "write the daemon's properties and run the KCL consumer",
                 settings=ConsumerSettings)
