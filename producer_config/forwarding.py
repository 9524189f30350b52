"""Counting Bedrock calls made in other regions (pure): in each source region, a rule on the default bus
forwards the Bedrock runtime events to the default bus of the stream's (home) region, whose rule feeds the
stream.

Why this shape (AWS facts it rests on):
- A CloudTrail event reaches EventBridge only in the region where the call was made: a rule sees no other
  region's events. A call through a cross-Region inference profile is recorded in its *source* region,
  the one whose endpoint was called ("Source Region: the Region from which you make the API request",
  https://docs.aws.amazon.com/bedrock/latest/userguide/cross-region-inference-support.html).
- A rule may target the event bus of another region in the same account; its role needs only
  `events:PutEvents` on that bus (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html,
  https://repost.aws/knowledge-center/eventbridge-centralized-bus-to-bus), and a default bus accepts events
  from its own account without a bus policy (eb-event-bus-perms.html in the same guide).
- The forwarding rule itself must be `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`: Bedrock runtime
  calls are read-only management events, which a plain `ENABLED` rule skips
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html).
  Whether the receiving bus filters forwarded read-only events the same way is not documented; the home
  rule is in that state anyway (for its own region's calls), so forwarded events match it either way.
- A forwarded event keeps its envelope (its `region` stays the source region), and the home pattern does
  not look at `region` (tests/unit/test_forwarding.py checks with moto's matcher). EventBridge does not
  route an event received from another bus on to a third (eb-bus-to-bus.html), and the home region never
  gets a forwarding rule, so nothing loops.
- One dead-letter queue per source region, beside its rule: each region stays self-contained (AWS
  documents no dead-letter queue in another region than its rule's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from producer_config.resources import RETRY_POLICY, dlq_policy, trust_policy
from producer_config.rule import RULE_STATE, event_pattern
from producer_config.settings import ProducerSettings

TARGET_ID = "bedrock-usage-home-bus"
HOME_BUS = "default"


@dataclass(frozen=True)
class ForwardNames:
    rule: str  # the same name in every source region (rules are regional)
    dlq: str  # one queue per source region, beside its rule
    role: str  # IAM is global: one role serves every region

    @classmethod
    def of(cls, settings: ProducerSettings) -> ForwardNames:
        base = settings.rule_name
        return cls(f"{base}-forward", f"{base}-forward-dlq", f"{base}-events-to-home-bus")


def forwarding_regions(settings: ProducerSettings, regions: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The regions that get a forwarding rule: those listed (`regions`, else SOURCE_REGIONS) but the home
    region, which the home rule covers (a rule there forwarding to its own bus would loop)."""
    listed = settings.source_regions if regions is None else regions
    return tuple(region for region in listed if region != settings.aws_region)


def home_bus_arn(settings: ProducerSettings, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{settings.aws_region}:{account}:event-bus/{HOME_BUS}"


def forward_rule(settings: ProducerSettings, region: str) -> dict[str, Any]:
    return {"Name": ForwardNames.of(settings).rule, "EventPattern": json.dumps(event_pattern()),
            "State": RULE_STATE,
            "Description": f"Bedrock runtime calls (CloudTrail) in {region} to the Bedrock Usage Control rule"
                           f" in {settings.aws_region}"}


def forward_target(home_bus: str, role_arn: str, dlq_arn: str) -> dict[str, Any]:
    # The same retry policy and dead-letter queue as the home target: a forwarding failure loses calls too.
    return {"Id": TARGET_ID, "Arn": home_bus, "RoleArn": role_arn,
            "RetryPolicy": dict(RETRY_POLICY), "DeadLetterConfig": {"Arn": dlq_arn}}


def put_events_policy(home_bus: str) -> dict[str, Any]:
    """All the forwarding role may do: put events on the home region's default bus."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": home_bus}]}


def rendered(settings: ProducerSettings, account: str, regions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The forwarding side of `bedrockctl producer show`: what goes in each source region, and the role
    (empty when no region but the home region is listed)."""
    names = ForwardNames.of(settings)
    home_bus = home_bus_arn(settings, account)
    role_arn = f"arn:aws:iam::{account}:role/{names.role}"
    shown: dict[str, Any] = {}
    for region in forwarding_regions(settings, regions):
        dlq = f"arn:aws:sqs:{region}:{account}:{names.dlq}"
        rule_arn = f"arn:aws:events:{region}:{account}:rule/{names.rule}"
        shown[region] = {"rule": {**forward_rule(settings, region), "EventPattern": event_pattern()},
                         "target": forward_target(home_bus, role_arn, dlq),
                         "dead_letter_queue": {"name": names.dlq, "policy": dlq_policy(dlq, rule_arn)}}
    if not shown:
        return {}
    return {"home_event_bus": home_bus, "regions": shown,
            "role": {names.role: {"trust": trust_policy("events.amazonaws.com"),
                                  "policy": put_events_policy(home_bus)}}}
