"""A team's policy document made from model patterns, and the patterns read back; the provisioning settings."""

from __future__ import annotations

import pytest

from bedrock_usage.config import SettingsError
from provisioning import policy
from provisioning.names import Names, check_email, check_language, check_tag
from provisioning.settings import ProvisioningSettings


def test_the_document_allows_only_invoking_the_chosen_models_and_reads_back_to_them() -> None:
    doc = policy.document(["anthropic.claude-*", "eu.amazon.nova-pro-v1:0"])

    invoke, keys = doc["Statement"]
    assert set(invoke["Action"]) == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
    assert all(r.startswith(("arn:aws:bedrock:*::foundation-model/", "arn:aws:bedrock:*:*:inference-profile/"))
               for r in invoke["Resource"])
    assert keys == {"Sid": "BedrockApiKeys", "Effect": "Allow", "Action": ["bedrock:CallWithBearerToken"],
                    "Resource": "*"}
    assert policy.patterns_of(doc) == ("anthropic.claude-*", "eu.amazon.nova-pro-v1:0")
    assert policy.patterns_of({"Statement": [{"Resource": "arn:aws:s3:::x"}]}) == ()


def test_settings_defaults_and_bad_values() -> None:
    settings = ProvisioningSettings.from_env({})
    assert (settings.provisioning_group_prefix, settings.provisioning_path, settings.provisioning_default_models) == (
        "bedrock-team-", "/bedrock-access/", ("anthropic.claude-*", "amazon.nova-*"))
    names = Names("111122223333", settings)
    assert names.user_key("alice") == "arn:aws:iam::111122223333:user/bedrock-access/alice"
    assert names.policy_arn("data") == "arn:aws:iam::111122223333:policy/bedrock-access/bedrock-team-data"
    assert names.team_of_group("bedrock-team-data") == "data" and names.team_of_group("admins") is None
    for name, value in [("PROVISIONING_PATH", "no-slashes"), ("PROVISIONING_GROUP_PREFIX", "bad prefix"),
                        ("PROVISIONING_DEFAULT_MODELS", " , "), ("PROVISIONING_DEFAULT_MODELS", "a b")]:
        with pytest.raises(SettingsError, match=name):
            ProvisioningSettings.from_env({name: value})


def test_what_an_admin_types_is_checked_against_iam_tag_rules() -> None:
    assert check_tag("--person", " Ana García ") == "Ana García"
    with pytest.raises(ValueError):
        check_tag("--person", "Ana\tGarcía")
    assert check_email("Ana@Example.com") == "ana@example.com"
    assert check_language("ES") == "es"
    with pytest.raises(ValueError, match="no apostrophes"):
        check_tag("--person", "O'Brien")
    with pytest.raises(ValueError, match="not an email address"):
        check_email("ana")
    with pytest.raises(ValueError, match="must be one of en, es"):
        check_language("fr")
