"""`bedrockctl replay`: the command line of a replay — its source, its what-if inputs, its report."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

from audit import sources, whatif
from audit.namespace import Namespace
from audit.output import Format, add_output_arguments, emit
from audit.period import Period, PeriodError, parse_period
from audit.replay import PARTS, Batches, Progress, SectionBuilder, replay_report
from audit.replay_parts import decisions_part, outcomes_part, repricing_part
from audit.settings import AuditSettings
from bedrock_usage import aws, db
from bedrock_usage.commands import CommandGroup
from bedrock_usage.pricing.price_file import PriceFileError
from bedrock_usage.quota_file import QuotaFileError
from bedrock_usage.redis_state import redis_client
from consumer.ingest import file_batches
from consumer.records import InputRecord

log = logging.getLogger(__name__)


def _file_batches(paths: Sequence[Path]) -> Iterator[Sequence[InputRecord]]:
    for path in paths:
        yield from file_batches(path)


def _batches(args: argparse.Namespace, settings: AuditSettings, period: Period) -> tuple[Batches, str]:
    """The source named on the command line: files, an S3 prefix, or the stream (the default)."""
    if args.files:
        paths = [Path(p) for p in args.files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise sources.SourceError(f"no such file: {', '.join(missing)}")
        return _file_batches(paths), f"{len(paths)} file(s)"
    if args.s3:
        return sources.s3_batches(aws.client(settings, "s3"), args.s3, period), f"s3 {args.s3}"
    return (sources.stream_batches(aws.client(settings, "kinesis"), settings.stream_name, period),
            f"stream {settings.stream_name}")


Prepare = Callable[[Namespace], None]


def _what_if(args: argparse.Namespace, settings: AuditSettings) -> tuple[list[SectionBuilder], Prepare]:
    """The report's parts and the namespace's preparation for --prices / --quotas."""
    late = decisions_part(timedelta(seconds=args.late_after), findings_count=args.quotas is None)
    parts: list[SectionBuilder] = [*PARTS, late]
    if args.prices:
        parts.append(repricing_part)
    if args.quotas:
        parts.append(outcomes_part)

    def prepare(ns: Namespace) -> None:
        if not (args.prices or args.quotas):
            return
        conn = db.connect(ns.settings.mysql)
        client = redis_client(ns.settings)
        try:
            if args.prices:
                whatif.apply_prices(conn, Path(args.prices))
            if args.quotas:
                whatif.apply_quotas(conn, client, ns.keys, Path(args.quotas), settings.default_team)
        finally:
            conn.close()
            client.close()

    return parts, prepare


def replay(args: argparse.Namespace, settings: AuditSettings) -> int:
    # The what-if files are checked before anything is created (their loaders refuse a bad file whole).
    for flag, path in (("--prices", args.prices), ("--quotas", args.quotas)):
        if path is not None and not Path(path).is_file():
            print(f"bedrockctl replay: {flag} {path}: no such file", file=sys.stderr)
            return 2
    try:
        period = parse_period(args.from_, args.to, settings.quota_timezone, exact=args.exact)
        batches, source = _batches(args, settings, period)
        parts, prepare = _what_if(args, settings)
        report = replay_report(settings, period, batches, source=source, keep=args.keep, progress=Progress(),
                               parts=parts, prepare=prepare)
    except (PeriodError, sources.SourceError, PriceFileError, QuotaFileError, OSError) as error:
        print(f"bedrockctl replay: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a store that failed midway: the namespace is dropped, no verdict was reached
        log.exception("replay failed")
        print(f"bedrockctl replay: the replay failed ({type(error).__name__}: {error}); nothing was compared",
              file=sys.stderr)
        return 2
    if args.quotas:
        report.notes.append(f"replayed under the limits of {args.quotas}: decisions differ from the record by"
                            " design and do not make the exit status 1")
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
    parser.add_argument("--prices", metavar="FILE", help="re-price the period with this price file (namespace only)")
    parser.add_argument("--quotas", metavar="FILE", help="replay under this quota file's limits (namespace only)")
    parser.add_argument("--late-after", metavar="SECONDS", type=int, default=60,
                        help="a deny applied later than this after its crossing is a late block (default 60)")
    add_output_arguments(parser)
