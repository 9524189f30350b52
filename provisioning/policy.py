"""A team's Bedrock policy: the document made from model patterns, and the patterns read back from one.

Pure functions on dicts. `bedrock:InvokeModel` covers Converse and `…WithResponseStream` ConverseStream;
`bedrock:CallWithBearerToken` (Bedrock API keys) has no resource to scope, so it is on `*`: the key's
calls still need the invoke actions on the model. A pattern allows the foundation models it matches in
any region (a cross-region profile routes to several) and the system inference profiles of those models
(`eu.anthropic.claude-…`, `global.…`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
_MODEL_ARN = "arn:aws:bedrock:*::foundation-model/"
_PROFILE_ARN = "arn:aws:bedrock:*:*:inference-profile/"


def document(patterns: Sequence[str]) -> dict[str, Any]:
    resources: list[str] = []
    for pattern in patterns:
        resources += [_MODEL_ARN + pattern, _PROFILE_ARN + pattern, f"{_PROFILE_ARN}*.{pattern}"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "InvokeChosenModels", "Effect": "Allow", "Action": list(INVOKE_ACTIONS),
             "Resource": list(dict.fromkeys(resources))},
            {"Sid": "BedrockApiKeys", "Effect": "Allow", "Action": ["bedrock:CallWithBearerToken"], "Resource": "*"},
        ],
    }


def patterns_of(doc: dict[str, Any]) -> tuple[str, ...]:
    """The model patterns a document made by `document` allows (its foundation-model resources, in order)."""
    found: list[str] = []
    for statement in doc.get("Statement") or ():
        resources = statement.get("Resource") or ()
        for resource in [resources] if isinstance(resources, str) else resources:
            if str(resource).startswith(_MODEL_ARN):
                found.append(str(resource)[len(_MODEL_ARN):])
    return tuple(dict.fromkeys(found))
