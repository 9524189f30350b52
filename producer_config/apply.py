"""`bedrockctl producer apply`: create or update the producer side in an existing account, idempotently.

The stream must exist (the CloudFormation stack, or your own). Each step says whether it created or
updated something; running it again changes nothing but what drifted. The forwarding rules are
declarative: each listed source region gets one, and one found in a region no longer listed is removed
(producer_config/forwarding.py says why they exist).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from bedrock_usage import aws
from producer_config import forwarding, resources
from producer_config.forwarding import ForwardNames
from producer_config.resources import Names
from producer_config.settings import ProducerSettings

Say = Callable[[str], None]
# Where these credentials may not act (an SCP denying a region, a region not enabled): looking for a
# forwarding rule to remove there is reported as not done, and the other regions go on.
_UNREACHABLE = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
                "UnauthorizedOperation", "AuthFailure"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _role(iam: Any, name: str, trust: dict[str, Any], policy: dict[str, Any], say: Say, *,
          policy_name: str = "put-records", purpose: str = "put records on its stream") -> str:
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        say(f"role {name}: trust policy set")
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                  Description=f"Bedrock Usage Control: {purpose}")["Role"]["Arn"])
        say(f"role {name}: created")
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn


def apply(settings: ProducerSettings, say: Say = print, regions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Everything feeding the stream; `regions` (else SOURCE_REGIONS) are the regions whose calls count."""
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
    made: dict[str, Any] = {"stream": stream, "rule": rule_arn, "dlq": queue_arn, "events_role": events_role}

    if settings.invocation_log_group:
        logs = aws.client(settings, "logs")
        logs_role = _role(iam, names.logs_role,
                          resources.trust_policy(f"logs.{settings.aws_region}.amazonaws.com"),
                          resources.put_records_policy(stream), say)
        logs.put_subscription_filter(**resources.subscription_filter(settings.invocation_log_group, stream,
                                                                     logs_role))
        say(f"subscription {resources.SUBSCRIPTION_FILTER}: {settings.invocation_log_group} → stream")
        made["logs_role"] = logs_role
    made.update(apply_forwarding(settings, stream, say, regions))
    return made


def _in(settings: ProducerSettings, region: str) -> ProducerSettings:
    """The same settings acting in another region (aws.client builds its clients for settings.aws_region)."""
    return replace(settings, aws_region=region)


def apply_forwarding(settings: ProducerSettings, stream_arn: str, say: Say = print,
                     regions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A forwarding rule in each listed region but the home region, and none elsewhere."""
    _, partition, _, _, account = stream_arn.split(":", 5)[:5]
    names = ForwardNames.of(settings)
    home_bus = forwarding.home_bus_arn(settings, account, partition)
    wanted = forwarding.forwarding_regions(settings, regions)
    made: dict[str, Any] = {}
    if wanted:
        iam = aws.client(settings, "iam")
        role = _role(iam, names.role, resources.trust_policy("events.amazonaws.com"),
                     forwarding.put_events_policy(home_bus), say, policy_name="put-events",
                     purpose=f"forward Bedrock calls to the event bus of {settings.aws_region}")
        made = {"home_event_bus": home_bus, "forward_role": role,
                "forwarders": {region: _forwarder(settings, region, home_bus, role, say) for region in wanted}}
    _remove_unlisted(settings, set(wanted), say)
    return made


def _forwarder(settings: ProducerSettings, region: str, home_bus: str, role: str, say: Say) -> str:
    """Create or update one region's forwarding rule, target and dead-letter queue; write only what differs."""
    here = _in(settings, region)
    events, sqs = aws.client(here, "events"), aws.client(here, "sqs")
    names = ForwardNames.of(settings)
    queue_url = sqs.create_queue(QueueName=names.dlq, Attributes={"MessageRetentionPeriod": "1209600",
                                                                  "SqsManagedSseEnabled": "true"})["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
    queue_arn = attributes["QueueArn"]

    rule = forwarding.forward_rule(settings, region)
    try:
        current: dict[str, Any] | None = events.describe_rule(Name=rule["Name"])
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        current = None
    if current and (current.get("State"), current.get("Description"), json.loads(current.get("EventPattern") or "null")
                    ) == (rule["State"], rule["Description"], json.loads(rule["EventPattern"])):
        rule_arn, state = str(current["Arn"]), "unchanged"
    else:
        rule_arn, state = str(events.put_rule(**rule)["RuleArn"]), "updated" if current else "created"

    policy = resources.dlq_policy(queue_arn, rule_arn)
    if json.loads(attributes.get("Policy") or "null") != policy:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        state = "updated" if state == "unchanged" else state

    target = forwarding.forward_target(home_bus, role, queue_arn)
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    if not any(all(t.get(key) == value for key, value in target.items()) for t in targets):
        failed = events.put_targets(Rule=rule["Name"], Targets=[target])
        if failed.get("FailedEntryCount"):
            raise RuntimeError(f"put_targets failed in {region}: {failed['FailedEntries']}")
        state = "updated" if state == "unchanged" else state
    say(f"region {region}: forwarding rule {rule['Name']} {state} → {home_bus} (DLQ {names.dlq})")
    return rule_arn


def _remove_unlisted(settings: ProducerSettings, keep: set[str], say: Say) -> None:
    """Remove our forwarding rule from every enabled region not listed (the home region included: a rule
    there would forward its bus to itself). Its dead-letter queue goes too, unless it holds events."""
    try:
        enabled = [r["RegionName"] for r in aws.client(settings, "ec2").describe_regions()["Regions"]]
    except ClientError as error:
        if _code(error) not in _UNREACHABLE:
            raise
        say(f"regions not listed: not checked for forwarding rules ({_code(error)} on ec2:DescribeRegions)")
        return
    names = ForwardNames.of(settings)
    unreachable = []
    for region in sorted(set(enabled) - keep):
        events = aws.client(_in(settings, region), "events")
        try:
            targets = events.list_targets_by_rule(Rule=names.rule)["Targets"]
        except ClientError as error:
            if _code(error) in _UNREACHABLE:
                unreachable.append(region)
            elif _code(error) != "ResourceNotFoundException":
                raise
            continue
        if targets:
            events.remove_targets(Rule=names.rule, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=names.rule)
        say(f"region {region}: forwarding rule {names.rule} removed (region not listed: its calls are not counted)")
        _remove_queue(aws.client(_in(settings, region), "sqs"), names.dlq, region, say)
    if unreachable:
        say(f"regions not checked for forwarding rules (access denied): {', '.join(unreachable)}")


def _remove_queue(sqs: Any, name: str, region: str, say: Say) -> None:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if _code(error) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        return
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    if any(int(v) for v in counts.values()):
        say(f"region {region}: dead-letter queue {name} kept: it holds undelivered calls")
    else:
        sqs.delete_queue(QueueUrl=url)
        say(f"region {region}: dead-letter queue {name} removed")
