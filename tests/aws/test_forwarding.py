"""`bedrockctl producer apply` with source regions, on moto in several regions: a forwarding rule, target and
dead-letter queue in each listed region, one role for all, nothing in the home region; applying again
changes nothing; a region taken off the list loses its rule. (moto's EventBridge delivers nothing across
regions: what is checked is what exists, and tests/unit/test_forwarding.py that the home rule matches it.)"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bedrockctl.main import main
from devtools.settings import AllSettings
from producer_config.apply import apply
from producer_config.rule import RULE_STATE, event_pattern
from tests.conftest import test_env as _env

ACCOUNT = "123456789012"  # moto's
HOME_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
FORWARD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bedrock-usage-control-events-to-home-bus"
RULE = "bedrock-usage-control-forward"
DLQ = "bedrock-usage-control-forward-dlq"


@pytest.fixture
def account(aws: None) -> AllSettings:
    boto3.client("kinesis", region_name="us-east-1").create_stream(StreamName="bedrock-usage-events", ShardCount=1)
    return AllSettings.from_env(_env(STREAM_NAME="bedrock-usage-events",
                                     SOURCE_REGIONS="us-east-1,eu-west-1,us-west-2"))


def _document(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def snapshot(regions: tuple[str, ...]) -> dict[str, Any]:
    """Everything apply manages for forwarding, as AWS describes it."""
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.get_role(RoleName=FORWARD_ROLE.rsplit("/", 1)[1])["Role"]
    state: dict[str, Any] = {"role": (_document(role["AssumeRolePolicyDocument"]), _document(iam.get_role_policy(
        RoleName=role["RoleName"], PolicyName="put-events")["PolicyDocument"]))}
    for region in regions:
        events, sqs = boto3.client("events", region_name=region), boto3.client("sqs", region_name=region)
        url = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
        state[region] = {
            "rule": events.describe_rule(Name=RULE),
            "targets": events.list_targets_by_rule(Rule=RULE)["Targets"],
            "dlq": sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"],
        }
        for volatile in ("ResponseMetadata",):
            state[region]["rule"].pop(volatile, None)
    return state


def no_rule(region: str) -> bool:
    with pytest.raises(ClientError) as missing:
        boto3.client("events", region_name=region).describe_rule(Name=RULE)
    return missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_apply_forwards_each_listed_region_to_the_home_bus(account: AllSettings) -> None:
    said: list[str] = []
    made = apply(account, said.append)

    assert made["home_event_bus"] == HOME_BUS and made["forward_role"] == FORWARD_ROLE
    assert sorted(made["forwarders"]) == ["eu-west-1", "us-west-2"]
    for region in ("eu-west-1", "us-west-2"):
        events = boto3.client("events", region_name=region)
        rule = events.describe_rule(Name=RULE)
        assert rule["State"] == RULE_STATE and json.loads(rule["EventPattern"]) == event_pattern()
        assert rule["Arn"] == made["forwarders"][region] == f"arn:aws:events:{region}:{ACCOUNT}:rule/{RULE}"
        (target,) = events.list_targets_by_rule(Rule=RULE)["Targets"]
        dlq = f"arn:aws:sqs:{region}:{ACCOUNT}:{DLQ}"
        assert target == {"Id": "bedrock-usage-home-bus", "Arn": HOME_BUS, "RoleArn": FORWARD_ROLE,
                          "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                          "DeadLetterConfig": {"Arn": dlq}}
        sqs = boto3.client("sqs", region_name=region)
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"],
                                                     AttributeNames=["Policy"])["Attributes"]["Policy"])
        assert policy["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    assert no_rule("us-east-1")  # the home rule covers the home region; a forwarder there would loop

    (statement,) = snapshot(("eu-west-1",))["role"][1]["Statement"]
    assert statement == {"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": HOME_BUS}
    assert boto3.client("events", region_name="us-east-1").describe_rule(Name="bedrock-usage-control")[
        "State"] == RULE_STATE
    assert [line for line in said if line.startswith("region ")] == [
        f"region eu-west-1: forwarding rule {RULE} created → {HOME_BUS} (DLQ {DLQ})",
        f"region us-west-2: forwarding rule {RULE} created → {HOME_BUS} (DLQ {DLQ})"]


def test_applying_again_changes_nothing(account: AllSettings) -> None:
    first = apply(account, lambda _: None)
    before = snapshot(("eu-west-1", "us-west-2"))
    said: list[str] = []

    again = apply(account, said.append)

    assert again == first
    assert snapshot(("eu-west-1", "us-west-2")) == before
    assert [line for line in said if line.startswith("region ")] == [
        f"region eu-west-1: forwarding rule {RULE} unchanged → {HOME_BUS} (DLQ {DLQ})",
        f"region us-west-2: forwarding rule {RULE} unchanged → {HOME_BUS} (DLQ {DLQ})"]
    assert not any("created" in line for line in said)


def test_a_drifted_forwarder_is_put_back(account: AllSettings) -> None:
    apply(account, lambda _: None)
    events = boto3.client("events", region_name="eu-west-1")
    events.put_rule(Name=RULE, EventPattern=json.dumps({"source": ["aws.bedrock"]}), State="ENABLED")
    events.remove_targets(Rule=RULE, Ids=["bedrock-usage-home-bus"])
    said: list[str] = []

    apply(account, said.append)

    rule = events.describe_rule(Name=RULE)
    assert rule["State"] == RULE_STATE and json.loads(rule["EventPattern"]) == event_pattern()
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=RULE)["Targets"]] == [HOME_BUS]
    assert f"region eu-west-1: forwarding rule {RULE} updated → {HOME_BUS} (DLQ {DLQ})" in said


def test_a_region_taken_off_the_list_loses_its_forwarder(account: AllSettings) -> None:
    apply(account, lambda _: None)
    said: list[str] = []

    made = apply(account, said.append, regions=("eu-west-1",))

    assert list(made["forwarders"]) == ["eu-west-1"]
    assert no_rule("us-west-2")
    with pytest.raises(ClientError):
        boto3.client("sqs", region_name="us-west-2").get_queue_url(QueueName=DLQ)
    assert boto3.client("events", region_name="eu-west-1").describe_rule(Name=RULE)["State"] == RULE_STATE
    assert f"region us-west-2: forwarding rule {RULE} removed (region not listed: its calls are not counted)" in said


def test_an_empty_list_removes_every_forwarder_but_keeps_a_dead_letter_queue_holding_calls(
        account: AllSettings) -> None:
    apply(account, lambda _: None)
    sqs = boto3.client("sqs", region_name="us-west-2")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"], MessageBody="{}")
    said: list[str] = []

    made = apply(account, said.append, regions=())

    assert "forwarders" not in made
    assert no_rule("eu-west-1") and no_rule("us-west-2")
    assert sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
    assert f"region us-west-2: dead-letter queue {DLQ} kept: it holds undelivered calls" in said
    assert f"region eu-west-1: dead-letter queue {DLQ} removed" in said


def test_a_forwarder_in_the_home_region_is_removed(account: AllSettings) -> None:
    """Left there when the home region moved: it would send the home bus's events to itself."""
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name=RULE, EventPattern=json.dumps(event_pattern()), State=RULE_STATE)
    events.put_targets(Rule=RULE, Targets=[{"Id": "bedrock-usage-home-bus", "Arn": HOME_BUS,
                                            "RoleArn": FORWARD_ROLE}])

    apply(account, lambda _: None)

    assert no_rule("us-east-1")


def test_the_cli_takes_regions(account: AllSettings, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(STREAM_NAME="bedrock-usage-events", SOURCE_REGIONS="eu-west-1").items():
        monkeypatch.setenv(name, value)

    assert main(["producer", "apply", "--regions", "us-west-2, ap-northeast-1"]) == 0
    assert no_rule("eu-west-1")
    assert boto3.client("events", region_name="ap-northeast-1").describe_rule(Name=RULE)["State"] == RULE_STATE
    capsys.readouterr()

    assert main(["producer", "show", "--account", "111122223333", "--regions", "eu-central-1,us-east-1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown["forwarding"]["regions"]) == ["eu-central-1"]
    assert main(["producer", "show", "--account", "111122223333"]) == 0
    assert list(json.loads(capsys.readouterr().out)["forwarding"]["regions"]) == ["eu-west-1"]

    assert main(["producer", "apply", "--regions", "eu-west-1,Europe"]) == 2
    assert capsys.readouterr().err.strip() == (
        "bedrockctl: --regions must be comma-separated AWS regions (e.g. eu-west-1), got 'Europe'")
