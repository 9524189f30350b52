"""Everything that feeds the stream, rendered from settings (pure): the EventBridge rule and its Kinesis
target, the target's role (it may only put records on that stream), its retry policy and SQS dead-letter
queue, and the CloudWatch Logs subscription that sends Bedrock model invocation logs to the same stream.

`bedrockctl producer apply` creates or updates exactly these in an account; the CloudFormation template
declares the same (a test compares them), so both paths deploy one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from producer_config.rule import PARTITION_KEY_PATH, RULE_STATE, event_pattern
from producer_config.settings import ProducerSettings

__all__ = ["PARTITION_KEY_PATH", "RULE_STATE", "Names", "event_pattern", "rendered", "rule", "target"]

# EventBridge retries a failed delivery for up to 24 h (185 attempts), then parks it in the DLQ.
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
TARGET_ID = "bedrock-usage-stream"
SUBSCRIPTION_FILTER = "bedrock-usage-control"


@dataclass(frozen=True)
class Names:
    rule: str
    dlq: str
    events_role: str
    logs_role: str

    @classmethod
    def of(cls, settings: ProducerSettings) -> Names:
        base = settings.rule_name
        return cls(base, f"{base}-dlq", f"{base}-events-to-kinesis", f"{base}-logs-to-kinesis")


def stream_arn(settings: ProducerSettings, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:kinesis:{settings.aws_region}:{account}:stream/{settings.stream_name}"


def rule(settings: ProducerSettings) -> dict[str, Any]:
    return {"Name": Names.of(settings).rule, "EventPattern": json.dumps(event_pattern()), "State": RULE_STATE,
            "Description": "Bedrock runtime calls (CloudTrail) to the Bedrock Usage Control stream"}


def target(stream: str, role_arn: str, dlq_arn: str) -> dict[str, Any]:
    return {"Id": TARGET_ID, "Arn": stream, "RoleArn": role_arn,
            "KinesisParameters": {"PartitionKeyPath": PARTITION_KEY_PATH},
            "RetryPolicy": dict(RETRY_POLICY), "DeadLetterConfig": {"Arn": dlq_arn}}


def trust_policy(service: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


def put_records_policy(stream: str) -> dict[str, Any]:
    """All the rule's (or the subscription's) role may do: put records on that one stream."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Resource": stream}]}


def dlq_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]}


def subscription_filter(log_group: str, stream: str, role_arn: str) -> dict[str, Any]:
    # An empty pattern forwards every invocation log event; the consumer decodes and meters them.
    return {"logGroupName": log_group, "filterName": SUBSCRIPTION_FILTER, "filterPattern": "",
            "destinationArn": stream, "roleArn": role_arn}


def rendered(settings: ProducerSettings, account: str) -> dict[str, Any]:
    """What `bedrockctl producer show` prints."""
    names = Names.of(settings)
    stream = stream_arn(settings, account)
    events_role = f"arn:aws:iam::{account}:role/{names.events_role}"
    dlq = f"arn:aws:sqs:{settings.aws_region}:{account}:{names.dlq}"
    shown: dict[str, Any] = {
        "rule": {**rule(settings), "EventPattern": event_pattern()},
        "target": target(stream, events_role, dlq),
        "roles": {names.events_role: {"trust": trust_policy("events.amazonaws.com"),
                                      "policy": put_records_policy(stream)}},
        "dead_letter_queue": names.dlq,
    }
    if settings.invocation_log_group:
        logs_role = f"arn:aws:iam::{account}:role/{names.logs_role}"
        shown["roles"][names.logs_role] = {"trust": trust_policy(f"logs.{settings.aws_region}.amazonaws.com"),
                                           "policy": put_records_policy(stream)}
        shown["subscription_filter"] = subscription_filter(settings.invocation_log_group, stream, logs_role)
    return shown
