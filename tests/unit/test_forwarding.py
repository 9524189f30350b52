"""producer_config.forwarding: the rules that forward other regions' Bedrock calls to the home region's bus,
rendered (compared as JSON), and the home rule matching what they forward (moto's real matcher)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from devtools.settings import AllSettings
from producer_config import forwarding
from producer_config.forwarding import ForwardNames
from producer_config.rule import RULE_STATE, event_pattern
from tests.conftest import load_event

ACCOUNT = "111122223333"


def settings(**env: str) -> AllSettings:
    return AllSettings.from_env({"AWS_REGION": "eu-west-1", **env})


def test_every_listed_region_but_the_home_region_forwards_in_the_order_listed() -> None:
    s = settings(SOURCE_REGIONS="us-east-1, eu-west-1,eu-central-1,us-east-1")

    assert s.source_regions == ("us-east-1", "eu-west-1", "eu-central-1")
    assert forwarding.forwarding_regions(s) == ("us-east-1", "eu-central-1")


def test_regions_given_win_over_the_setting() -> None:
    s = settings(SOURCE_REGIONS="us-east-1")

    assert forwarding.forwarding_regions(s, ("ap-northeast-1", "eu-west-1")) == ("ap-northeast-1",)
    assert forwarding.forwarding_regions(s, ()) == ()


@pytest.mark.parametrize("listed", ["", "eu-west-1"])
def test_the_home_region_alone_renders_no_forwarding(listed: str) -> None:
    assert forwarding.rendered(settings(SOURCE_REGIONS=listed), ACCOUNT) == {}


def test_rendered_forwarding_for_one_region() -> None:
    pattern = {"source": ["aws.bedrock"], "detail-type": ["AWS API Call via CloudTrail"],
               "detail": {"eventSource": ["bedrock.amazonaws.com"],
                          "eventName": ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]}}
    home_bus = "arn:aws:events:eu-west-1:111122223333:event-bus/default"
    role = "arn:aws:iam::111122223333:role/bedrock-usage-control-events-to-home-bus"
    dlq = "arn:aws:sqs:eu-central-1:111122223333:bedrock-usage-control-forward-dlq"
    rule_arn = "arn:aws:events:eu-central-1:111122223333:rule/bedrock-usage-control-forward"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

    shown = forwarding.rendered(settings(SOURCE_REGIONS="eu-central-1"), ACCOUNT)

    assert json.loads(json.dumps(shown)) == {
        "home_event_bus": home_bus,
        "regions": {"eu-central-1": {
            "rule": {"Name": "bedrock-usage-control-forward", "EventPattern": pattern,
                     "State": "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
                     "Description": "Bedrock runtime calls (CloudTrail) in eu-central-1 to the Bedrock Usage Control"
                                    " rule in eu-west-1"},
            "target": {"Id": "bedrock-usage-home-bus", "Arn": home_bus, "RoleArn": role,
                       "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                       "DeadLetterConfig": {"Arn": dlq}},
            "dead_letter_queue": {"name": "bedrock-usage-control-forward-dlq", "policy": {
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                    "Resource": dlq, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]}},
        }},
        "role": {"bedrock-usage-control-events-to-home-bus": {
            "trust": trust,
            "policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": home_bus}]}}},
    }


def test_the_forwarding_rule_is_the_home_rules_pattern_in_the_management_events_state() -> None:
    rule = forwarding.forward_rule(settings(), "us-west-2")

    assert json.loads(rule["EventPattern"]) == event_pattern()
    assert rule["State"] == RULE_STATE == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"


def test_the_forwarding_role_may_only_put_events_on_the_home_default_bus() -> None:
    bus = forwarding.home_bus_arn(settings(), ACCOUNT)

    assert bus == "arn:aws:events:eu-west-1:111122223333:event-bus/default"
    (statement,) = forwarding.put_events_policy(bus)["Statement"]
    assert statement == {"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": bus}


def test_names_follow_the_rule_name() -> None:
    assert ForwardNames.of(settings(RULE_NAME="bu-prod")) == ForwardNames(
        "bu-prod-forward", "bu-prod-forward-dlq", "bu-prod-events-to-home-bus")


def _from(region: str, sample: str = "eventbridge-invokemodel-iamuser.json") -> dict[str, Any]:
    """A Bedrock call made in `region`, as the forwarding rule puts it on the home bus: envelope unchanged."""
    event = load_event(sample)
    return {**event, "region": region, "detail": {**event["detail"], "awsRegion": region}}


@pytest.mark.parametrize("region", ["eu-central-1", "us-east-1", "ap-southeast-2", "us-gov-west-1"])
def test_the_home_pattern_matches_calls_made_in_another_region(region: str) -> None:
    home = EventPattern.load(json.dumps(event_pattern()))

    assert home.matches_event(_from(region)) is True


def test_the_home_pattern_still_rejects_other_calls_from_another_region() -> None:
    home = EventPattern.load(json.dumps(event_pattern()))
    event = _from("eu-central-1")

    assert home.matches_event({**event, "detail": {**event["detail"], "eventName": "ListFoundationModels"}}) is False
