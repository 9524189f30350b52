"""producer_config.rule: the EventBridge pattern (applied with moto's real matcher) and the partition key."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.simulate import Person, bedrock_event, matches_rule, people, traffic
from producer_config.rule import PARTITION_KEY_PATH, RULE_STATE, RUNTIME_OPERATIONS, event_pattern, partition_key
from tests.conftest import load_event

CLOUDTRAIL_SAMPLES = [
    "cloudtrail-invokemodel-iamuser.json",
    "cloudtrail-conversestream-sso.json",
    "cloudtrail-invokemodel-throttled.json",
    "cloudtrail-invokemodel-accessdenied.json",
]


def envelope_of(record: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge makes of a CloudTrail record."""
    return {
        "version": "0",
        "id": "11111111-2222-4333-8444-555555555555",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.bedrock",
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def test_event_pattern_is_exactly_the_bedrock_runtime_calls() -> None:
    assert event_pattern() == {
        "source": ["aws.bedrock"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["bedrock.amazonaws.com"],
            "eventName": ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"],
        },
    }
    assert RUNTIME_OPERATIONS == ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")


def test_rule_takes_read_only_management_events() -> None:
    assert RULE_STATE == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"


def test_eventbridge_sample_matches() -> None:
    assert matches_rule(load_event("eventbridge-invokemodel-iamuser.json")) is True


@pytest.mark.parametrize("sample", CLOUDTRAIL_SAMPLES)
def test_envelopes_of_the_cloudtrail_samples_match(sample: str) -> None:
    assert matches_rule(envelope_of(load_event(sample))) is True


@pytest.mark.parametrize("index", [0, 1, 2])
def test_envelopes_of_the_log_file_records_match(index: int) -> None:
    record = load_event("cloudtrail-logfile.json")["Records"][index]

    assert matches_rule(envelope_of(record)) is True


@pytest.mark.parametrize("operation", RUNTIME_OPERATIONS)
def test_every_runtime_operation_matches(operation: str) -> None:
    event = load_event("eventbridge-invokemodel-iamuser.json")
    event["detail"]["eventName"] = operation

    assert matches_rule(event) is True


@pytest.mark.parametrize("operation", ["ListFoundationModels", "GetFoundationModel", "InvokeAgent", "invokemodel"])
def test_other_operations_do_not_match(operation: str) -> None:
    event = load_event("eventbridge-invokemodel-iamuser.json")
    event["detail"]["eventName"] = operation

    assert matches_rule(event) is False


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("source",), "aws.s3"),
        (("detail-type",), "AWS Service Event via CloudTrail"),
        (("detail-type",), "AWS Console Sign In via CloudTrail"),
        (("detail", "eventSource"), "s3.amazonaws.com"),
    ],
)
def test_other_sources_and_detail_types_do_not_match(path: tuple[str, ...], value: str) -> None:
    event = load_event("eventbridge-invokemodel-iamuser.json")
    node = event
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value

    assert matches_rule(event) is False


def test_simulated_traffic_matches_the_rule() -> None:
    events = list(traffic(people(5), 20, datetime(2026, 1, 5, 9, tzinfo=UTC), timedelta(hours=1), error_rate=0.5))

    assert [matches_rule(e) for e in events] == [True] * 20


def test_partition_key_is_the_principal_id() -> None:
    assert partition_key(load_event("eventbridge-invokemodel-iamuser.json")) == "AIDAIHL7V6WZEXAMPLEVU"
    sso = envelope_of(load_event("cloudtrail-conversestream-sso.json"))
    assert partition_key(sso) == "AROAZLY3W2WBRTBIFDNWJ:alice@example.com"


def test_one_persons_calls_share_a_partition_key() -> None:
    rng = random.Random(3)
    person = Person("erin@example.com", sso=True)

    keys = {partition_key(bedrock_event(person, datetime(2026, 1, 5, tzinfo=UTC), rng)) for _ in range(5)}

    assert keys == {"AROAZLY3W2WBRTBIFDNWJ:erin@example.com"}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["detail"]["userIdentity"].pop("principalId"),
        lambda e: e["detail"].pop("userIdentity"),
        lambda e: e["detail"].__setitem__("userIdentity", "not an object"),
        lambda e: e.pop("detail"),
    ],
)
def test_partition_key_falls_back_to_the_event_id(mutate: Any) -> None:
    event = copy.deepcopy(load_event("eventbridge-invokemodel-iamuser.json"))
    mutate(event)

    assert partition_key(event) == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"


def test_partition_key_without_a_path_match_or_an_id_is_empty() -> None:
    assert partition_key({"detail": {}}) == ""


def test_partition_key_follows_another_path() -> None:
    event = load_event("eventbridge-invokemodel-iamuser.json")

    assert partition_key(event, "$.detail.eventID") == "a8d388e2-3111-44bf-b78f-b0e263dc3d25"
    assert PARTITION_KEY_PATH == "$.detail.userIdentity.principalId"
