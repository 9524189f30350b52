"""bedrockctl's producer commands: what feeds the stream (the EventBridge rule, its target, role and DLQ,
the invocation-log subscription)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bedrock_usage.settings import Settings


def show(args: argparse.Namespace, settings: Settings) -> int:
    from producer_config.resources import rendered  # noqa: PLC0415

    account = args.account
    if not account:
        from bedrock_usage import aws  # noqa: PLC0415

        account = str(aws.client(settings, "sts").get_caller_identity()["Account"])
    print(json.dumps(rendered(settings, account), indent=2))
    return 0


def apply(args: argparse.Namespace, settings: Settings) -> int:
    from producer_config.apply import apply as run  # noqa: PLC0415

    run(settings)
    return 0


def add_parsers(sub: Any, add: Any) -> None:
    producer = sub.add_parser("producer", help="the EventBridge rule and log subscription feeding the stream")
    commands = producer.add_subparsers(dest="producer_command", required=True)
    p = add(commands, "show", show, "print the rule, its target, roles, DLQ and subscription as rendered")
    p.add_argument("--account", help="account ID for the ARNs (default: the caller's)")
    add(commands, "apply", apply, "create or update them in the account (idempotent; the stream must exist)")
