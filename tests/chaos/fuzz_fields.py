"""The fields the decoders need, and the wrong values the fuzz case puts in them with the reason each gets
(tests/chaos/fuzz_records.py)."""

from __future__ import annotations

import uuid
from typing import Any

NOT_STRINGS: tuple[Any, ...] = (7, 2.5, True, [1, "x"], {"k": "v"})  # truthy: `x or default` keeps them
NOT_OBJECTS: tuple[Any, ...] = (7, 2.5, True, [1, "x"], "text")
BAD_COUNTS: tuple[Any, ...] = (-1, 2.5, True, "12", [1], {"k": 1}, 2**32)


def call_fields(event: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every field of an EventBridge CloudTrail event the decoder needs, with the reason a wrong one gets."""
    identity = ("detail", "userIdentity")
    fields = [(("detail-type",), "unexpected_detail_type"), (("detail",), "invalid_cloudtrail"),
              (("detail", "eventSource"), "unexpected_source"), (("detail", "eventName"), "invalid_cloudtrail"),
              (("detail", "eventID"), "invalid_cloudtrail"), (("detail", "eventTime"), "invalid_cloudtrail"),
              (identity, "invalid_cloudtrail"), ((*identity, "type"), "unknown_identity"),
              ((*identity, "arn"), "unknown_identity"), ((*identity, "accountId"), "unknown_identity"),
              ((*identity, "principalId"), "unknown_identity")]
    if event["detail"]["userIdentity"]["type"] == "IAMUser":
        fields.append(((*identity, "userName"), "unknown_identity"))
    else:
        context = (*identity, "sessionContext")
        fields += [(context, "unknown_identity"), ((*context, "sessionIssuer"), "unknown_identity"),
                   ((*context, "sessionIssuer", "arn"), "unknown_identity"),
                   ((*context, "sessionIssuer", "principalId"), "unknown_identity")]
    return fields


def wrong_values(path: tuple[str, ...]) -> tuple[Any, ...]:
    name = path[-1]
    if name in ("detail", "userIdentity", "sessionContext", "sessionIssuer"):
        return NOT_OBJECTS
    if name == "eventTime":
        return (*NOT_STRINGS, "yesterday", "", "2026-13-45T99:00:00Z")
    if name == "eventID":
        return (*NOT_STRINGS, "", "é" + str(uuid.uuid4()), "id\x1fwith\x1eseparators")
    if name == "type":
        return (*NOT_STRINGS, "Alien")
    return NOT_STRINGS


LOG_FIELDS: list[tuple[tuple[str, ...], tuple[Any, ...], str]] = [
    (("requestId",), (*NOT_STRINGS, None, "", "é-request", "id\x1fx"), "invalid_invocation_log"),
    (("timestamp",), (*NOT_STRINGS, None, "", "not a time"), "invalid_invocation_log"),
    (("identity",), (*NOT_OBJECTS, None, {}), "invalid_invocation_log"),
    (("identity", "arn"), (*NOT_STRINGS, None, ""), "invalid_invocation_log"),
    (("identity", "arn"), ("arn:aws:iam::111122223333:group/admins", "nonsense",
                           "arn:aws:iam::111122223333:user/jos\u00e9",
                           "arn:aws:sts::111122223333:assumed-role/r\u00f4le/session"), "unknown_identity"),
    (("input",), NOT_OBJECTS, "invalid_invocation_log"),
    (("output",), NOT_OBJECTS, "invalid_invocation_log"),
    (("input", "inputTokenCount"), BAD_COUNTS, "invalid_invocation_log"),
    (("input", "cacheReadInputTokenCount"), BAD_COUNTS, "invalid_invocation_log"),
    (("input", "cacheWriteInputTokenCount"), BAD_COUNTS, "invalid_invocation_log"),
    (("output", "outputTokenCount"), BAD_COUNTS, "invalid_invocation_log"),
    (("schemaType",), (*NOT_STRINGS, "ModelInvocationLogV2"), "unknown_shape"),
]
