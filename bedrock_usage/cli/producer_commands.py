"""bedrockctl's producer commands: what feeds the stream (the EventBridge rule, its target, role and DLQ,
the invocation-log subscription, and the rules forwarding other regions' calls)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bedrock_usage.settings import Settings, regions


def _regions(args: argparse.Namespace) -> tuple[str, ...] | None:
    """`--regions r1,r2` overrides SOURCE_REGIONS (an empty value: the home region only)."""
    return None if args.regions is None else regions(args.regions, "--regions")


def show(args: argparse.Namespace, settings: Settings) -> int:
    from producer_config import forwarding  # noqa: PLC0415
    from producer_config.resources import rendered  # noqa: PLC0415

    listed = _regions(args)
    account = args.account
    if not account:
        from bedrock_usage import aws  # noqa: PLC0415

        account = str(aws.client(settings, "sts").get_caller_identity()["Account"])
    shown = rendered(settings, account)
    forwarders = forwarding.rendered(settings, account, listed)
    if forwarders:
        shown["forwarding"] = forwarders
    print(json.dumps(shown, indent=2))
    return 0


def apply(args: argparse.Namespace, settings: Settings) -> int:
    from producer_config.apply import apply as run  # noqa: PLC0415

    run(settings, regions=_regions(args))
    return 0


def add_parsers(sub: Any, add: Any) -> None:
    producer = sub.add_parser("producer", help="the EventBridge rules and log subscription feeding the stream")
    commands = producer.add_subparsers(dest="producer_command", required=True)
    regions_help = ("comma-separated regions whose Bedrock calls are counted (default: SOURCE_REGIONS); each but"
                    " AWS_REGION gets a rule forwarding them to AWS_REGION's event bus")
    p = add(commands, "show", show, "print the rules, targets, roles, DLQs and subscription as rendered")
    p.add_argument("--account", help="account ID for the ARNs (default: the caller's)")
    p.add_argument("--regions", metavar="R1,R2", help=regions_help)
    p = add(commands, "apply", apply, "create or update them in the account (idempotent; the stream must exist);"
            " forwarding rules of regions not listed are removed")
    p.add_argument("--regions", metavar="R1,R2", help=regions_help)
