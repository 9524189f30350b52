"""`bedrockctl`: the admin and operations command line.

Each sub-command reads the settings from the environment, does one job, and exits non-zero with a
one-line error on bad input. Process entry points (`consumer run`) live in their own packages; this
module only parses arguments and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bedrock_usage import logs
from bedrock_usage.settings import Settings, SettingsError

Handler = Callable[[argparse.Namespace, Settings], int]


def _parser() -> argparse.ArgumentParser:
    from bedrock_usage.cli import commands as c  # noqa: PLC0415  (keeps `bedrockctl --help` fast)
    from bedrock_usage.cli import cost_commands as cost  # noqa: PLC0415
    from bedrock_usage.cli import enforcement_commands as enforcement  # noqa: PLC0415
    from bedrock_usage.cli import notify_commands as notify  # noqa: PLC0415
    from bedrock_usage.cli import price_commands as price  # noqa: PLC0415
    from bedrock_usage.cli import producer_commands as producer  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="bedrockctl", description="Bedrock Usage Control")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler,
            help_: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    db = sub.add_parser("db", help="schema and retention").add_subparsers(dest="db_command", required=True)
    add(db, "migrate", c.db_migrate, "apply pending migrations and extend partitions")
    retention = add(db, "retention", c.db_retention, "drop call partitions older than N months")
    retention.add_argument("--keep-months", type=int, required=True)

    lim = sub.add_parser("limits", help="quota file").add_subparsers(dest="limits_command", required=True)
    apply = add(lim, "apply", c.limits_apply, "make limits and teams match a quota file")
    apply.add_argument("file")
    apply.add_argument("--dry-run", action="store_true", help="check the file, print what would change, write nothing")
    apply.add_argument("--allow-new-teams", action="store_true",
                       help="let people (and Identity Center groups) be put in teams not declared under teams:")
    apply.add_argument("--allow-empty", action="store_true",
                       help="accept a file declaring nothing (it clears every override)")
    show = add(lim, "show", c.limits_show, "show teams, overrides and defaults")
    show.add_argument("--json", action="store_true")

    usage = add(sub, "usage", c.usage, "usage per person (and team) for a day")
    usage.add_argument("--user", help="quota key, e.g. arn:aws:iam::123456789012:user/alice or sso:bob@example.com")
    usage.add_argument("--team")
    usage.add_argument("--date", help="YYYY-MM-DD in QUOTA_TIMEZONE (default: today)")
    usage.add_argument("--teams", action="store_true", help="teams alone, with the people counted in each")
    usage.add_argument("--json", action="store_true")

    counters = sub.add_parser("counters", help="Redis counters").add_subparsers(
        dest="counters_command", required=True)
    add(counters, "rebuild", c.counters_rebuild, "rebuild Redis counters from MySQL (idempotent merge)")

    ingest = add(sub, "ingest", c.ingest, "run event files through the processor (backfills, audits)")
    ingest.add_argument("paths", nargs="+", metavar="PATH")

    decisions = add(sub, "decisions", c.decisions, "decisions taken (from MySQL)")
    decisions.add_argument("--since", help="YYYY-MM-DD")
    decisions.add_argument("--json", action="store_true")

    dead = add(sub, "dead-letters", c.dead_letters, "records that would not decode, with their reasons")
    dead.add_argument("--limit", type=int, default=20)

    consumer = sub.add_parser("consumer", help="the KCL consumer").add_subparsers(
        dest="consumer_command", required=True)
    add(consumer, "run", c.consumer_run, "write the daemon's properties and run the KCL consumer")

    cost.add_parsers(sub, add)
    enforcement.add_parsers(sub, add)
    notify.add_parsers(sub, add)
    producer.add_parsers(sub, add)
    price.add_parsers(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"bedrockctl: bad setting: {error}", file=sys.stderr)
        return 2
    logs.setup("bedrockctl", "WARNING" if settings.log_level == "INFO" else settings.log_level)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except _user_errors() as error:
        print(f"bedrockctl: {error}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from bedrock_usage.migrate import MigrationError  # noqa: PLC0415
    from bedrock_usage.pricing.book import NoPrices  # noqa: PLC0415
    from bedrock_usage.quota_file import QuotaFileError  # noqa: PLC0415

    # AWS errors (no credentials, access denied) are one line too: the admin fixes the environment.
    return (QuotaFileError, MigrationError, NoPrices, FileNotFoundError, ValueError, ClientError, BotoCoreError)


if __name__ == "__main__":
    sys.exit(main())
