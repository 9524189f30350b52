"""Bytes → typed events. Pure: no I/O beyond decompression, no AWS client.

One Kinesis record (or one file) may hold:
- the EventBridge envelope an EventBridge Kinesis target writes (`detail` = the CloudTrail record);
- a bare CloudTrail record;
- a CloudTrail log file, `{"Records": [...]}`, plain or gzip'd;
- a gzip'd CloudWatch Logs subscription payload: `DATA_MESSAGE` (its `logEvents[].message` are
  Bedrock model invocation log records) or `CONTROL_MESSAGE` (a health check, skipped);
- a bare model invocation log record (consumer/invocation_log.py reads it).
Anything else, or anything malformed, becomes a `Rejected` with a reason; the rest of the record
still decodes. What might hold prompt or completion text (an invocation log, a CloudWatch Logs payload,
anything compressed) is kept redacted: its envelope, size and digest, never its bodies.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from bedrock_usage.identity import IdentityError, Principal, principal_from_identity
from consumer import invocation_log
from consumer.events import COUNTED_OPERATIONS, BedrockCall, Decoded, InvocationLog, Rejected, Skipped, utc_time
from consumer.fields import ascii_text, is_identifier, storable

_GZIP_MAGIC = b"\x1f\x8b"
_LOG_MARKERS = (b"ModelInvocationLog", b"BodyJson", b"BodyS3Path")
_PRINCIPAL_CACHE = 100_000
_CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
_BEDROCK_SOURCE = "bedrock.amazonaws.com"


class _Malformed(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Decoder:
    """Decodes records; holds only configuration (which roles key by session, which event times to keep)."""

    def __init__(self, session_roles: Sequence[str] = (), keep: Callable[[datetime], bool] | None = None) -> None:
        """`keep`: a predicate on an event's time (a call's eventTime, a log's timestamp); the events it turns
        down are skipped (`outside_period`), neither counted nor recorded: a replay of a period (audit/)."""
        self._session_roles = tuple(session_roles)
        self._keep = keep
        self._principals: dict[tuple[Any, ...], Principal] = {}
        self._log_principals: dict[str, Principal] = {}

    def decode(self, data: bytes) -> list[Decoded]:
        try:
            document = _load(data)
        except _Malformed as bad:
            return [Rejected(bad.reason, bad.detail, _safe_raw(data), 0)]
        return self.decode_document(document, data)

    def decode_document(self, document: Any, raw: bytes) -> list[Decoded]:
        decoded = self._decode_document(document, raw)
        if self._keep is None:
            return decoded
        return [_outside(item) if isinstance(item, BedrockCall | InvocationLog) and not self._keep(_time_of(item))
                else item for item in decoded]

    def _decode_document(self, document: Any, raw: bytes) -> list[Decoded]:
        if not isinstance(document, dict):
            return [Rejected("unknown_shape", f"a JSON {type(document).__name__}, not an object", _safe_raw(raw), 0)]
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
            return [self._log(document, raw, 0)]
        looks_like_log = any(key in document for key in ("input", "output", "schemaType"))
        return [Rejected("unknown_shape", f"no known event shape (keys: {sorted(document)[:8]})",
                         invocation_log.redact(document, raw) if looks_like_log else _safe_raw(raw), 0)]

    @staticmethod
    def _one(parse: Any, document: Any, raw: bytes | None, index: int) -> Decoded:
        """Parse one event; on failure keep its own bytes (re-serialised only then, for log files)."""
        try:
            result: Decoded = parse(document)
        except _Malformed as bad:
            return Rejected(bad.reason, bad.detail, _safe_raw(_dump(document) if raw is None else raw), index)
        return result

    def _log(self, document: dict[str, Any], raw: bytes, index: int) -> Decoded:
        try:
            return invocation_log.parse(document, self._log_principal)
        except invocation_log.MalformedLog as bad:
            return Rejected("invalid_invocation_log", bad.detail, invocation_log.redact(document, raw), index)
        except IdentityError as error:
            return Rejected("unknown_identity", str(error), invocation_log.redact(document, raw), index)

    def _log_principal(self, arn: str) -> Principal:
        # A role's path, which a log's ARN lacks, is restored by consumer/role_paths.py, stably.
        principal = self._log_principals.get(arn)
        if principal is None:
            if len(self._log_principals) >= _PRINCIPAL_CACHE:
                self._log_principals.clear()
            principal = storable(invocation_log.principal_from_arn(arn, self._session_roles))
            self._log_principals[arn] = principal
        return principal

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
        if not is_identifier(event_id):
            raise _Malformed("invalid_cloudtrail", "eventID is not printable ASCII")
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
            # Free-text fields are cut to their column sizes, and made ASCII where the column is
            # (consumer/fields.py): a wrong value in a field the count does not need is no reason to lose a call.
            model_id=ascii_text(model_id, 255) or "unknown",
            region=ascii_text(record.get("awsRegion"), 32),
            account_id=ascii_text(record.get("recipientAccountId"), 12) or principal.account_id,
            request_id=ascii_text(record.get("requestID"), 64) or None,
            source_ip=ascii_text(record.get("sourceIPAddress"), 128) or None,
            user_agent=_opt_str(record.get("userAgent"), 4096),
            error_code=ascii_text(record.get("errorCode"), 64) or None,
            inference_region=(ascii_text(extra.get("inferenceRegion"), 32) or None) if isinstance(extra, dict)
            else None,
            bearer_token=isinstance(extra, dict) and extra.get("callWithBearerToken") is True,
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
                principal = storable(principal_from_identity(identity, self._session_roles))
            except IdentityError as error:
                raise _Malformed("unknown_identity", str(error)) from None
            if cacheable:
                if len(self._principals) >= _PRINCIPAL_CACHE:
                    self._principals.clear()
                self._principals[key] = principal
        return principal

    def _from_subscription(self, payload: Mapping[str, Any], raw: bytes) -> list[Decoded]:
        # A subscription payload carries invocation logs, prompts included: rejected parts are kept redacted.
        kind = payload.get("messageType")
        if kind == "CONTROL_MESSAGE":
            return [Skipped("control_message", "CloudWatch Logs health check")]
        if kind != "DATA_MESSAGE":
            return [Rejected("unknown_shape", f"CloudWatch Logs messageType {str(kind)[:64]!r}",
                             invocation_log.redact_text(raw), 0)]
        log_events = payload.get("logEvents")
        if not isinstance(log_events, list):
            return [Rejected("unknown_shape", "CloudWatch Logs logEvents is not a list",
                             invocation_log.redact_text(raw), 0)]
        decoded: list[Decoded] = []
        for index, log_event in enumerate(log_events):
            message = log_event.get("message") if isinstance(log_event, dict) else None
            if not isinstance(message, str):
                decoded.append(Rejected("unknown_shape", "log event without a message string",
                                        invocation_log.redact_text(_dump(log_event)), index))
                continue
            body = message.encode("utf-8", "surrogatepass")
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                decoded.append(Rejected("not_json", f"log event message: {error}", invocation_log.redact_text(body),
                                        index))
                continue
            if isinstance(document, dict) and document.get("schemaType") == "ModelInvocationLog":
                decoded.append(self._log(document, body, index))
            else:
                decoded.append(Rejected("unknown_shape", "log event is not a ModelInvocationLog",
                                        invocation_log.redact(document, body), index))
        return decoded


def _time_of(item: BedrockCall | InvocationLog) -> datetime:
    return item.event_time if isinstance(item, BedrockCall) else item.timestamp


def _outside(item: BedrockCall | InvocationLog) -> Skipped:
    ident = item.event_id if isinstance(item, BedrockCall) else item.request_id
    return Skipped("outside_period", f"{ident} at {_time_of(item).isoformat()}")


def _load(data: bytes) -> Any:
    if data[:2] == _GZIP_MAGIC:
        try:
            # zlib reads the gzip header itself (wbits 16 + 15): gzip.decompress parses it in Python, a
            # fifth of the cost of a small CloudWatch Logs payload. Several gzip members: the slow path.
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(data)
            if inflater.unused_data or not inflater.eof:
                out = gzip.decompress(data)
            data = out
        except (OSError, EOFError, zlib.error) as error:
            raise _Malformed("bad_gzip", str(error)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise _Malformed("not_json", str(error)) from None


def _dump(document: Any) -> bytes:
    """A parsed part re-serialised for its dead letter. orjson parses 1,024 levels but writes only 254:
    deeper, what is kept says so (the record itself stays in the stream for its retention)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return orjson.dumps({"not_kept": "nested too deep to write back", "type": type(document).__name__})


def _required_str(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise _Malformed("invalid_cloudtrail", f"{name} missing or not a string")
    return value


def _opt_str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _parse_time(text: str) -> datetime:
    parsed = utc_time(text)
    if parsed is None:
        raise _Malformed("invalid_cloudtrail", f"eventTime {text[:64]!r} is not ISO 8601")
    return parsed


def _safe_raw(data: bytes) -> bytes:
    """A record that would not decode, as a dead letter keeps it: whole, unless it may hold prompt text
    (compressed — CloudWatch Logs payloads are —, or naming an invocation log's fields)."""
    if data[:2] == _GZIP_MAGIC or any(marker in data for marker in _LOG_MARKERS):
        return invocation_log.redact_text(data)
    return data
