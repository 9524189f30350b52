"""bedrockctl's enforcement commands: block, unblock, status, audit, reconcile, enforcer run."""

from __future__ import annotations

import argparse
import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from bedrock_usage.cli.commands import table
from bedrock_usage.limits import normalise_key
from bedrock_usage.periods import periods_of
from bedrock_usage.settings import Settings
from enforcement.model import Outcome

_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--for takes a duration like 30m, 4h, 2d or 1w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_instant(text: str, settings: Settings) -> datetime:
    """ISO 8601; without an offset it is read in QUOTA_TIMEZONE (what admins think in)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time like 2026-12-01T09:00, got {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=settings.quota_timezone)
    return value.astimezone(UTC)


def _runtime(settings: Settings) -> Any:
    from enforcement.runtime import build  # noqa: PLC0415  (boto3 and the rest only when needed)

    return build(settings, registry=CollectorRegistry())


def _when(value: Any, settings: Settings) -> str:
    if value is None:
        return "-"
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant.astimezone(settings.quota_timezone).strftime("%Y-%m-%d %H:%M %Z")


def block(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    if args.indefinite:
        until = None
    elif args.duration:
        until = now + parse_duration(args.duration)
    elif args.until:
        until = parse_instant(args.until, settings)
        if until <= now:
            raise ValueError(f"--until {args.until} is in the past")
    else:
        until = periods_of(now, settings.quota_timezone).day_ends_at
    rt = _runtime(settings)
    try:
        result = rt.enforcer.admin_block(args.principal, actor=args.by, reason=args.reason, until=until)
    finally:
        rt.close()
    if result.outcome in (Outcome.REFUSED, Outcome.PROTECTED):
        print(f"NOT blocked ({result.outcome}): {result.detail}")
        return 1
    until_text = _when(result.blocked_until, settings) if result.blocked_until else "an admin unblocks"
    print(f"blocked {args.principal} until {until_text} ({result.outcome}: {result.detail})")
    return 0


def unblock(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    try:
        result = rt.enforcer.admin_unblock(args.principal, actor=args.by, reason=args.reason, protect=args.protect)
        (status,) = rt.enforcer.status(args.principal)
    finally:
        rt.close()
    print(f"unblocked {args.principal} ({result.outcome}: {result.detail})")
    if status["protected_until"]:
        print(f"protected from quota blocks until {_when(status['protected_until'], settings)}")
    else:
        print("not protected: if still over a quota, the reconciler blocks again (use --protect, or raise the limit)")
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    try:
        rows = rt.enforcer.status(args.principal)
    finally:
        rt.close()
    if args.json:
        print(json.dumps(rows[0] if args.principal else rows, indent=2))
        return 0
    print(f"mode: {settings.enforcement_mode}")
    print(table(("principal", "blocked", "until", "reason", "by", "protected until", "iam"), [
        (r["principal"], "yes" if r["blocked"] else "no",
         "indefinite" if r["indefinite"] else _when(r["blocked_until"], settings), r["reason"], r["actor"],
         _when(r["protected_until"], settings), r["iam_state"]) for r in rows]))
    return 0


def audit(args: argparse.Namespace, settings: Settings) -> int:
    from bedrock_usage import db  # noqa: PLC0415
    from enforcement import store  # noqa: PLC0415

    since = parse_instant(args.since, settings) if args.since else None
    conn = db.connect(settings.mysql)
    try:
        rows = store.actions(conn, principal=args.principal, since=since, limit=args.limit)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(table(("at", "actor", "action", "outcome", "principal", "reason", "iam change"), [
        (_when(r["at"], settings), r["actor"], r["action"] + (" (shadow)" if r["shadow"] else ""), r["outcome"],
         r["principal"], r["reason"], r["iam_change"]) for r in rows]))
    return 0


def reconcile(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    try:
        report = rt.reconciler.run_once()
    finally:
        rt.close()
    print(f"expired {report.expired}; missed decisions blocked {report.missed}; lifted after a limit rise"
          f" {report.limit_raised}; protected lifted {report.protected}; denies re-applied {report.missing};"
          f" unexpected denies lifted {report.unexpected}")
    for r in report.results:
        print(f"  {r.action} {r.principal}: {r.outcome} — {r.detail}")
    return 0


def enforcer_run(args: argparse.Namespace, settings: Settings) -> int:
    from enforcement.main import run  # noqa: PLC0415

    return run(settings)


def add_parsers(sub: Any, add: Any) -> None:
    by = {"default": getpass.getuser(), "help": "who acts (recorded in the audit; default: your user name)"}
    p = add(sub, "block", block, "deny Bedrock to a person now")
    p.add_argument("principal", type=normalise_key, help="quota key, as `bedrockctl usage` shows it")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", help="e.g. 30m, 4h, 2d (default: until the next daily reset)")
    when.add_argument("--until", help="ISO 8601 time (QUOTA_TIMEZONE when no offset)")
    when.add_argument("--indefinite", action="store_true", help="until an admin unblocks")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", **by)

    p = add(sub, "unblock", unblock, "restore Bedrock to a person now")
    p.add_argument("principal", type=normalise_key)
    p.add_argument("--protect", action="store_true",
                   help="and do not let quotas block them again until the end of the current period")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", **by)

    p = add(sub, "status", status, "who is blocked (or one person's state)")
    p.add_argument("principal", nargs="?", type=normalise_key)
    p.add_argument("--json", action="store_true")

    p = add(sub, "audit", audit, "the enforcement audit trail")
    p.add_argument("--principal", type=normalise_key)
    p.add_argument("--since", help="ISO 8601 time or date")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")

    p = add(sub, "reconcile", reconcile, "compare desired and actual IAM state and fix drift")
    p.add_argument("--once", action="store_true", required=True, help="one pass, then exit")

    enforcer = sub.add_parser("enforcer", help="the enforcer process").add_subparsers(
        dest="enforcer_command", required=True)
    add(enforcer, "run", enforcer_run, "run the enforcer (decisions → IAM, expiry, reconciliation)")
