"""bedrock_usage.tools.tool_of: the tool of one call from its API key, the SDK's app ID or its user agent;
and the decoder keeping CloudTrail's mark of an API key's call."""

from __future__ import annotations

import pytest

from bedrock_usage.tools import UNKNOWN, Basis, app_id_for, tool_of
from consumer.decode import Decoder
from consumer.events import BedrockCall
from tests.conftest import event_bytes

BOTO3 = "Boto3/1.40.61 md/Botocore#1.40.61 ua/2.1 os/linux#6.8.0 lang/python#3.12.7 Botocore/1.40.61"
JS = "aws-sdk-js/3.901.0 ua/2.1 os/darwin#24.6.0 lang/js md/nodejs#22.20.0 api/bedrock-runtime#3.901.0 m/E,N"


@pytest.mark.parametrize(("bearer", "keys", "agent", "tag", "expected"), [
    (True, ["claude-code"], BOTO3, None, ("claude-code", Basis.API_KEY)),  # one key live: its tool
    (True, ["claude-code", "claude-code"], JS, None, ("claude-code", Basis.API_KEY)),  # two keys, one tool
    (True, ["claude-code"], JS + " app/cline", None, ("claude-code", Basis.API_KEY)),  # the key outranks the app ID
    (True, ["claude-code", "cline"], JS + " app/cline", None, ("cline", Basis.API_KEY)),  # the app ID picks a key
    (True, ["claude-code", "cline"], JS + " app/aider", None, ("aider", Basis.APP_ID)),  # no key's: the app ID
    (True, ["claude-code", "cline"], BOTO3, None, ("Boto3", Basis.USER_AGENT)),  # nothing picks a key: the agent
    (True, [], BOTO3, None, ("Boto3", Basis.USER_AGENT)),  # no key recorded (made elsewhere)
    (False, ["claude-code"], BOTO3, None, ("Boto3", Basis.USER_AGENT)),  # SigV4: the user's keys say nothing
    (False, [], "app/notebook " + BOTO3, None, ("notebook", Basis.APP_ID)),  # an app ID first in the agent
    (False, [], "litellm/1.77.7", None, ("litellm", Basis.USER_AGENT)),
    (False, [], "  curl/8.5.0", None, ("curl", Basis.USER_AGENT)),
    (False, [], None, None, (UNKNOWN, Basis.UNKNOWN)),
    (False, [], "", None, (UNKNOWN, Basis.UNKNOWN)),
    (False, [], "[Mozilla compatible]", None, (UNKNOWN, Basis.UNKNOWN)),  # no product/version to name
    (False, [], "x" * 300 + "/1.0", None, ("x" * 128, Basis.USER_AGENT)),  # names cut to 128 characters
    (False, [], BOTO3, "jupyter", ("jupyter", Basis.USER_TAG)),  # the seed's Tool tag outranks the agent
    (False, [], JS + " app/cline", "jupyter", ("cline", Basis.APP_ID)),  # but not the app ID
    (True, ["claude-code"], BOTO3, "jupyter", ("claude-code", Basis.API_KEY)),  # nor the key
    (True, [], BOTO3, "jupyter", ("jupyter", Basis.USER_TAG)),  # a key made elsewhere: the user's tag
    # The SDKs rewrite what a user agent cannot hold: letters and digits decide, case aside.
    (True, ["Claude Code", "cline"], JS + " app/claude_code", None, ("Claude Code", Basis.API_KEY)),
    (True, ["Claude Code", "cline"], JS + " app/Cline", None, ("cline", Basis.API_KEY)),
])
def test_tool_of(bearer: bool, keys: list[str], agent: str | None, tag: str | None,
                 expected: tuple[str, Basis]) -> None:
    assert tool_of(bearer, keys, agent, tag) == expected


def test_the_app_id_to_give_a_tool_names_it() -> None:
    for tool in ("claude-code", "Claude Code", "team/agent:v2", "x" * 128):
        app_id = app_id_for(tool)
        assert len(app_id) <= 50 and all(c.isalnum() or c in "._-" for c in app_id)
        if len(tool) <= 50:
            assert tool_of(True, [tool, "other"], f"{JS} app/{app_id}") == (tool, Basis.API_KEY)


def test_the_decoder_keeps_cloudtrails_mark_of_an_api_keys_call() -> None:
    (with_key,) = Decoder(()).decode(event_bytes("cloudtrail-invokemodel-apikey.json"))
    (signed,) = Decoder(()).decode(event_bytes("cloudtrail-invokemodel-iamuser.json"))
    assert isinstance(with_key, BedrockCall) and isinstance(signed, BedrockCall)
    assert (with_key.bearer_token, with_key.inference_region) == (True, "eu-west-3")
    assert with_key.principal.key == "arn:aws:iam::956882123456:user/bedrock-access/alice"  # the key's user
    assert tool_of(with_key.bearer_token, [], with_key.user_agent) == ("claude-code", Basis.APP_ID)
    assert signed.bearer_token is False
