"""Typed, frozen event objects: what a Kinesis record (or a file) decodes into, once, at the boundary.

Everything after decoding works on these, never on raw dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bedrock_usage.identity import Principal
from bedrock_usage.pricing.rates import CacheSplit, Tokens

# The Bedrock runtime operations that use quota. Converse and ConverseStream are authorised as
# InvokeModel / InvokeModelWithResponseStream, but CloudTrail records them under their own names.
COUNTED_OPERATIONS = frozenset({"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"})


@dataclass(frozen=True, slots=True)
class BedrockCall:
    """One Bedrock runtime call from CloudTrail. Natural key: `event_id`."""

    event_id: str
    event_time: datetime  # UTC
    principal: Principal
    operation: str
    model_id: str
    region: str
    account_id: str  # the account the call was made in (recipientAccountId)
    request_id: str | None
    source_ip: str | None
    user_agent: str | None
    error_code: str | None
    inference_region: str | None
    # Made with a Bedrock API key (additionalEventData.callWithBearerToken): CloudTrail then names the key's
    # IAM user, never the key; the report by tool finds the key among the user's (bedrock_usage/tools.py).
    bearer_token: bool = False

    @property
    def counted(self) -> bool:
        """A call that failed (denied, throttled, invalid) is recorded but uses no quota."""
        return self.error_code is None


@dataclass(frozen=True, slots=True)
class InvocationLog:
    """A Bedrock model invocation log record: who made which call and its tokens by part. Natural key:
    `request_id` (the call's CloudTrail `requestID`). Holds no prompt or completion text."""

    request_id: str
    timestamp: datetime  # UTC
    principal: Principal  # from identity.arn, keyed as the call's CloudTrail event is
    account_id: str
    region: str  # where the call was made (prices of geo profiles are that region's)
    inference_region: str | None
    operation: str
    model_id: str  # as logged: a base ID, a profile, an ARN…
    error_code: str | None
    tier: str  # standard, flex, priority, latency-optimized…
    tokens: Tokens
    cache_split: CacheSplit


@dataclass(frozen=True, slots=True)
class Skipped:
    """Well-formed input that is not ours to count: a CloudWatch Logs control message
    (`control_message`), a Bedrock call that uses no quota (`not_counted_operation`), or an event outside
    the period a replay covers (`outside_period`)."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that will not decode: it goes to the dead-letter table with its reason, and processing goes on."""

    reason: str
    detail: str
    raw: bytes
    index: int  # position inside the record (a log file holds many events)


Decoded = BedrockCall | InvocationLog | Skipped | Rejected


def utc_time(text: str) -> datetime | None:
    """An ISO 8601 time (CloudTrail's `…Z`, a log's timestamp) as an aware UTC datetime; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is UTC:  # "…Z": already what we want
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
