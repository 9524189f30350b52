"""What the provisioning commands read: the shared settings, and how teams' IAM names and policies are made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from bedrock_usage.config import SettingsError, Source, Spec, listed
from bedrock_usage.settings import SharedSettings

# IAM's rules: a path starts and ends with `/`; a name prefix uses the characters of IAM names.
_PATH = re.compile(r"^/([\w+=,.@-]+/)*$")
_PREFIX = re.compile(r"^[\w+=,.@-]{0,64}$")
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9.:*_-]{1,200}$")


def model_patterns(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """Model ID patterns (`anthropic.claude-*`), checked: no empty list, no characters an ARN cannot hold."""
    if not values:
        raise SettingsError(f"{name} needs at least one model pattern")
    for value in values:
        if not MODEL_PATTERN.match(value):
            raise SettingsError(f"{name}: {value!r} is not a model ID pattern (letters, digits, . : - _ and *)")
    return values


@dataclass(frozen=True)
class ProvisioningSettings(SharedSettings):
    OWN_SPECS: ClassVar[tuple[Spec, ...]] = (
        Spec("PROVISIONING_GROUP_PREFIX", "bedrock-team-", "Prefix of a team's IAM group and policy name"
             " (`bedrockctl team create data` makes the group bedrock-team-data)."),
        Spec("PROVISIONING_PATH", "/bedrock-access/", "IAM path of the users, groups and team policies"
             " `bedrockctl team create` and `user create` make (a person's quota key includes it)."),
        Spec("PROVISIONING_DEFAULT_MODELS", "anthropic.claude-*,amazon.nova-*", "Comma-separated model ID"
             " patterns a new team's policy allows when `team create` is given no --models (foundation models"
             " and the inference profiles of these models)."),
    )

    provisioning_group_prefix: str
    provisioning_path: str
    provisioning_default_models: tuple[str, ...]

    @classmethod
    def read(cls, source: Source) -> dict[str, Any]:
        get = source.get
        prefix = get("PROVISIONING_GROUP_PREFIX").strip()
        if not _PREFIX.match(prefix):
            raise SettingsError(f"PROVISIONING_GROUP_PREFIX must use IAM name characters, got {prefix!r}")
        path = get("PROVISIONING_PATH").strip()
        if not _PATH.match(path) or len(path) > 512:
            raise SettingsError(f"PROVISIONING_PATH must be an IAM path like /bedrock-access/, got {path!r}")
        return {
            **super().read(source),
            "provisioning_group_prefix": prefix,
            "provisioning_path": path,
            "provisioning_default_models": model_patterns("PROVISIONING_DEFAULT_MODELS",
                                                          listed(get("PROVISIONING_DEFAULT_MODELS"))),
        }
