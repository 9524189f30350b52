"""bedrockctl's notifier commands: notify outbox / retry / preview, notifier run."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from bedrock_usage.cli.commands import table
from bedrock_usage.quota_file import normalise_key
from bedrock_usage.settings import LANGUAGES, Settings


def _runtime(settings: Settings) -> Any:
    from notifier.runtime import build_notifier_parts  # noqa: PLC0415  (boto3 and jinja2 only when needed)

    return build_notifier_parts(settings, registry=CollectorRegistry(), channels={})


def outbox(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    try:
        rows = rt.outbox.deliveries(failed_only=args.failed, limit=args.limit)
        depth, oldest = rt.outbox.depth(datetime.now(UTC))
    finally:
        rt.close()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"not yet delivered: {depth} (oldest {oldest:.0f} s)")
    print(table(("delivery", "kind", "principal", "channel", "recipient", "status", "tries", "next try / sent",
                 "last error"),
                [(r["delivery"], r["kind"], r["principal"], r["channel"], r["recipient"], r["status"], r["attempts"],
                  r["sent_at"] or r["next_attempt_at"], (r["last_error"] or "")[:60]) for r in rows]))
    return 0


def retry(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    try:
        count = rt.outbox.retry(datetime.now(UTC), args.delivery or ())
    finally:
        rt.close()
    print(f"{count} dead deliveries queued again")
    return 0


def preview(args: argparse.Namespace, settings: Settings) -> int:
    from notifier.preview import preview_note  # noqa: PLC0415

    rt = _runtime(settings)
    try:
        note = preview_note(rt.session.conn, rt.usage_reader(), settings, args.kind, args.principal,
                            now=datetime.now(UTC), actor=getpass.getuser())
        message = rt.notifier.renderer.render(note, args.lang)
    finally:
        rt.close()
    if args.format == "html":
        print(message.html)
    else:
        print(f"Subject: {message.subject}\n\n{message.text}")
    return 0


def notifier_run(args: argparse.Namespace, settings: Settings) -> int:
    from notifier.main import run  # noqa: PLC0415

    return run(settings)


def add_parsers(sub: Any, add: Any) -> None:
    notify = sub.add_parser("notify", help="the notification outbox").add_subparsers(
        dest="notify_command", required=True)
    p = add(notify, "outbox", outbox, "deliveries, newest last (and how many are waiting)")
    p.add_argument("--failed", action="store_true", help="only dead ones and those being retried")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = add(notify, "retry", retry, "queue dead deliveries again (all, or --delivery N ...)")
    p.add_argument("--delivery", type=int, nargs="*")
    p = add(notify, "preview", preview, "render a message for a person with their real data (nothing is sent)")
    p.add_argument("kind", choices=["warning", "blocked", "unblocked", "admin_blocked", "admin_unblocked", "alert",
                                    "summary"])
    p.add_argument("--principal", type=normalise_key, default="admins")
    p.add_argument("--lang", choices=LANGUAGES)
    p.add_argument("--format", choices=["text", "html"], default="text")

    notifier = sub.add_parser("notifier", help="the notifier process").add_subparsers(
        dest="notifier_command", required=True)
    add(notifier, "run", notifier_run, "run the notifier (outbox → email, SNS, Slack, Teams; daily summary)")
