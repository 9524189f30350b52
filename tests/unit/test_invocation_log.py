"""Invocation log records → tokens by part, the caller's quota key, the tier; bodies never kept."""

from __future__ import annotations

import gzip

import orjson
import pytest

from bedrock_usage.identity import IdentityType, principal_from_identity
from bedrock_usage.pricing.rates import CacheSplit, Tokens
from consumer.decode import Decoder
from consumer.events import InvocationLog, Rejected
from tests.conftest import event_bytes, load_event


def one(name: str, session_roles: tuple[str, ...] = ()) -> InvocationLog:
    (item,) = Decoder(session_roles).decode(event_bytes(name))
    assert isinstance(item, InvocationLog), item
    return item


@pytest.mark.parametrize(("name", "tokens", "split"), [
    # Anthropic native InvokeModel: the 1-hour write from usage.cache_creation.
    ("invocation-log-invokemodel-anthropic-cache.json", Tokens(412, 733, 0, 0, 18250), CacheSplit.BODY),
    # The stream's chunks: message_start's usage.cache_creation (5-minute).
    ("invocation-log-stream-anthropic.json", Tokens(95, 188, 40110, 1200, 0), CacheSplit.BODY),
    # Converse: usage.cacheDetails by ttl.
    ("invocation-log-converse-cache-details.json", Tokens(120, 300, 800, 3000, 2000), CacheSplit.BODY),
    # ConverseStream's metadata chunk has no split: every write priced as 5-minute.
    ("invocation-log-conversestream.json", Tokens(3, 52, 0, 24479, 0), CacheSplit.ASSUMED_5M),
    # Text delivery off, and bodies moved to S3: only the envelope's counts.
    ("invocation-log-no-body.json", Tokens(1830, 402, 0, 0, 0), CacheSplit.ASSUMED_5M),
    ("invocation-log-s3-bodies.json", Tokens(61250, 4096, 0, 30000, 0), CacheSplit.ASSUMED_5M),
    # A failed call: no counts at all.
    ("invocation-log-failed.json", Tokens(), CacheSplit.ASSUMED_5M),
])
def test_tokens_by_part_from_every_log_shape(name: str, tokens: Tokens, split: CacheSplit) -> None:
    log = one(name)
    assert (log.tokens, log.cache_split) == (tokens, split)


def test_a_body_split_that_disagrees_with_the_envelope_is_not_trusted() -> None:
    record = load_event("invocation-log-invokemodel-anthropic-cache.json")
    record["input"]["cacheWriteInputTokenCount"] = 20000  # the envelope is what AWS bills
    (log,) = Decoder().decode(orjson.dumps(record))
    assert isinstance(log, InvocationLog)
    assert (log.tokens.cache_write_5m, log.tokens.cache_write_1h, log.cache_split) == (20000, 0, CacheSplit.ASSUMED_5M)


def test_the_quota_key_is_the_one_the_calls_cloudtrail_event_gets() -> None:
    # Identity Center session: sso:<user name>, lower-cased, as CloudTrail's key.
    assert one("invocation-log-converse-cache-details.json").principal.key == "sso:carol@example.com"
    # IAM user (a Bedrock API key's user too).
    assert one("invocation-log-stream-anthropic.json").principal.key == "arn:aws:iam::111122223333:user/bob"
    # Any other role: the role, whatever the session's (random) name.
    role = one("invocation-log-no-body.json").principal
    assert (role.key, role.identity_type) == ("arn:aws:iam::111122223333:role/ci-runner", IdentityType.ROLE)
    # A role whose sessions are people (SESSION_ROLES): the session.
    session = one("invocation-log-no-body.json", session_roles=("ci-*",)).principal
    assert session.key == "arn:aws:sts::111122223333:assumed-role/ci-runner/1732440677123"
    # The same as CloudTrail's key for the SSO call of the sample trail.
    trail = load_event("cloudtrail-conversestream-sso.json")["userIdentity"]
    sso = principal_from_identity(trail)
    arn = trail["arn"]
    record = load_event("invocation-log-no-body.json")
    record["identity"] = {"arn": arn}
    (log,) = Decoder().decode(orjson.dumps(record))
    assert isinstance(log, InvocationLog) and log.principal.key == sso.key


def test_a_logged_role_is_keyed_without_its_path_until_role_paths_decides() -> None:
    # The decoder never guesses a path: consumer/role_paths.py decides it once (tests/integration).
    log = one("invocation-log-no-body.json")
    assert log.principal.key == "arn:aws:iam::111122223333:role/ci-runner"


@pytest.mark.parametrize(("name", "tier"), [
    ("invocation-log-latency-optimized.json", "latency-optimized"),
    ("invocation-log-unpriced-model.json", "standard"),
])
def test_the_tier_billed(name: str, tier: str) -> None:
    assert one(name).tier == tier


def test_a_service_tier_field_is_read_when_present() -> None:
    record = load_event("invocation-log-no-body.json")
    record["serviceTier"] = "flex"
    (log,) = Decoder().decode(orjson.dumps(record))
    assert isinstance(log, InvocationLog) and log.tier == "flex"


def test_prompt_and_completion_text_never_leave_the_decoder() -> None:
    for name in ("invocation-log-invokemodel-anthropic-cache.json", "invocation-log-stream-anthropic.json",
                 "invocation-log-converse-cache-details.json"):
        assert "(prompt text)" not in repr(one(name)) and "(completion text)" not in repr(one(name))


@pytest.mark.parametrize("damage", [
    lambda r: r.pop("requestId"),
    lambda r: r.__setitem__("timestamp", "yesterday"),
    lambda r: r["input"].__setitem__("inputTokenCount", -5),
    lambda r: r["output"].__setitem__("outputTokenCount", 10**12),
    lambda r: r.__setitem__("identity", {"arn": "not an arn"}),
    lambda r: r.__setitem__("identity", None),
    lambda r: r.__setitem__("input", "text"),
])
def test_a_malformed_log_is_dead_lettered_without_its_bodies(damage: object) -> None:
    record = load_event("invocation-log-invokemodel-anthropic-cache.json")
    damage(record)  # type: ignore[operator]
    raw = orjson.dumps(record)
    for data in (raw, gzip.compress(raw)):
        (item,) = Decoder().decode(data)
        assert isinstance(item, Rejected)
        assert item.reason in ("invalid_invocation_log", "unknown_identity")
        assert b"prompt text" not in item.raw and b"completion text" not in item.raw
        assert orjson.loads(item.raw)["redacted"] is True


def test_a_truncated_log_line_keeps_only_its_digest() -> None:
    raw = event_bytes("invocation-log-invokemodel-anthropic-cache.json")[:-40]
    (item,) = Decoder().decode(raw)
    assert isinstance(item, Rejected) and item.reason == "not_json"
    assert b"prompt text" not in item.raw and orjson.loads(item.raw)["bytes"] == len(raw)
