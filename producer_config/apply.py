"""`bedrockctl producer apply`: create or update the producer side in an existing account, idempotently.

The stream must exist (the CloudFormation stack, or your own). Each step says whether it created or
updated something; running it again changes nothing but what drifted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bedrock_usage import aws
from bedrock_usage.settings import Settings
from producer_config import resources
from producer_config.resources import Names


def _role(iam: Any, name: str, trust: dict[str, Any], policy: dict[str, Any], say: Callable[[str], None]) -> str:
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        say(f"role {name}: trust policy set")
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                  Description="Bedrock Usage Control: put records on its stream")["Role"]["Arn"])
        say(f"role {name}: created")
    iam.put_role_policy(RoleName=name, PolicyName="put-records", PolicyDocument=json.dumps(policy))
    return arn


def apply(settings: Settings, say: Callable[[str], None] = print) -> dict[str, str]:
    kinesis, iam, sqs, events = (aws.client(settings, s) for s in ("kinesis", "iam", "sqs", "events"))
    names = Names.of(settings)
    stream = kinesis.describe_stream_summary(StreamName=settings.stream_name)["StreamDescriptionSummary"]["StreamARN"]
    say(f"stream {settings.stream_name}: {stream}")

    queue_url = sqs.create_queue(QueueName=names.dlq, Attributes={"MessageRetentionPeriod": "1209600",
                                                                  "SqsManagedSseEnabled": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    say(f"dead-letter queue {names.dlq}: {queue_arn}")

    events_role = _role(iam, names.events_role, resources.trust_policy("events.amazonaws.com"),
                        resources.put_records_policy(stream), say)
    rule_arn = events.put_rule(**resources.rule(settings))["RuleArn"]
    say(f"rule {names.rule}: {resources.RULE_STATE}")
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={
        "Policy": json.dumps(resources.dlq_policy(queue_arn, rule_arn))})
    failed = events.put_targets(Rule=names.rule, Targets=[resources.target(stream, events_role, queue_arn)])
    if failed.get("FailedEntryCount"):
        raise RuntimeError(f"put_targets failed: {failed['FailedEntries']}")
    say(f"target {resources.TARGET_ID}: PartitionKeyPath {resources.PARTITION_KEY_PATH}, DLQ {names.dlq}")
    made = {"stream": stream, "rule": rule_arn, "dlq": queue_arn, "events_role": events_role}

    if settings.invocation_log_group:
        logs = aws.client(settings, "logs")
        logs_role = _role(iam, names.logs_role,
                          resources.trust_policy(f"logs.{settings.aws_region}.amazonaws.com"),
                          resources.put_records_policy(stream), say)
        logs.put_subscription_filter(**resources.subscription_filter(settings.invocation_log_group, stream,
                                                                     logs_role))
        say(f"subscription {resources.SUBSCRIPTION_FILTER}: {settings.invocation_log_group} → stream")
        made["logs_role"] = logs_role
    return made
