"""The enforcer's `bedrockctl` commands: block, unblock, status, audit, reconcile, and `enforcer run` (the service)."""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from bedrock_usage import db
from bedrock_usage.commands import CommandGroup
from bedrock_usage.periods import periods_of
from bedrock_usage.printing import table
from bedrock_usage.quota_file import normalise_key
from enforcement import main, store
from enforcement.assembly import EnforcerParts, assemble_enforcer
from enforcement.model import Outcome
from enforcement.settings import EnforcerSettings
from enforcement.targets import Refusal, target_of

_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--for takes a duration like 30m, 4h, 2d or 1w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_instant(text: str, settings: EnforcerSettings) -> datetime:
    """ISO 8601; without an offset it is read in QUOTA_TIMEZONE (what admins think in)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time like 2026-12-01T09:00, got {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=settings.quota_timezone)
    return value.astimezone(UTC)


def _parts(settings: EnforcerSettings) -> EnforcerParts:
    return assemble_enforcer(settings, registry=CollectorRegistry())


def _when(value: Any, settings: EnforcerSettings) -> str:
    if value is None:
        return "-"
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant.astimezone(settings.quota_timezone).strftime("%Y-%m-%d %H:%M %Z")


def closest_keys(key: str, known: Sequence[str], n: int = 3) -> list[str]:
    """The known quota keys `key` was likely meant to be. Compared on the name at their end (the part
    after the last / or :): keys of one account share a long prefix, which would make any two of them
    look alike; among keys with a similar name, the closest whole key first (an account typo)."""
    def name(k: str) -> str:
        return re.split(r"[/:]", k)[-1].lower()

    by_name: dict[str, list[str]] = {}
    for k in known:
        by_name.setdefault(name(k), []).append(k)
    found: list[str] = []
    for match in difflib.get_close_matches(name(key), list(by_name), n=n, cutoff=0.6):
        found += sorted(by_name[match], key=lambda k: -difflib.SequenceMatcher(None, key, k).ratio())
    return found[:n]


def unknown_key_refusal(settings: EnforcerSettings, key: str) -> str | None:
    """Why blocking `key` is refused: never seen and not in the quota file (a typo would otherwise
    create a block, an audit row and a message for no one), or None."""
    conn = db.connect(settings.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM principals WHERE quota_key = %s", (key,))
            if cur.fetchone():
                return None
            cur.execute("SELECT quota_key FROM principals")
            known = [str(k) for (k,) in cur.fetchall()]
    finally:
        conn.close()
    suggestions = closest_keys(key, known)
    hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else "."
    return (f"refused: {key!r} is not a known person (never seen, not in the quota file){hint}"
            " Use --force to block it anyway.")


def block(args: argparse.Namespace, settings: EnforcerSettings) -> int:
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
    if not args.force and (refusal := unknown_key_refusal(settings, args.principal)):
        print(f"bedrockctl: {refusal}", file=sys.stderr)
        return 2
    parts = _parts(settings)
    try:
        if args.dry_run:
            return _block_dry_run(args, settings, parts, until)
        result = parts.enforcer.admin_block(args.principal, actor=args.by, reason=args.reason, until=until)
    finally:
        parts.close()
    if result.outcome in (Outcome.REFUSED, Outcome.PROTECTED):
        print(f"NOT blocked ({result.outcome}): {result.detail}")
        return 1
    until_text = _when(result.blocked_until, settings) if result.blocked_until else "an admin unblocks"
    print(f"blocked {args.principal} until {until_text} ({result.outcome}: {result.detail})")
    return 0


def _block_dry_run(args: argparse.Namespace, settings: EnforcerSettings, parts: EnforcerParts,
                   until: datetime | None) -> int:
    """What `block` would do, from what the enforcer reads before acting; nothing is written."""
    enforcer = parts.enforcer
    person = parts.store.principal(args.principal)
    (current,) = parts.status.rows(args.principal)
    print(f"dry run: would block {args.principal} until {_when(until, settings) if until else 'an admin unblocks'}"
          f" (reason: {args.reason}; by: {args.by})")
    if current["blocked"]:
        end = "an admin unblocks" if current["indefinite"] else _when(current["blocked_until"], settings)
        print(f"  already blocked until {end} (the later end stands)")
    target = target_of(person, enforcer.account_id, settings.session_roles) if person else None
    if enforcer.is_protected(args.principal):
        print("  NOT blocked: a protected principal (PROTECTED_PRINCIPALS) is never denied")
    elif target is None or isinstance(target, Refusal):
        print(f"  NOT denied in IAM: {target.detail if target else 'not a known principal'}")
    elif settings.shadow:
        print(f"  shadow mode: recorded, no IAM change (would deny {target})")
    else:
        print(f"  IAM: deny {target}")
    print("nothing written")
    return 0


def unblock(args: argparse.Namespace, settings: EnforcerSettings) -> int:
    parts = _parts(settings)
    try:
        result = parts.enforcer.admin_unblock(args.principal, actor=args.by, reason=args.reason, protect=args.protect)
        (status,) = parts.status.rows(args.principal)
    finally:
        parts.close()
    print(f"unblocked {args.principal} ({result.outcome}: {result.detail})")
    if status["protected_until"]:
        print(f"protected from quota blocks until {_when(status['protected_until'], settings)}")
    else:
        print("not protected: if still over a quota, the reconciler blocks again (use --protect, or raise the limit)")
    return 0


def status(args: argparse.Namespace, settings: EnforcerSettings) -> int:
    parts = _parts(settings)
    try:
        rows = parts.status.rows(args.principal)
    finally:
        parts.close()
    if args.json:
        print(json.dumps(rows[0] if args.principal else rows, indent=2))
        return 0
    print(f"mode: {settings.enforcement_mode}")
    print(table(("principal", "blocked", "until", "reason", "by", "protected until", "iam"), [
        (r["principal"], "yes" if r["blocked"] else "no",
         "indefinite" if r["indefinite"] else _when(r["blocked_until"], settings), r["reason"], r["actor"],
         _when(r["protected_until"], settings), r["iam_state"]) for r in rows]))
    return 0


def audit(args: argparse.Namespace, settings: EnforcerSettings) -> int:
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


def reconcile(args: argparse.Namespace, settings: EnforcerSettings) -> int:
    parts = _parts(settings)
    try:
        report = parts.reconciler.run_once()
    finally:
        parts.close()
    print(f"expired {report.expired}; missed decisions blocked {report.missed}; lifted after a limit rise"
          f" {report.limit_raised}; protected lifted {report.protected}; denies re-applied {report.missing};"
          f" unexpected denies lifted {report.unexpected}")
    for r in report.results:
        print(f"  {r.action} {r.principal}: {r.outcome} — {r.detail}")
    return 0


def enforcer_run(args: argparse.Namespace, settings: EnforcerSettings) -> int:
    return main.run(settings)


def register(commands: CommandGroup) -> None:
    by_help = "who acts (recorded in the audit; default: your user name)"
    p = commands.add("block", block, "deny Bedrock to a person now", settings=EnforcerSettings)
    p.add_argument("principal", type=normalise_key, help="quota key, as `bedrockctl usage` shows it")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="duration", help="e.g. 30m, 4h, 2d (default: until the next daily reset)")
    when.add_argument("--until", help="ISO 8601 time (QUOTA_TIMEZONE when no offset)")
    when.add_argument("--indefinite", action="store_true", help="until an admin unblocks")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default=getpass.getuser(), help=by_help)
    p.add_argument("--force", action="store_true", help="block a key never seen and not in the quota file")
    p.add_argument("--dry-run", action="store_true", help="check and print what would happen, write nothing")

    p = commands.add("unblock", unblock, "restore Bedrock to a person now", settings=EnforcerSettings)
    p.add_argument("principal", type=normalise_key)
    p.add_argument("--protect", action="store_true",
                   help="and do not let quotas block them again until the end of the current period")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", default=getpass.getuser(), help=by_help)

    p = commands.add("status", status, "who is blocked (or one person's state)", settings=EnforcerSettings)
    p.add_argument("principal", nargs="?", type=normalise_key)
    p.add_argument("--json", action="store_true")

    p = commands.add("audit", audit, "the enforcement audit trail", settings=EnforcerSettings)
    p.add_argument("--principal", type=normalise_key)
    p.add_argument("--since", help="ISO 8601 time or date")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")

    p = commands.add("reconcile", reconcile, "compare desired and actual IAM state and fix drift",
                     settings=EnforcerSettings)
    p.add_argument("--once", action="store_true", required=True, help="one pass, then exit")

    enforcer = commands.group("enforcer", "the enforcer process")
    enforcer.add("run", enforcer_run, "run the enforcer (decisions → IAM, expiry, reconciliation)",
                 settings=EnforcerSettings)
