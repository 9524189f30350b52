"""Local stand-in for CloudTrail + EventBridge (moto's EventBridge cannot deliver to Kinesis).

Generates realistic Bedrock runtime traffic as the EventBridge events CloudTrail produces, filters it
with the rule's real pattern, and puts each matching event into the stream with the rule's partition
key, as the Kinesis target would. Used by `make demo`, the end-to-end tests and the benchmark.
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from moto.events.models import EventPattern

from producer_config.rule import event_pattern, partition_key

ACCOUNT = "111122223333"
SSO_ROLE = "AWSReservedSSO_BedrockUsers_aa59d952f393cb6a"
SSO_ROLE_ID = "AROAZLY3W2WBRTBIFDNWJ"
MODELS = (
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "eu.anthropic.claude-sonnet-4-20250514-v1:0",
    "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-3-70b-instruct-v1:0",
)
OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")
USER_AGENT = ("Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/macos#22.6.0 md/arch#x86_64 lang/python#3.12.4"
              " md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162")


@dataclass(frozen=True)
class Person:
    name: str  # IAM user name, or SSO user name (an email)
    sso: bool
    account: str = ACCOUNT

    @property
    def quota_key(self) -> str:
        return f"sso:{self.name.lower()}" if self.sso else f"arn:aws:iam::{self.account}:user/{self.name}"

    def user_identity(self) -> dict[str, Any]:
        if not self.sso:
            return {
                "type": "IAMUser", "principalId": "AIDA" + uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex[:17].upper(),
                "arn": self.quota_key, "accountId": self.account, "accessKeyId": "AKIAEXAMPLE",
                "userName": self.name,
            }
        return {
            "type": "AssumedRole",
            "principalId": f"{SSO_ROLE_ID}:{self.name}",
            "arn": f"arn:aws:sts::{self.account}:assumed-role/{SSO_ROLE}/{self.name}",
            "accountId": self.account,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": SSO_ROLE_ID,
                    "arn": f"arn:aws:iam::{self.account}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{SSO_ROLE}",
                    "accountId": self.account, "userName": SSO_ROLE,
                },
                "attributes": {"creationDate": "2026-01-01T08:00:00Z", "mfaAuthenticated": "false"},
            },
        }


def bedrock_event(person: Person, when: datetime, rng: random.Random, error: str | None = None) -> dict[str, Any]:
    """An EventBridge event for one Bedrock runtime call, shaped like tests/events/*."""
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    detail: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": person.user_identity(),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "bedrock.amazonaws.com",
        "eventName": rng.choice(OPERATIONS),
        "awsRegion": "eu-west-1",
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "userAgent": USER_AGENT,
        "requestParameters": {"modelId": rng.choice(MODELS)},
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": person.account,
        "eventCategory": "Management",
    }
    if error == "ThrottlingException":
        detail.update(errorCode=error, errorMessage="Too many requests, please wait before trying again.")
    elif error == "AccessDenied":
        detail.update(errorCode=error, errorMessage=f"User: {detail['userIdentity']['arn']} is not authorized"
                      " to perform: bedrock:InvokeModel with an explicit deny in an identity-based policy")
    return {
        "version": "0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.bedrock",
        "account": person.account,
        "time": detail["eventTime"],
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def invocation_log(call: dict[str, Any], rng: random.Random, *, input_tokens: int | None = None,
                   output_tokens: int | None = None, body_bytes: int = 2000) -> dict[str, Any]:
    """The model invocation log record Bedrock writes for the call of an EventBridge event (same request
    ID and caller), with Converse-shaped bodies of about `body_bytes` of text (placeholder text, as a prompt
    would be) and the usage they report."""
    detail = call["detail"]
    identity = detail["userIdentity"]
    tokens_in = rng.randrange(50, 4000) if input_tokens is None else input_tokens
    tokens_out = rng.randrange(20, 1500) if output_tokens is None else output_tokens
    cached = rng.choice((0, 0, 0, 1024, 2048))
    half = "x" * (body_bytes // 2)
    return {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": detail["eventTime"], "accountId": detail["recipientAccountId"],
        "identity": {"arn": identity["arn"]}, "region": detail["awsRegion"], "requestId": detail["requestID"],
        "operation": detail["eventName"], "modelId": detail["requestParameters"]["modelId"],
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": half}]}]},
                  "inputTokenCount": tokens_in, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": cached},
        "output": {"outputContentType": "application/json",
                   "outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": half}]}},
                                      "stopReason": "end_turn",
                                      "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out,
                                                "cacheReadInputTokens": 0, "cacheWriteInputTokens": cached,
                                                "cacheDetails": [{"inputTokens": cached, "ttl": "5m"}] if cached
                                                else []}},
                   "outputTokenCount": tokens_out},
    }


def subscription_payload(logs: Sequence[dict[str, Any]], *, log_group: str = "/aws/bedrock/invocations") -> bytes:
    """A CloudWatch Logs subscription DATA_MESSAGE carrying log records, gzip'd as Kinesis receives it."""
    payload = {
        "messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": log_group,
        "logStream": "aws/bedrock/modelinvocations", "subscriptionFilters": ["bedrock-usage-control"],
        "logEvents": [{"id": str(i), "timestamp": 0, "message": orjson.dumps(entry).decode()}
                      for i, entry in enumerate(logs)],
    }
    return gzip.compress(orjson.dumps(payload))


def people(count: int, sso_share: float = 0.4, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    return [Person(f"user{i:05d}@example.com", True) if rng.random() < sso_share else Person(f"user{i:05d}", False)
            for i in range(count)]


def traffic(
    crowd: Sequence[Person], count: int, start: datetime, span: timedelta, *, seed: int = 1,
    error_rate: float = 0.03, weights: Sequence[float] | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` events spread over [start, start + span), in time order."""
    rng = random.Random(seed)
    step = span / max(count, 1)
    for i in range(count):
        person = rng.choices(crowd, weights=weights)[0] if weights else rng.choice(crowd)
        roll = rng.random()
        error = ("ThrottlingException" if roll < error_rate * 0.8 else
                 "AccessDenied" if roll < error_rate else None)
        yield bedrock_event(person, start + step * i, rng, error)


def matches_rule(event: dict[str, Any]) -> bool:
    """Apply the rule's real pattern with moto's EventBridge matcher (local use only)."""
    return bool(EventPattern.load(orjson.dumps(event_pattern()).decode()).matches_event(event))  # type: ignore[arg-type]


def deliver(kinesis: Any, stream: str, events: Iterable[dict[str, Any]], *, batch: int = 500) -> int:
    """Put matching events into the stream as the rule's Kinesis target would: the whole envelope as
    UTF-8 JSON, partitioned by the rule's PartitionKeyPath. Returns how many were put."""
    return put_records(kinesis, stream, ((orjson.dumps(event), partition_key(event))
                                         for event in events if matches_rule(event)), batch=batch)


def put_records(kinesis: Any, stream: str, records: Iterable[tuple[bytes, str]], *, batch: int = 500) -> int:
    """Put (data, partition key) records into the stream, `batch` per PutRecords. Returns how many were put."""
    entries: list[dict[str, Any]] = []
    sent = 0

    def flush() -> None:
        nonlocal entries, sent
        if entries:
            reply = kinesis.put_records(StreamName=stream, Records=entries)
            if reply.get("FailedRecordCount"):
                raise RuntimeError(f"{reply['FailedRecordCount']} records were not put")
            sent += len(entries)
            entries = []

    for data, key in records:
        entries.append({"Data": data, "PartitionKey": key})
        if len(entries) >= batch:
            flush()
    flush()
    return sent
