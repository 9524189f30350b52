"""Bytes → typed events. Pure: no I/O beyond decompression, no AWS client.

One Kinesis record (or one file) may hold:
- the EventBridge envelope an EventBridge Kinesis target writes (`detail` = the CloudTrail record);
- a bare CloudTrail record;
- a CloudTrail log file, `{"Records": [...]}`, plain or gzip'd;
- a gzip'd CloudWatch Logs subscription payload: `DATA_MESSAGE` (its `logEvents[].message` are
  Bedrock model invocation log records) or `CONTROL_MESSAGE` (a health check, skipped);
- a bare model invocation log record.
Anything else, or anything malformed, becomes a `Rejected` with a reason; the rest of the record
still decodes.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from bedrock_usage.identity import IdentityError, Principal, principal_from_identity
from consumer.events import COUNTED_OPERATIONS, BedrockCall, Decoded, InvocationLog, Rejected, Skipped

_GZIP_MAGIC = b"\x1f\x8b"
_PRINCIPAL_CACHE = 100_000
_CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
_BEDROCK_SOURCE = "bedrock.amazonaws.com"


class _Malformed(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Decoder:
    """Decodes records; holds only configuration (which roles key by session)."""

    def __init__(self, session_roles: Sequence[str] = ()) -> None:
        self._session_roles = tuple(session_roles)
        self._principals: dict[tuple[Any, ...], Principal] = {}

    def decode(self, data: bytes) -> list[Decoded]:
        try:
            document = _load(data)
        except _Malformed as bad:
            return [Rejected(bad.reason, bad.detail, data, 0)]
        return self.decode_document(document, data)

    def decode_document(self, document: Any, raw: bytes) -> list[Decoded]:
        if not isinstance(document, dict):
            return [Rejected("unknown_shape", f"a JSON {type(document).__name__}, not an object", raw, 0)]
        if "detail-type" in document and "detail" in document:
            return [self._one(self._from_envelope, document, raw, 0)]
        if isinstance(document.get("Records"), list):
            return [
                self._one(self._from_cloudtrail, record, None, index)
                for index, record in enumerate(document["Records"])
            ]
        if "messageType" in document and "logEvents" in document:
            return self._from_subscription(document, raw)
        if "eventID" in document and "userIdentity" in document:
            return [self._one(self._from_cloudtrail, document, raw, 0)]
        if document.get("schemaType") == "ModelInvocationLog":
            return [self._one(_invocation_log, document, raw, 0)]
        return [Rejected("unknown_shape", f"no known event shape (keys: {sorted(document)[:8]})", raw, 0)]

    @staticmethod
    def _one(parse: Any, document: Any, raw: bytes | None, index: int) -> Decoded:
        """Parse one event; on failure keep its own bytes (re-serialised only then, for log files)."""
        try:
            result: Decoded = parse(document)
        except _Malformed as bad:
            return Rejected(bad.reason, bad.detail, _dump(document) if raw is None else raw, index)
        return result

    def _from_envelope(self, envelope: Mapping[str, Any]) -> Decoded:
        if envelope.get("detail-type") != _CLOUDTRAIL_DETAIL_TYPE:
            raise _Malformed("unexpected_detail_type", str(envelope.get("detail-type")))
        return self._from_cloudtrail(envelope["detail"])

    def _from_cloudtrail(self, record: Any) -> Decoded:
        if not isinstance(record, dict):
            raise _Malformed("invalid_cloudtrail", "record is not an object")
        source = record.get("eventSource")
        if source != _BEDROCK_SOURCE:
            raise _Malformed("unexpected_source", f"eventSource {source!r} is not {_BEDROCK_SOURCE}")
        operation = _required_str(record, "eventName")
        if operation not in COUNTED_OPERATIONS:
            return Skipped("not_counted_operation", operation)
        event_id = _required_str(record, "eventID")
        if len(event_id) > 64:
            raise _Malformed("invalid_cloudtrail", "eventID longer than 64 characters")
        event_time = _parse_time(_required_str(record, "eventTime"))
        identity = record.get("userIdentity")
        if not isinstance(identity, dict):
            raise _Malformed("invalid_cloudtrail", "userIdentity missing")
        principal = self._principal(identity)
        params = record.get("requestParameters") or {}
        model_id = params.get("modelId") if isinstance(params, dict) else None
        extra = record.get("additionalEventData") or {}
        return BedrockCall(
            event_id=event_id,
            event_time=event_time,
            principal=principal,
            operation=operation,
            # Free-text fields are cut to their column sizes: a long value is not a reason to lose a call.
            model_id=str(model_id)[:255] if model_id else "unknown",
            region=str(record.get("awsRegion") or "")[:32],
            account_id=str(record.get("recipientAccountId") or principal.account_id)[:12],
            request_id=_opt_str(record.get("requestID"), 64),
            source_ip=_opt_str(record.get("sourceIPAddress"), 128),
            user_agent=_opt_str(record.get("userAgent"), 4096),
            error_code=_opt_str(record.get("errorCode"), 64),
            inference_region=_opt_str(extra.get("inferenceRegion"), 32) if isinstance(extra, dict) else None,
        )

    def _principal(self, identity: dict[str, Any]) -> Principal:
        # A person makes many calls: map each distinct identity once. The key holds every field the
        # mapping reads, so equal keys always give equal principals.
        context = identity.get("sessionContext")
        issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
        issuer = issuer if isinstance(issuer, dict) else {}
        key = (identity.get("type"), identity.get("arn"), identity.get("principalId"), identity.get("accountId"),
               identity.get("userName"), issuer.get("arn"), issuer.get("principalId"))
        try:
            principal = self._principals.get(key)
            cacheable = True
        except TypeError:  # an unhashable (malformed) field: principal_from_identity rejects it
            principal, cacheable = None, False
        if principal is None:
            try:
                principal = principal_from_identity(identity, self._session_roles)
            except IdentityError as error:
                raise _Malformed("unknown_identity", str(error)) from None
            if cacheable:
                if len(self._principals) >= _PRINCIPAL_CACHE:
                    self._principals.clear()
                self._principals[key] = principal
        return principal

    def _from_subscription(self, payload: Mapping[str, Any], raw: bytes) -> list[Decoded]:
        kind = payload.get("messageType")
        if kind == "CONTROL_MESSAGE":
            return [Skipped("control_message", "CloudWatch Logs health check")]
        if kind != "DATA_MESSAGE":
            return [Rejected("unknown_shape", f"CloudWatch Logs messageType {kind!r}", raw, 0)]
        log_events = payload.get("logEvents")
        if not isinstance(log_events, list):
            return [Rejected("unknown_shape", "CloudWatch Logs logEvents is not a list", raw, 0)]
        decoded: list[Decoded] = []
        for index, log_event in enumerate(log_events):
            message = log_event.get("message") if isinstance(log_event, dict) else None
            body = message.encode() if isinstance(message, str) else b""
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                decoded.append(Rejected("not_json", f"log event message: {error}", body, index))
                continue
            if isinstance(document, dict) and document.get("schemaType") == "ModelInvocationLog":
                decoded.append(self._one(_invocation_log, document, body, index))
            else:
                decoded.append(Rejected("unknown_shape", "log event is not a ModelInvocationLog", body, index))
        return decoded


def _load(data: bytes) -> Any:
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise _Malformed("bad_gzip", str(error)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise _Malformed("not_json", str(error)) from None


def _dump(document: Any) -> bytes:
    return orjson.dumps(document)


def _required_str(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise _Malformed("invalid_cloudtrail", f"{name} missing or not a string")
    return value


def _opt_str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed("invalid_cloudtrail", f"eventTime {text!r} is not ISO 8601") from None
    if parsed.tzinfo is UTC:  # CloudTrail's "…Z": already what we want
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _int_field(section: Any, name: str) -> int:
    value = section.get(name, 0) if isinstance(section, dict) else 0
    if not isinstance(value, int) or value < 0:
        raise _Malformed("invalid_invocation_log", f"{name} is not a non-negative integer")
    return value


def _invocation_log(document: Mapping[str, Any]) -> InvocationLog:
    request_id = _required_str_log(document, "requestId")
    identity = document.get("identity") or {}
    inp, out = document.get("input") or {}, document.get("output") or {}
    return InvocationLog(
        request_id=request_id,
        timestamp=_parse_time(_required_str_log(document, "timestamp")),
        account_id=str(document.get("accountId") or ""),
        region=str(document.get("region") or ""),
        operation=str(document.get("operation") or ""),
        model_id=str(document.get("modelId") or "unknown"),
        identity_arn=str(identity.get("arn") or "") if isinstance(identity, dict) else "",
        input_tokens=_int_field(inp, "inputTokenCount"),
        output_tokens=_int_field(out, "outputTokenCount"),
        cache_read_input_tokens=_int_field(inp, "cacheReadInputTokenCount"),
        cache_write_input_tokens=_int_field(inp, "cacheWriteInputTokenCount"),
    )


def _required_str_log(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _Malformed("invalid_invocation_log", f"{name} missing or not a string")
    return value
