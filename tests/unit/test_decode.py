"""consumer.decode.Decoder: every real sample decodes to the exact typed event; malformed input becomes a
`Rejected` with its reason (and its own bytes), never an exception."""

from __future__ import annotations

import copy
import gzip
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bedrock_usage.identity import IdentityType, Principal
from bedrock_usage.pricing.rates import CacheSplit, Tokens
from consumer.decode import Decoder
from consumer.events import BedrockCall, Decoded, InvocationLog, Rejected, Skipped
from tests.conftest import event_bytes, load_event

USER_AGENT = (
    "Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/macos#22.6.0 md/arch#x86_64 lang/python#3.12.4"
    " md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162"
)
EVENT_TIME = datetime(2024, 10, 1, 11, 52, 37, tzinfo=UTC)

HIMAN = Principal(
    key="arn:aws:iam::956882123456:user/himan",
    identity_type=IdentityType.IAM_USER,
    arn="arn:aws:iam::956882123456:user/himan",
    account_id="956882123456",
    display_name="himan",
)
ALICE_SSO = Principal(
    key="sso:alice@example.com",
    identity_type=IdentityType.SSO_USER,
    arn="arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_BedrockUsers_aa59d952f393cb6a/alice@example.com",
    account_id="111122223333",
    display_name="alice@example.com",
    role_arn="arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/us-east-2/"
    "AWSReservedSSO_BedrockUsers_aa59d952f393cb6a",
    role_id="AROAZLY3W2WBRTBIFDNWJ",
    session_name="alice@example.com",
)


def _himan_call(event_id: str, request_id: str, error_code: str | None = None) -> BedrockCall:
    return BedrockCall(
        event_id=event_id,
        event_time=EVENT_TIME,
        principal=HIMAN,
        operation="InvokeModel",
        model_id="anthropic.claude-3-5-sonnet-20240620-v1:0",
        region="us-west-2",
        account_id="956882123456",
        request_id=request_id,
        source_ip="182.70.74.235",
        user_agent=USER_AGENT,
        error_code=error_code,
        inference_region=None,
    )


INVOKE = _himan_call("a8d388e2-3111-44bf-b78f-b0e263dc3d25", "0873fdcf-2c18-413a-9288-7e9bbbb8f29d")
THROTTLED = _himan_call(
    "7c2b9d61-0a4e-4b7f-8f43-2e5d6a9c1b70", "e1d2c3b4-a5f6-4789-9abc-def012345678", "ThrottlingException"
)
DENIED = _himan_call("9d8e7f6a-5b4c-4d3e-8f2a-1b0c9d8e7f6a", "aa11bb22-cc33-4d44-8e55-ff6677889900", "AccessDenied")
CONVERSE_SSO = BedrockCall(
    event_id="0f3c1e0a-5b8e-4f2d-9a51-3b7d8c2e1f44",
    event_time=EVENT_TIME,
    principal=ALICE_SSO,
    operation="ConverseStream",
    model_id="eu.anthropic.claude-sonnet-4-20250514-v1:0",
    region="eu-west-1",
    account_id="111122223333",
    request_id="5346af27-8f56-4fb8-a6de-058be7a50818",
    source_ip="182.70.74.235",
    user_agent=USER_AGENT,
    error_code=None,
    inference_region="eu-central-1",
)
TOKENS_LOG = InvocationLog(
    request_id="5346af27-8f56-4fb8-a6de-058be7a50818",
    timestamp=datetime(2026, 4, 19, 23, 57, 1, tzinfo=UTC),
    principal=Principal("arn:aws:iam::123456789012:user/your-br-api-key", IdentityType.IAM_USER,
                        "arn:aws:iam::123456789012:user/your-br-api-key", "123456789012", "your-br-api-key"),
    account_id="123456789012",
    region="us-west-2",
    inference_region="us-east-2",
    operation="ConverseStream",
    model_id="global.anthropic.claude-opus-4-6-v1",
    error_code=None,
    tier="standard",
    # The stream's metadata chunk gives no 5-minute/1-hour split: every cache write is priced as 5-minute.
    tokens=Tokens(input=3, output=52, cache_read=0, cache_write_5m=24479, cache_write_1h=0),
    cache_split=CacheSplit.ASSUMED_5M,
)


def kept(data: bytes) -> bytes:
    """What a dead letter keeps of a record that would not decode: the bytes, or for anything compressed
    (CloudWatch Logs payloads may hold prompts) only their size and digest."""
    if data[:2] != b"\x1f\x8b":
        return data
    return orjson.dumps({"redacted": True, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})


def decode(data: bytes, session_roles: tuple[str, ...] = ()) -> list[Decoded]:
    return Decoder(session_roles).decode(data)


def only(data: bytes) -> Decoded:
    items = decode(data)
    assert len(items) == 1, items
    return items[0]


def wrap(detail: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge envelope around a CloudTrail record."""
    envelope = load_event("eventbridge-invokemodel-iamuser.json")
    envelope["detail"] = detail
    return envelope


def bare(**changes: Any) -> dict[str, Any]:
    """The published IAM-user record with fields replaced (a value of None removes the field)."""
    record = load_event("cloudtrail-invokemodel-iamuser.json")
    for name, value in changes.items():
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    return record


# -- well-formed samples ---------------------------------------------------------------------------


def test_eventbridge_envelope_decodes_to_the_iam_user_call() -> None:
    call = only(event_bytes("eventbridge-invokemodel-iamuser.json"))

    assert call == INVOKE
    assert isinstance(call, BedrockCall)
    assert call.principal.key == "arn:aws:iam::956882123456:user/himan"
    assert call.counted is True
    assert call.event_time.tzinfo is UTC


def test_sso_conversestream_is_keyed_by_the_sso_user_with_its_inference_region() -> None:
    call = only(event_bytes("cloudtrail-conversestream-sso.json"))

    assert call == CONVERSE_SSO
    assert isinstance(call, BedrockCall)
    assert call.principal.key == "sso:alice@example.com"
    assert call.inference_region == "eu-central-1"
    assert call.counted is True


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("cloudtrail-invokemodel-throttled.json", THROTTLED),
        ("cloudtrail-invokemodel-accessdenied.json", DENIED),
    ],
)
def test_failed_calls_carry_their_error_code_and_are_not_counted(sample: str, expected: BedrockCall) -> None:
    call = only(event_bytes(sample))

    assert call == expected
    assert isinstance(call, BedrockCall)
    assert call.counted is False


def test_bare_cloudtrail_record_decodes_like_its_envelope() -> None:
    assert decode(event_bytes("cloudtrail-invokemodel-iamuser.json")) == [INVOKE]


def test_cloudtrail_log_file_decodes_every_record_in_order() -> None:
    assert decode(event_bytes("cloudtrail-logfile.json")) == [INVOKE, CONVERSE_SSO, THROTTLED]


def test_gzipped_cloudtrail_log_file_decodes_like_the_plain_one() -> None:
    assert decode(gzip.compress(event_bytes("cloudtrail-logfile.json"))) == [INVOKE, CONVERSE_SSO, THROTTLED]


def test_cloudwatch_subscription_data_message_yields_the_invocation_log_tokens() -> None:
    payload = gzip.compress(event_bytes("cwl-subscription-payload.json"))

    assert decode(payload) == [TOKENS_LOG]


def test_cloudwatch_control_message_is_skipped() -> None:
    payload = gzip.compress(event_bytes("cwl-control-message.json"))

    assert decode(payload) == [Skipped("control_message", "CloudWatch Logs health check")]


def test_bare_invocation_log_decodes() -> None:
    assert decode(event_bytes("invocation-log-conversestream.json")) == [TOKENS_LOG]


def test_session_roles_reach_the_identity_mapping() -> None:
    record = bare(userIdentity={
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEDEVROLE01:jane",
        "arn": "arn:aws:sts::956882123456:assumed-role/DevBedrock/jane",
        "accountId": "956882123456",
        "sessionContext": {"sessionIssuer": {
            "type": "Role", "principalId": "AROAEXAMPLEDEVROLE01",
            "arn": "arn:aws:iam::956882123456:role/DevBedrock", "accountId": "956882123456",
            "userName": "DevBedrock"}},
    })
    data = orjson.dumps(record)

    as_role = Decoder().decode(data)[0]
    as_session = Decoder(["Dev*"]).decode(data)[0]

    assert isinstance(as_role, BedrockCall)
    assert isinstance(as_session, BedrockCall)
    assert (as_role.principal.key, as_role.principal.identity_type) == (
        "arn:aws:iam::956882123456:role/DevBedrock", IdentityType.ROLE)
    assert (as_session.principal.key, as_session.principal.identity_type) == (
        "arn:aws:sts::956882123456:assumed-role/DevBedrock/jane", IdentityType.ROLE_SESSION)


def test_event_time_with_an_offset_or_without_a_zone_is_normalised_to_utc() -> None:
    with_offset = only(orjson.dumps(bare(eventTime="2024-10-01T13:52:37+02:00")))
    naive = only(orjson.dumps(bare(eventTime="2024-10-01T11:52:37")))

    assert isinstance(with_offset, BedrockCall)
    assert isinstance(naive, BedrockCall)
    assert with_offset.event_time == naive.event_time == EVENT_TIME
    assert with_offset.event_time.tzinfo is UTC
    assert naive.event_time.tzinfo is UTC


def test_missing_model_id_is_recorded_as_unknown() -> None:
    call = only(orjson.dumps(bare(requestParameters=None)))

    assert isinstance(call, BedrockCall)
    assert call.model_id == "unknown"


def test_account_falls_back_to_the_principal_account_without_recipient_account() -> None:
    call = only(orjson.dumps(bare(recipientAccountId=None)))

    assert isinstance(call, BedrockCall)
    assert call.account_id == "956882123456"


# -- free-text fields are cut to their column sizes, the call is kept -------------------------------


def test_very_long_source_ip_is_truncated_to_128() -> None:
    call = only(orjson.dumps(bare(sourceIPAddress="bedrock.amazonaws.com/" + "x" * 500)))

    assert isinstance(call, BedrockCall)
    assert call.source_ip == ("bedrock.amazonaws.com/" + "x" * 500)[:128]
    assert len(call.source_ip) == 128


def test_other_long_fields_are_truncated_to_their_column_sizes() -> None:
    record = bare(
        userAgent="u" * 5000,
        requestID="r" * 100,
        errorCode="E" * 100,
        awsRegion="g" * 40,
        requestParameters={"modelId": "m" * 300},
        additionalEventData={"inferenceRegion": "i" * 40},
    )
    call = only(orjson.dumps(record))

    assert isinstance(call, BedrockCall)
    assert (len(call.user_agent or ""), len(call.request_id or ""), len(call.error_code or "")) == (4096, 64, 64)
    assert (len(call.region), len(call.model_id), len(call.inference_region or "")) == (32, 255, 32)


def test_event_id_of_exactly_64_characters_is_accepted() -> None:
    call = only(orjson.dumps(bare(eventID="e" * 64)))

    assert isinstance(call, BedrockCall)
    assert call.event_id == "e" * 64


# -- malformed input --------------------------------------------------------------------------------


def test_bad_gzip_is_rejected_with_its_digest_only() -> None:
    # Compressed records are CloudWatch Logs payloads: they may hold prompts, so only their size and digest
    # are kept (the record itself stays in the stream for its retention).
    data = b"\x1f\x8b" + b"not really gzip"

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.index) == ("bad_gzip", 0)
    assert orjson.loads(rejected.raw) == {"redacted": True, "bytes": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()}


def test_truncated_gzip_is_rejected() -> None:
    data = gzip.compress(event_bytes("cloudtrail-logfile.json"))[:-12]

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("bad_gzip", kept(data))


@pytest.mark.parametrize("data", [b"hello", b"", b'{"eventID": ', gzip.compress(b"plain text, gzip'd")])
def test_not_json_is_rejected(data: bytes) -> None:
    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw, rejected.index) == ("not_json", kept(data), 0)


def test_json_array_is_an_unknown_shape() -> None:
    data = orjson.dumps([load_event("cloudtrail-invokemodel-iamuser.json")])

    rejected = only(data)

    assert rejected == Rejected("unknown_shape", "a JSON list, not an object", data, 0)


def test_unknown_object_is_an_unknown_shape() -> None:
    data = b'{"hello": "world", "id": 1}'

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw, rejected.index) == ("unknown_shape", data, 0)
    assert "hello" in rejected.detail


def test_cloudtrail_without_event_id_is_invalid() -> None:
    detail = bare(eventID=None)
    data = orjson.dumps(wrap(detail))

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw, rejected.index) == ("invalid_cloudtrail", data, 0)
    assert "eventID" in rejected.detail


@pytest.mark.parametrize(("field", "value"), [("eventTime", "yesterday"), ("eventTime", None),
                                              ("userIdentity", None), ("userIdentity", "alice")])
def test_cloudtrail_with_a_missing_or_bad_field_is_invalid(field: str, value: Any) -> None:
    record = bare()
    if value is None:
        del record[field]
    else:
        record[field] = value

    data = orjson.dumps(wrap(record))

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("invalid_cloudtrail", data)


def test_bare_record_without_event_id_or_identity_is_not_recognised_as_cloudtrail() -> None:
    for missing in ("eventID", "userIdentity"):
        rejected = only(orjson.dumps(bare(**{missing: None})))

        assert isinstance(rejected, Rejected)
        assert rejected.reason == "unknown_shape"


def test_envelope_whose_detail_is_not_an_object_is_invalid() -> None:
    rejected = only(orjson.dumps(wrap("a string")))  # type: ignore[arg-type]

    assert isinstance(rejected, Rejected)
    assert rejected.reason == "invalid_cloudtrail"


def test_envelope_of_another_detail_type_is_rejected() -> None:
    envelope = load_event("eventbridge-invokemodel-iamuser.json")
    envelope["detail-type"] = "AWS Console Sign In via CloudTrail"

    rejected = only(orjson.dumps(envelope))

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.detail) == ("unexpected_detail_type", "AWS Console Sign In via CloudTrail")


def test_non_bedrock_event_source_is_rejected() -> None:
    data = orjson.dumps(bare(eventSource="s3.amazonaws.com"))

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("unexpected_source", data)
    assert "s3.amazonaws.com" in rejected.detail


@pytest.mark.parametrize("identity_type", ["AWSService", "AWSAccount", "WebIdentityUser", None])
def test_unsupported_identity_type_is_rejected(identity_type: str | None) -> None:
    identity: dict[str, Any] = {"principalId": "bedrock.amazonaws.com", "accountId": "956882123456"}
    if identity_type is not None:
        identity["type"] = identity_type

    rejected = only(orjson.dumps(bare(userIdentity=identity)))

    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unknown_identity"
    assert repr(identity_type) in rejected.detail


def test_event_id_longer_than_64_is_rejected() -> None:
    data = orjson.dumps(bare(eventID="e" * 65))

    rejected = only(data)

    assert rejected == Rejected("invalid_cloudtrail", "eventID longer than 64 characters", data, 0)


@pytest.mark.parametrize("operation", ["ListFoundationModels", "GetFoundationModel", "CreateModelInvocationJob"])
def test_non_runtime_bedrock_operation_is_skipped(operation: str) -> None:
    assert decode(orjson.dumps(wrap(bare(eventName=operation)))) == [Skipped("not_counted_operation", operation)]


def test_log_file_with_one_bad_record_keeps_the_good_ones() -> None:
    good_first, bad, good_last = (copy.deepcopy(r) for r in load_event("cloudtrail-logfile.json")["Records"])
    del bad["eventID"]
    data = gzip.compress(orjson.dumps({"Records": [good_first, bad, good_last]}))

    items = decode(data)

    assert items[0] == INVOKE
    assert items[2] == THROTTLED
    rejected = items[1]
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.index) == ("invalid_cloudtrail", 1)
    # Its own bytes, not the whole (gzip'd) file.
    assert orjson.loads(rejected.raw) == bad
    assert len(items) == 3


def test_log_file_entry_that_is_not_an_object_is_rejected_at_its_index() -> None:
    record = load_event("cloudtrail-invokemodel-iamuser.json")
    items = decode(orjson.dumps({"Records": [record, "garbage", 7]}))

    assert items[0] == INVOKE
    assert [(r.reason, r.index, r.raw) for r in items[1:] if isinstance(r, Rejected)] == [
        ("invalid_cloudtrail", 1, b'"garbage"'), ("invalid_cloudtrail", 2, b"7")]


def test_empty_log_file_decodes_to_nothing() -> None:
    assert decode(b'{"Records": []}') == []


def _subscription(messages: list[str], message_type: str = "DATA_MESSAGE") -> bytes:
    payload = load_event("cwl-subscription-payload.json")
    payload["messageType"] = message_type
    payload["logEvents"] = [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(messages)]
    return gzip.compress(orjson.dumps(payload))


def test_subscription_with_bad_log_events_keeps_the_good_ones() -> None:
    good = event_bytes("invocation-log-conversestream.json").decode()
    items = decode(_subscription(["not json", good, '{"schemaType": "Other"}']))

    assert items[1] == TOKENS_LOG
    first, last = items[0], items[2]
    assert isinstance(first, Rejected)
    assert isinstance(last, Rejected)
    assert (first.reason, first.index) == ("not_json", 0)
    assert orjson.loads(first.raw) == {"redacted": True, "bytes": 8, "sha256": hashlib.sha256(b"not json").hexdigest()}
    assert (last.reason, last.index) == ("unknown_shape", 2)
    assert orjson.loads(last.raw)["schemaType"] == "Other"


def test_subscription_of_an_unknown_message_type_is_rejected() -> None:
    data = _subscription([], message_type="SOMETHING_ELSE")

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unknown_shape"
    assert orjson.loads(rejected.raw)["bytes"] == len(data)  # a payload may hold prompts: digest only


@pytest.mark.parametrize(
    ("field", "section", "value"),
    [("inputTokenCount", "input", -1), ("outputTokenCount", "output", "52"), ("inputTokenCount", "input", 1.5)],
)
def test_invocation_log_with_bad_token_counts_is_rejected(field: str, section: str, value: Any) -> None:
    log = load_event("invocation-log-conversestream.json")
    log[section][field] = value
    data = orjson.dumps(log)

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert rejected.reason == "invalid_invocation_log"
    assert field in rejected.detail
    kept = orjson.loads(rejected.raw)  # the envelope and counts, never the bodies
    assert kept["requestId"] == log["requestId"]
    assert kept[section].get(field) == (value if isinstance(value, str | int) else None)  # scalars only
    assert b"hi" not in rejected.raw and "inputBodyJson" not in kept["input"]


def test_invocation_log_without_request_id_is_rejected() -> None:
    log = load_event("invocation-log-conversestream.json")
    del log["requestId"]

    rejected = only(orjson.dumps(log))

    assert isinstance(rejected, Rejected)
    assert rejected.reason == "invalid_invocation_log"


# -- malformed input must never raise (the module's contract; an exception here stops the shard) ----


@pytest.mark.parametrize("session_context", ["oops", {"sessionIssuer": "oops"}, {"sessionIssuer": {"arn": 5}}])
def test_assumed_role_with_a_malformed_session_context_is_rejected(session_context: Any) -> None:
    identity = load_event("cloudtrail-conversestream-sso.json")["userIdentity"]
    identity["sessionContext"] = session_context
    data = orjson.dumps(wrap(bare(userIdentity=identity)))

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("unknown_identity", data)


def test_identity_with_a_non_string_arn_is_rejected() -> None:
    identity = load_event("cloudtrail-invokemodel-iamuser.json")["userIdentity"]
    identity["arn"] = 42
    data = orjson.dumps(bare(userIdentity=identity))

    assert decode(data) == [Rejected("unknown_identity", "userIdentity.arn must be a string", data, 0)]


@pytest.mark.parametrize(("field", "value"), [("arn", ["x"]), ("principalId", {"id": 1}), ("userName", ["himan"])])
def test_identity_with_an_unhashable_field_is_rejected(field: str, value: Any) -> None:
    identity = load_event("cloudtrail-invokemodel-iamuser.json")["userIdentity"]
    identity[field] = value
    data = orjson.dumps(bare(userIdentity=identity))

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("unknown_identity", data)


def test_one_decoder_keeps_different_identities_apart() -> None:
    decoder = Decoder()
    sso = load_event("cloudtrail-conversestream-sso.json")
    other = copy.deepcopy(sso)
    other["userIdentity"]["principalId"] = "AROAZLY3W2WBRTBIFDNWJ:Bob@example.com"
    other["userIdentity"]["arn"] = other["userIdentity"]["arn"].replace("alice@example.com", "Bob@example.com")

    keys = [item.principal.key for data in (sso, other, sso) for item in decoder.decode(orjson.dumps(data))
            if isinstance(item, BedrockCall)]

    assert keys == ["sso:alice@example.com", "sso:bob@example.com", "sso:alice@example.com"]


def test_subscription_whose_log_events_is_not_a_list_is_rejected() -> None:
    data = gzip.compress(b'{"messageType": "DATA_MESSAGE", "logEvents": 5}')

    rejected = only(data)

    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.raw) == ("unknown_shape", kept(data))


# -- found by the chaos suite's fuzzing (tests/chaos/test_fuzz.py) ---------------------------------

_DEEP = b'{"n":' * 300 + b"1" + b"}" * 300  # orjson parses it (up to 1,024 levels), cannot write it (254)


def test_log_file_entry_too_deep_to_write_back_is_rejected_and_the_others_decode() -> None:
    good = orjson.dumps(bare())
    items = decode(b'{"Records": [' + good + b"," + _DEEP + b"," + good + b"]}")

    assert [type(i).__name__ for i in items] == ["BedrockCall", "Rejected", "BedrockCall"]
    rejected = items[1]
    assert isinstance(rejected, Rejected) and (rejected.reason, rejected.index) == ("unexpected_source", 1)
    assert orjson.loads(rejected.raw)["not_kept"] == "nested too deep to write back"


def test_log_event_too_deep_to_write_back_is_an_unknown_shape() -> None:
    good = event_bytes("invocation-log-conversestream.json").decode()
    payload = orjson.dumps({"messageType": "DATA_MESSAGE", "logEvents": [{"message": good}, "DEEP"]})
    items = decode(gzip.compress(payload.replace(b'"DEEP"', _DEEP)))

    assert items[0] == TOKENS_LOG
    assert isinstance(items[1], Rejected) and (items[1].reason, items[1].index) == ("unknown_shape", 1)


@pytest.mark.parametrize("event_id", ["\u00e9" + "a" * 20, "id\x1fwith\x1eseparators"])
def test_event_id_that_is_not_printable_ascii_is_rejected(event_id: str) -> None:
    # Its row's key is ASCII, and the counting script joins IDs with control characters.
    rejected = only(orjson.dumps(bare(eventID=event_id)))
    assert isinstance(rejected, Rejected) and rejected.reason == "invalid_cloudtrail"


@pytest.mark.parametrize("request_id", ["r\u00e9quest", "id\x1fx"])
def test_log_request_id_that_is_not_printable_ascii_is_rejected(request_id: str) -> None:
    record = load_event("invocation-log-no-body.json")
    record["requestId"] = request_id
    rejected = only(orjson.dumps(record))
    assert isinstance(rejected, Rejected) and rejected.reason == "invalid_invocation_log"


def test_identity_too_long_for_its_row_is_rejected_not_a_batch_the_database_refuses() -> None:
    name = "u" * 600  # quota_key is 512 characters: the people table would refuse it, and every retry
    identity = {**bare()["userIdentity"], "userName": name,
                "arn": "arn:aws:iam::111122223333:user/" + name}
    rejected = only(orjson.dumps(bare(userIdentity=identity)))
    assert isinstance(rejected, Rejected) and rejected.reason == "unknown_identity"
    assert "longer than 512" in rejected.detail


@pytest.mark.parametrize("arn", ["arn:aws:iam::111122223333:user/jos\u00e9",
                                 "arn:aws:sts::111122223333:assumed-role/r\u00f4le/session",
                                 "arn:aws:iam::1111222233334444:user/bob"])
def test_logged_identity_that_cannot_be_stored_is_rejected(arn: str) -> None:
    record = load_event("invocation-log-no-body.json")
    record["identity"] = {"arn": arn}
    rejected = only(orjson.dumps(record))
    assert isinstance(rejected, Rejected) and rejected.reason == "unknown_identity"


def test_wrong_values_in_optional_ascii_fields_are_cut_and_made_ascii_and_the_call_kept() -> None:
    record = bare(awsRegion="r\u00e9gion-\u00fc", recipientAccountId={"\u00fc": 1}, errorCode="Thr\u00f6ttled",
                  sourceIPAddress=["10.0.0.1"])
    record["requestParameters"] = {"modelId": {"\u00e9": "x"}}
    call = only(orjson.dumps(record))

    assert isinstance(call, BedrockCall)
    assert (call.region, call.account_id, call.error_code, call.source_ip, call.model_id) == (
        "r?gion-?", "956882123456", "Thr?ttled", None, "unknown")


def test_wrong_values_in_a_logs_ascii_fields_are_made_ascii_and_the_log_kept() -> None:
    record = load_event("invocation-log-no-body.json")
    record.update(modelId="anthropic.cl\u00e5ude", region=7, serviceTier="fl\u00ebx", accountId="\u00e9" * 20)
    log = only(orjson.dumps(record))

    assert isinstance(log, InvocationLog)
    assert (log.model_id, log.region, log.tier, log.account_id) == ("anthropic.cl?ude", "", "fl?x", "?" * 12)


def test_events_the_keep_predicate_turns_down_are_skipped_as_outside_the_period() -> None:
    seen: list[datetime] = []

    def keep(at: datetime) -> bool:  # a replay's period: calls of 2024-10-01 only
        seen.append(at)
        return at.date() == datetime(2024, 10, 1, tzinfo=UTC).date()

    decoder = Decoder(keep=keep)
    assert decoder.decode(event_bytes("cloudtrail-logfile.json")) == [INVOKE, CONVERSE_SSO, THROTTLED]
    [skipped] = decoder.decode(event_bytes("invocation-log-conversestream.json"))
    assert skipped == Skipped("outside_period", f"{TOKENS_LOG.request_id} at 2026-04-19T23:57:01+00:00")
    assert seen == [INVOKE.event_time] * 3 + [TOKENS_LOG.timestamp]
