"""The producer's `bedrockctl` commands: what feeds the stream (the EventBridge rule, its target, role and DLQ,
the invocation-log subscription, and the rules forwarding other regions' calls)."""

from __future__ import annotations

import argparse
import json

from bedrock_usage import aws
from bedrock_usage.commands import CommandGroup
from bedrock_usage.config import regions
from producer_config import apply as applying
from producer_config import forwarding
from producer_config.resources import rendered
from producer_config.settings import ProducerSettings


def _regions(args: argparse.Namespace) -> tuple[str, ...] | None:
    """`--regions r1,r2` overrides SOURCE_REGIONS (an empty value: the home region only)."""
    return None if args.regions is None else regions(args.regions, "--regions")


def show(args: argparse.Namespace, settings: ProducerSettings) -> int:
    listed = _regions(args)
    account = args.account
    if not account:
        account = str(aws.client(settings, "sts").get_caller_identity()["Account"])
    shown = rendered(settings, account)
    forwarders = forwarding.rendered(settings, account, listed)
    if forwarders:
        shown["forwarding"] = forwarders
    print(json.dumps(shown, indent=2))
    return 0


def apply(args: argparse.Namespace, settings: ProducerSettings) -> int:
    applying.apply(settings, regions=_regions(args))
    return 0


def register(commands: CommandGroup) -> None:
    producer = commands.group("producer", "the EventBridge rules and log subscription feeding the stream")
    regions_help = ("comma-separated regions whose Bedrock calls are counted (default: SOURCE_REGIONS); each but"
                    " AWS_REGION gets a rule forwarding them to AWS_REGION's event bus")
    p = producer.add("show", show, "print the rules, targets, roles, DLQs and subscription as rendered",
                     settings=ProducerSettings)
    p.add_argument("--account", help="account ID for the ARNs (default: the caller's)")
    p.add_argument("--regions", metavar="R1,R2", help=regions_help)
    p = producer.add("apply", apply, "create or update them in the account (idempotent; the stream must exist);"
                     " forwarding rules of regions not listed are removed", settings=ProducerSettings)
    p.add_argument("--regions", metavar="R1,R2", help=regions_help)
