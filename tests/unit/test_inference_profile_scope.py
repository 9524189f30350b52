"""Which model and rate an application inference profile bills at, from GetInferenceProfile's answer
(recorded answers under tests/events/bedrock/)."""

from __future__ import annotations

from datetime import UTC, datetime

from bedrock_usage.pricing.profiles import PROFILE_ARN, profile_from_response
from bedrock_usage.pricing.rates import PriceScope
from bedrockctl.processes import iam_permissions
from tests.pricing_stubs import profile_answer

NOW = datetime(2025, 11, 3, tzinfo=UTC)
ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/k2x7r9wq1m4t"


def resolved(name: str) -> tuple[str | None, PriceScope]:
    answer = profile_answer(name)
    profile = profile_from_response(answer["inferenceProfileArn"], answer, NOW)
    return profile.model, profile.scope


def test_a_region_less_model_arn_makes_the_profile_global_and_nothing_else_does() -> None:
    assert resolved("application-global") == ("anthropic.claude-sonnet-4-5-20250929-v1:0", PriceScope.GLOBAL)
    assert resolved("application-geo") == ("anthropic.claude-3-5-haiku-20241022-v1:0", PriceScope.REGIONAL)
    assert resolved("application-single-region") == ("amazon.nova-pro-v1:0", PriceScope.REGIONAL)


def test_answers_that_do_not_name_one_foundation_model_are_unresolved() -> None:
    custom = {"models": [{"modelArn": "arn:aws:bedrock:us-east-1:111122223333:custom-model/amazon.nova-pro-v1:0/x1"}]}
    for answer, error in ((custom, "not a foundation model: arn:aws:bedrock:us-east-1:111122223333:custom-model/"
                                   "amazon.nova-pro-v1:0/x1"),
                          ({"models": []}, "profile does not name one foundation model: none")):
        profile = profile_from_response(ARN, answer, NOW)
        assert (profile.model, profile.scope, profile.error) == (None, PriceScope.REGIONAL, error)


def test_the_arn_forms_an_invocation_log_may_carry() -> None:
    assert PROFILE_ARN.match(ARN)
    assert PROFILE_ARN.match("arn:aws-us-gov:bedrock:us-gov-west-1:111122223333:application-inference-profile/abc1")
    for other in ("arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.amazon.nova-pro-v1:0",
                  "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "global.amazon.nova-pro-v1:0"):
        assert not PROFILE_ARN.match(other)


def test_the_consumer_is_allowed_to_ask_for_profiles() -> None:
    (statement,) = [s for s in iam_permissions("consumer") if "bedrock:GetInferenceProfile" in s["Action"]]
    assert statement["Resource"] == ["<APPLICATION_INFERENCE_PROFILES_ARN>"]
