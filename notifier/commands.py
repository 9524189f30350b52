"""The notifier's `bedrockctl` commands: notify outbox / retry / preview, and `notifier run` (the service)."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from bedrock_usage.commands import CommandGroup
from bedrock_usage.notifications import LANGUAGES
from bedrock_usage.printing import table
from bedrock_usage.quota_file import normalise_key
from notifier import main
from notifier.assembly import NotifierParts, assemble_notifier
from notifier.preview import preview_note
from notifier.settings import NotifierSettings


def _parts(settings: NotifierSettings) -> NotifierParts:
    return assemble_notifier(settings, registry=CollectorRegistry(), channels={})


def outbox(args: argparse.Namespace, settings: NotifierSettings) -> int:
    parts = _parts(settings)
    try:
        rows = parts.outbox.deliveries(failed_only=args.failed, limit=args.limit)
        depth, oldest = parts.outbox.depth(datetime.now(UTC))
    finally:
        parts.close()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"not yet delivered: {depth} (oldest {oldest:.0f} s)")
    print(table(("delivery", "kind", "principal", "channel", "recipient", "status", "tries", "next try / sent",
                 "last error"),
                [(r["delivery"], r["kind"], r["principal"], r["channel"], r["recipient"], r["status"], r["attempts"],
                  r["sent_at"] or r["next_attempt_at"], (r["last_error"] or "")[:60]) for r in rows]))
    return 0


def retry(args: argparse.Namespace, settings: NotifierSettings) -> int:
    parts = _parts(settings)
    try:
        count = parts.outbox.retry(datetime.now(UTC), args.delivery or ())
    finally:
        parts.close()
    print(f"{count} dead deliveries queued again")
    return 0


def preview(args: argparse.Namespace, settings: NotifierSettings) -> int:
    parts = _parts(settings)
    try:
        note = preview_note(parts.session.conn, parts.usage_reader(), settings, args.kind, args.principal,
                            now=datetime.now(UTC), actor=getpass.getuser())
        message = parts.notifier.renderer.render(note, args.lang)
    finally:
        parts.close()
    if args.format == "html":
        print(message.html)
    else:
        print(f"Subject: {message.subject}\n\n{message.text}")
    return 0


def notifier_run(args: argparse.Namespace, settings: NotifierSettings) -> int:
    return main.run(settings)


def register(commands: CommandGroup) -> None:
    notify = commands.group("notify", "the notification outbox")
    p = notify.add("outbox", outbox, "deliveries, newest last (and how many are waiting)",
                   settings=NotifierSettings)
    p.add_argument("--failed", action="store_true", help="only dead ones and those being retried")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = notify.add("retry", retry, "queue dead deliveries again (all, or --delivery N ...)",
                   settings=NotifierSettings)
    p.add_argument("--delivery", type=int, nargs="*")
    p = notify.add("preview", preview, "render a message for a person with their real data (nothing is sent)",
                   settings=NotifierSettings)
    p.add_argument("kind", choices=["warning", "blocked", "unblocked", "admin_blocked", "admin_unblocked", "alert",
                                    "summary"])
    p.add_argument("--principal", type=normalise_key, default="admins")
    p.add_argument("--lang", choices=LANGUAGES)
    p.add_argument("--format", choices=["text", "html"], default="text")

    notifier = commands.group("notifier", "the notifier process")
    notifier.add("run", notifier_run, "run the notifier (outbox → email, SNS, Slack, Teams; daily summary)",
                 settings=NotifierSettings)
