"""The EventBridge rule that sends Bedrock runtime calls from CloudTrail to the Kinesis stream (pure).

Bedrock runtime calls are read-only *management* events: a rule in plain `ENABLED` state skips them,
so the rule must be `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`.
The partition key is the caller's principal ID, so one person's calls stay in order on one shard.
"""

from __future__ import annotations

from typing import Any

RUNTIME_OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")
RULE_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
PARTITION_KEY_PATH = "$.detail.userIdentity.principalId"


def event_pattern() -> dict[str, Any]:
    return {
        "source": ["aws.bedrock"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["bedrock.amazonaws.com"],
            "eventName": list(RUNTIME_OPERATIONS),
        },
    }


def partition_key(event: dict[str, Any], path: str = PARTITION_KEY_PATH) -> str:
    """What EventBridge's `KinesisParameters.PartitionKeyPath` picks from an event (simple `$.a.b` paths).
    EventBridge falls back to the event ID when the path matches nothing."""
    node: Any = event
    for part in path.removeprefix("$.").split("."):
        if not isinstance(node, dict) or part not in node:
            return str(event.get("id", ""))
        node = node[part]
    return str(node)
