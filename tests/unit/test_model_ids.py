"""bedrock_usage.pricing.model_ids: every modelId form a log or a CloudTrail event carries."""

from __future__ import annotations

import pytest

from bedrock_usage.pricing.model_ids import ModelIdKind, ModelRef, parse_model_id, provider_of
from bedrock_usage.pricing.rates import PriceScope

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
REGIONAL, GLOBAL = PriceScope.REGIONAL, PriceScope.GLOBAL


@pytest.mark.parametrize(("model_id", "kind", "model", "scope", "provider"), [
    (SONNET, ModelIdKind.BASE, SONNET, REGIONAL, "anthropic"),
    ("amazon.nova-pro-v1:0", ModelIdKind.BASE, "amazon.nova-pro-v1:0", REGIONAL, "amazon"),
    ("meta.llama3-3-70b-instruct-v1:0", ModelIdKind.BASE, "meta.llama3-3-70b-instruct-v1:0", REGIONAL, "meta"),
    ("deepseek.r1-v1:0", ModelIdKind.BASE, "deepseek.r1-v1:0", REGIONAL, "deepseek"),
    ("deepseek.v3.2", ModelIdKind.BASE, "deepseek.v3.2", REGIONAL, "deepseek"),  # a dot in the name
    ("qwen.qwen3-32b-v1:0", ModelIdKind.BASE, "qwen.qwen3-32b-v1:0", REGIONAL, "qwen"),  # short provider name
    ("meta.llama4.x-v1:0", ModelIdKind.BASE, "meta.llama4.x-v1:0", REGIONAL, "meta"),  # meta. is no geography
    ("anthropic.claude-sonnet-4-6", ModelIdKind.BASE, "anthropic.claude-sonnet-4-6", REGIONAL, "anthropic"),
    (f"us.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"eu.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"apac.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"jp.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"au.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"ca.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"us-gov.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),
    (f"sa.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET, REGIONAL, "anthropic"),  # a geography not known yet
    ("us.deepseek.v3.2", ModelIdKind.GEO_PROFILE, "deepseek.v3.2", REGIONAL, "deepseek"),
    (f"global.{SONNET}", ModelIdKind.GLOBAL_PROFILE, SONNET, GLOBAL, "anthropic"),
    (f"arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.{SONNET}", ModelIdKind.GEO_PROFILE, SONNET,
     REGIONAL, "anthropic"),
    (f"arn:aws:bedrock:eu-west-1:111122223333:inference-profile/global.{SONNET}", ModelIdKind.GLOBAL_PROFILE,
     SONNET, GLOBAL, "anthropic"),
    (f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}", ModelIdKind.FOUNDATION_MODEL, SONNET, REGIONAL,
     "anthropic"),
    (f"arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/{SONNET}", ModelIdKind.FOUNDATION_MODEL, SONNET,
     REGIONAL, "anthropic"),
])
def test_priced_forms_name_their_base_model_scope_and_provider(
        model_id: str, kind: ModelIdKind, model: str, scope: PriceScope, provider: str) -> None:
    ref = parse_model_id(model_id)
    assert (ref.kind, ref.model, ref.scope, ref.provider) == (kind, model, scope, provider)
    assert ref.model_id == model_id
    assert not ref.provisioned and ref.application_profile is None


def test_application_profile_is_left_for_get_inference_profile() -> None:
    arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
    ref = parse_model_id(arn)
    assert (ref.kind, ref.model, ref.application_profile, ref.provider) == (
        ModelIdKind.APPLICATION_PROFILE, None, arn, None)
    resolved = ref.resolved(SONNET, GLOBAL)
    assert (resolved.model, resolved.scope, resolved.provider, resolved.application_profile) == (
        SONNET, GLOBAL, "anthropic", arn)


def test_provisioned_model_costs_nothing_per_call() -> None:
    ref = parse_model_id("arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abcdef123456")
    assert (ref.kind, ref.provisioned, ref.model) == (ModelIdKind.PROVISIONED, True, None)


@pytest.mark.parametrize(("model_id", "provider"), [
    ("arn:aws:bedrock:us-east-1:111122223333:custom-model/amazon.nova-lite-v1:0:300k/abc123def456", "amazon"),
    ("arn:aws:bedrock:us-east-1:111122223333:imported-model/abc123def456", None),
    ("arn:aws:bedrock:us-east-1:111122223333:custom-model-deployment/abc123def456", None),
    ("arn:aws:bedrock:us-east-1:111122223333:prompt/PROMPT12345:1", None),
    ("arn:aws:bedrock:us-east-1:111122223333:default-prompt-router/anthropic.claude:1", None),
])
def test_custom_and_imported_models_have_no_price_of_their_own(model_id: str, provider: str | None) -> None:
    ref = parse_model_id(model_id)
    assert (ref.kind, ref.model, ref.provisioned, ref.provider) == (ModelIdKind.CUSTOM, None, False, provider)


@pytest.mark.parametrize("model_id", [
    "", "   ", "claude", "anthropic.", ".claude", "us.", "global.nothing", "anthropic claude",
    "arn:aws:bedrock:us-east-1:111122223333:inference-profile/", "arn:aws:bedrock:us-east-1::foundation-model/x",
    "arn:aws:s3:::bucket/key", "arn:aws:bedrock:us-east-1:111122223333:knowledge-base/KB123",
    "Anthropic.Claude", "x" * 3000, "us.anthropic.claude\u00e9",
])
def test_garbage_is_unknown_never_an_exception(model_id: str) -> None:
    ref = parse_model_id(model_id)
    assert ref == ModelRef(model_id, ModelIdKind.UNKNOWN, None, REGIONAL, None)


def test_provider_of() -> None:
    assert provider_of(f"global.{SONNET}") == "anthropic"
    assert provider_of("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0") == "amazon"
    assert provider_of("garbage") is None
