"""`bedrockctl producer apply` creates the rule, target, role, DLQ and subscription, idempotently; the rule
matches the real-shaped events it must and not the others."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from bedrockctl.main import main
from devtools.settings import AllSettings
from devtools.simulate import matches_rule
from producer_config import resources
from producer_config.apply import apply
from producer_config.rule import PARTITION_KEY_PATH, RULE_STATE
from tests.conftest import load_event
from tests.conftest import test_env as _env


@pytest.fixture
def account(aws: None) -> AllSettings:
    boto3.client("kinesis", region_name="us-east-1").create_stream(StreamName="bedrock-usage-events", ShardCount=2)
    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName="/aws/bedrock/invocations")
    return AllSettings.from_env(_env(STREAM_NAME="bedrock-usage-events",
                                     INVOCATION_LOG_GROUP="/aws/bedrock/invocations"))


def test_apply_creates_everything_and_again_changes_nothing(account: AllSettings) -> None:
    said: list[str] = []
    made = apply(account, said.append)
    again = apply(account, said.append)
    assert made == again

    events = boto3.client("events", region_name="us-east-1")
    described = events.describe_rule(Name="bedrock-usage-control")
    assert described["State"] == RULE_STATE
    assert json.loads(described["EventPattern"])["detail"]["eventName"] == [
        "InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]
    (target,) = events.list_targets_by_rule(Rule="bedrock-usage-control")["Targets"]
    assert target["Arn"] == made["stream"] and target["KinesisParameters"]["PartitionKeyPath"] == PARTITION_KEY_PATH
    assert target["DeadLetterConfig"]["Arn"] == made["dlq"] and target["RetryPolicy"]["MaximumRetryAttempts"] == 185

    iam = boto3.client("iam", region_name="us-east-1")
    policy = iam.get_role_policy(RoleName="bedrock-usage-control-events-to-kinesis", PolicyName="put-records")
    document = policy["PolicyDocument"]
    (statement,) = (json.loads(document) if isinstance(document, str) else document)["Statement"]
    assert statement["Action"] == ["kinesis:PutRecord", "kinesis:PutRecords"]
    assert statement["Resource"] == made["stream"]

    (subscription,) = boto3.client("logs", region_name="us-east-1").describe_subscription_filters(
        logGroupName="/aws/bedrock/invocations")["subscriptionFilters"]
    assert subscription["destinationArn"] == made["stream"] and subscription["roleArn"] == made["logs_role"]
    assert sum("created" in line for line in said) == 2  # the two roles, the first time only


def test_apply_needs_the_stream(aws: None) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    with pytest.raises(ClientError) as missing:
        apply(AllSettings.from_env(_env(STREAM_NAME="nope")), lambda _: None)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_show_prints_the_rendered_config(account: AllSettings, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(STREAM_NAME="bedrock-usage-events").items():
        monkeypatch.setenv(name, value)
    assert main(["producer", "show", "--account", "111122223333"]) == 0
    shown: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert shown["rule"]["State"] == RULE_STATE
    assert shown["target"]["Arn"] == "arn:aws:kinesis:us-east-1:111122223333:stream/bedrock-usage-events"
    assert "subscription_filter" not in shown


@pytest.mark.parametrize(("name", "matches"), [
    ("eventbridge-invokemodel-iamuser.json", True),
])
def test_the_rule_matches_real_shaped_events(name: str, matches: bool) -> None:
    assert matches_rule(load_event(name)) is matches


def test_the_rule_does_not_match_other_bedrock_or_other_services_events() -> None:
    event = load_event("eventbridge-invokemodel-iamuser.json")
    for change in ({"eventName": "ListFoundationModels"}, {"eventSource": "s3.amazonaws.com"}):
        other = {**event, "detail": {**event["detail"], **change}}
        assert matches_rule(other) is False
    assert matches_rule({**event, "detail-type": "AWS Service Event via CloudTrail"}) is False
    assert resources.RULE_STATE == RULE_STATE
