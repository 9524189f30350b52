"""A Bedrock model invocation log record → `InvocationLog` (tokens by part, who, which model). Pure.

The envelope carries the token counts (`input.inputTokenCount` — cache tokens excluded —,
`cacheReadInputTokenCount`, `cacheWriteInputTokenCount`, `output.outputTokenCount`). Only the bodies say how
the cache writes split between the 5-minute and the 1-hour cache, which bill differently:
- Converse / ConverseStream: `usage.cacheDetails[{inputTokens, ttl}]` (the stream: its `metadata` chunk);
- Anthropic's native InvokeModel: `usage.cache_creation.{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}`
  (InvokeModelWithResponseStream: `outputBodyJson` is the list of chunks; the usage is in `message_start`).
Bodies are read for those fields only and dropped here: no prompt or completion text goes further (the
event object has no field that could hold it, and a record that will not decode is stored redacted).
When the bodies are absent (text delivery off) or in S3 (over 100 KB), or hold no split, every cache write
is priced as 5-minute (`CacheSplit.ASSUMED_5M`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from bedrock_usage.identity import IdentityError, Principal, principal_from_identity
from bedrock_usage.pricing.rates import STANDARD_TIER, CacheSplit, Tokens
from consumer.events import InvocationLog, utc_time
from consumer.fields import ascii_text, is_identifier

_MAX_TOKENS = 4_294_967_295  # the INT UNSIGNED columns; a larger count is a malformed record
# Only these envelope fields are kept when a record is stored as a dead letter: the rest may hold text.
_SAFE_FIELDS = ("schemaType", "schemaVersion", "timestamp", "accountId", "region", "requestId", "operation",
                "modelId", "inferenceRegion", "errorCode", "identity")
_SAFE_SECTION_FIELDS = ("inputContentType", "outputContentType", "inputTokenCount", "outputTokenCount",
                        "cacheReadInputTokenCount", "cacheWriteInputTokenCount")


class MalformedLog(ValueError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def parse(document: Mapping[str, Any], principal_of: Any) -> InvocationLog:
    """`principal_of(identity dict) -> Principal` maps the caller the way CloudTrail records are mapped."""
    request_id = _required(document, "requestId")
    if len(request_id) > 64:
        raise MalformedLog("requestId longer than 64 characters")
    if not is_identifier(request_id):
        raise MalformedLog("requestId is not printable ASCII")
    inp, out = _section(document, "input"), _section(document, "output")
    cache_write = _count(inp, "cacheWriteInputTokenCount")
    # Most calls write no cache: then there is nothing to split, and the bodies need not be walked.
    split = _cache_split(inp, out, document.get("operation")) if cache_write else None
    if split is not None and sum(split) == cache_write:
        five, hour, how = split[0], split[1], CacheSplit.BODY
    else:  # no body, or a body that disagrees with the envelope: the envelope's total is what is billed
        five, hour, how = cache_write, 0, CacheSplit.ASSUMED_5M
    identity = document.get("identity")
    arn = identity.get("arn") if isinstance(identity, dict) else None
    if not isinstance(arn, str) or not arn:
        raise MalformedLog("identity.arn missing or not a string")
    return InvocationLog(
        request_id=request_id,
        timestamp=_time(_required(document, "timestamp")),
        principal=principal_of(arn),
        account_id=_text(document.get("accountId"), 12),
        region=_text(document.get("region"), 32),
        inference_region=_text(document.get("inferenceRegion"), 32) or None,
        operation=_text(document.get("operation"), 64) or "unknown",
        model_id=_text(document.get("modelId"), 255) or "unknown",
        error_code=_text(document.get("errorCode"), 64) or None,
        tier=_tier(document),
        tokens=Tokens(_count(inp, "inputTokenCount"), _count(out, "outputTokenCount"),
                      _count(inp, "cacheReadInputTokenCount"), five, hour),
        cache_split=how,
    )


def principal_from_arn(arn: str, session_roles: tuple[str, ...]) -> Principal:
    """The caller of a logged call, from the only identity a log has: its ARN. Keyed exactly as its
    CloudTrail event is (bedrock_usage.identity) — an assumed role's ARN lacks the role's path, which the
    consumer restores from the roles it has seen (consumer/role_paths.py)."""
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if ":assumed-role/" in arn:
        kind = "AssumedRole"
    elif ":user/" in arn:
        kind = "IAMUser"
    elif arn.endswith(":root"):
        kind = "Root"
    elif ":federated-user/" in arn:
        kind = "FederatedUser"
    else:
        raise IdentityError(f"unsupported identity ARN {arn[:200]!r}")
    return principal_from_identity({"type": kind, "arn": arn, "accountId": account}, session_roles)


def redact(document: Any, raw: bytes) -> bytes:
    """What a dead letter may keep of a log record: its envelope without any body or text field, plus the
    size and digest of the original (the record itself stays in the stream for its retention)."""
    kept: dict[str, Any] = {"redacted": True, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    if isinstance(document, dict):
        identity = document.get("identity")
        fields = {name: document.get(name) for name in _SAFE_FIELDS if name != "identity"}
        fields["identity.arn"] = identity.get("arn") if isinstance(identity, dict) else None
        for name, value in fields.items():
            if _scalar(value):
                kept[name] = value[:256] if isinstance(value, str) else value
        for section in ("input", "output"):
            part = document.get(section)
            if isinstance(part, dict):
                kept[section] = {k: part[k][:64] if isinstance(part[k], str) else part[k]
                                 for k in _SAFE_SECTION_FIELDS if _scalar(part.get(k))}
    dumped = orjson.dumps(kept)
    return dumped if len(dumped) <= 4096 else orjson.dumps({k: kept[k] for k in ("redacted", "bytes", "sha256")})


def _scalar(value: Any) -> bool:
    """What may be kept of a field that should hold a string or a count: never an object or a list."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def redact_text(raw: bytes) -> bytes:
    """A log event that is not even JSON: nothing of it is safe to keep but its size and digest."""
    return orjson.dumps({"redacted": True, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})


def _cache_split(inp: Mapping[str, Any], out: Mapping[str, Any], operation: Any) -> tuple[int, int] | None:
    """(5-minute, 1-hour) cache-write tokens from the bodies, or None when they do not say."""
    body = out.get("outputBodyJson")
    chunks = body if isinstance(body, list) else [body]
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        for usage in _usages(chunk):
            found = _anthropic_split(usage)
            if found is None:
                found = _converse_split(usage)
            if found is not None:
                return found
    return None


def _usages(chunk: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Where a usage object sits: the body itself (InvokeModel, Converse), a stream's `message_start`
    (`message.usage`), a ConverseStream `metadata` chunk."""
    found = []
    for holder in (chunk, chunk.get("message"), chunk.get("metadata")):
        if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
            found.append(holder["usage"])
    return found


def _anthropic_split(usage: Mapping[str, Any]) -> tuple[int, int] | None:
    creation = usage.get("cache_creation")
    if not isinstance(creation, dict):
        return None
    five, hour = creation.get("ephemeral_5m_input_tokens", 0), creation.get("ephemeral_1h_input_tokens", 0)
    if _is_count(five) and _is_count(hour):
        return int(five), int(hour)
    return None


def _converse_split(usage: Mapping[str, Any]) -> tuple[int, int] | None:
    details = usage.get("cacheDetails")
    if not isinstance(details, list) or not details:
        return None
    five = hour = 0
    for item in details:
        if not isinstance(item, dict) or not _is_count(item.get("inputTokens")):
            return None
        ttl = str(item.get("ttl", "5m")).lower()
        if ttl in ("1h", "3600", "3600s", "one_hour"):
            hour += int(item["inputTokens"])
        else:
            five += int(item["inputTokens"])
    return five, hour


def _tier(document: Mapping[str, Any]) -> str:
    """The service tier billed: `serviceTier` when the log has it, latency-optimized inference from
    `performanceConfig.latency`, else standard."""
    tier = document.get("serviceTier")
    if isinstance(tier, dict):
        tier = tier.get("type")
    if isinstance(tier, str) and tier and tier.lower() not in ("default", "standard", "on_demand"):
        return ascii_text(tier.lower(), 24)
    performance = document.get("performanceConfig")
    if isinstance(performance, dict) and performance.get("latency") == "optimized":
        return "latency-optimized"
    return STANDARD_TIER


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TOKENS


def _count(section: Mapping[str, Any], name: str) -> int:
    value = section.get(name, 0)
    if value is None:
        return 0
    if not _is_count(value):
        raise MalformedLog(f"{name} is not a non-negative integer")
    return int(value)


def _section(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = document.get(name) or {}
    if not isinstance(value, dict):
        raise MalformedLog(f"{name} is not an object")
    return value


def _required(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedLog(f"{name} missing or not a string")
    return value


def _text(value: Any, limit: int) -> str:
    return ascii_text(value, limit)  # every text field of the log's row is an ASCII column


def _time(text: str) -> datetime:
    parsed = utc_time(text)
    if parsed is None:
        raise MalformedLog(f"timestamp {text[:64]!r} is not ISO 8601")
    return parsed
