"""Typed, frozen event objects: what a Kinesis record (or a file) decodes into, once, at the boundary.

Everything after decoding works on these, never on raw dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bedrock_usage.identity import Principal

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

    @property
    def counted(self) -> bool:
        """A call that failed (denied, throttled, invalid) is recorded but uses no quota."""
        return self.error_code is None


@dataclass(frozen=True, slots=True)
class InvocationLog:
    """A Bedrock model invocation log record (tokens). Natural key: `request_id`.

    Recognised and routed now; metering tokens and cost from it is a later stage (the counters
    already carry token fields).
    """

    request_id: str
    timestamp: datetime
    account_id: str
    region: str
    operation: str
    model_id: str
    identity_arn: str
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """Well-formed input that is not ours to count: a CloudWatch Logs control message
    (`control_message`), or a Bedrock call that uses no quota (`not_counted_operation`)."""

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
