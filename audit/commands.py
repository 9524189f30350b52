"""The audit commands of `bedrockctl`: `replay` and `bill reconcile` (registered as they are built)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from audit.output import Format, add_output_arguments, emit
from audit.period import Period, PeriodError, parse_period
from audit.replay import Batches, Progress, replay_report
from audit.settings import AuditSettings
from bedrock_usage.commands import CommandGroup
from consumer.ingest import file_batches
from consumer.records import InputRecord

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A replay source that cannot be read (a missing file, a source this build lacks)."""


def _file_batches(paths: Sequence[Path]) -> Iterator[Sequence[InputRecord]]:
    for path in paths:
        yield from file_batches(path)


def _remote_batches(args: argparse.Namespace, settings: AuditSettings, period: Period) -> Batches:
    """`--stream` (Kinesis, AT_TIMESTAMP) and `--s3 URL` (CloudTrail and invocation-log files): audit/sources.py's
    `stream_batches` and `s3_batches`, wired here when that module is merged."""
    del settings, period
    which = f"--s3 {args.s3}" if args.s3 else "--stream"
    raise SourceError(f"{which} is not available in this build yet; replay files with --files PATH…")


def replay(args: argparse.Namespace, settings: AuditSettings) -> int:
    try:
        period = parse_period(args.from_, args.to, settings.quota_timezone, exact=args.exact)
        batches: Batches
        if args.files:
            paths = [Path(p) for p in args.files]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise SourceError(f"no such file: {', '.join(missing)}")
            batches, source = _file_batches(paths), f"{len(paths)} file(s)"
        else:
            batches = _remote_batches(args, settings, period)
            source = f"s3 {args.s3}" if args.s3 else f"stream {settings.stream_name}"
        report = replay_report(settings, period, batches, source=source, keep=args.keep, progress=Progress())
    except (PeriodError, SourceError, OSError) as error:
        print(f"bedrockctl replay: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a store that failed midway: the namespace is dropped, no verdict was reached
        log.exception("replay failed")
        print(f"bedrockctl replay: the replay failed ({type(error).__name__}: {error}); nothing was compared",
              file=sys.stderr)
        return 2
    return emit(report, Format(args.format), args.out)


def register(commands: CommandGroup) -> None:
    parser = commands.add("replay", replay, "replay a period into an isolated namespace and compare it with the"
                          " live record (exit 0 agree, 1 differ, 2 error)", settings=AuditSettings)
    parser.add_argument("--from", dest="from_", required=True, metavar="T",
                        help="first day (YYYY-MM-DD), month (YYYY-MM) or time of the period")
    parser.add_argument("--to", required=True, metavar="T", help="last day, month or time of the period")
    parser.add_argument("--exact", action="store_true",
                        help="the instants given, not widened to whole quota days or months")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--files", nargs="+", metavar="PATH", help="event files, in the formats `ingest` reads")
    source.add_argument("--s3", metavar="URL", help="s3://bucket/prefix of CloudTrail and invocation-log files")
    source.add_argument("--stream", action="store_true", help="the Kinesis stream, read at AT_TIMESTAMP (default)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace (database, Redis keys) after the run")
    add_output_arguments(parser)
