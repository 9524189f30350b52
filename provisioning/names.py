"""The IAM names provisioning gives teams and people, and the checks on what an admin types.

A team `data` is the group and the managed policy `<PROVISIONING_GROUP_PREFIX>data`, both under
PROVISIONING_PATH; a person `alice` is the user `alice` under that path, whose quota key is its ARN
(`arn:aws:iam::ACCOUNT:user<path>alice`, as bedrock_usage.identity makes it from CloudTrail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bedrock_usage.notifications import LANGUAGES
from provisioning.settings import ProvisioningSettings

_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_USER = re.compile(r"^[\w+=,.@-]{1,64}$")
# The characters IAM allows in a tag value (letters of any script, digits, spaces and _ . : / = + - @).
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IAM_NAME_CHARS = 128


@dataclass(frozen=True)
class Names:
    account_id: str
    settings: ProvisioningSettings

    @property
    def path(self) -> str:
        return self.settings.provisioning_path

    def group(self, team: str) -> str:
        return self.settings.provisioning_group_prefix + team

    def policy_arn(self, team: str) -> str:
        return f"arn:aws:iam::{self.account_id}:policy{self.path}{self.group(team)}"

    def team_of_group(self, group: str) -> str | None:
        prefix = self.settings.provisioning_group_prefix
        return group[len(prefix):] if group.startswith(prefix) and len(group) > len(prefix) else None

    def user_key(self, user: str, path: str | None = None) -> str:
        return f"arn:aws:iam::{self.account_id}:user{path or self.path}{user}"

    def check_team(self, team: str) -> str:
        if not _TEAM.match(team) or len(self.group(team)) > IAM_NAME_CHARS:
            raise ValueError(f"a team name is letters, digits, . _ - (at most"
                             f" {IAM_NAME_CHARS - len(self.group(''))} characters), got {team!r}")
        if team == self.settings.default_team:
            raise ValueError(f"{team!r} is DEFAULT_TEAM, where people with no team are counted: not a team")
        return team


def check_user(name: str) -> str:
    if not _USER.match(name):
        raise ValueError(f"an IAM user name is at most 64 letters, digits and + = , . @ _ -, got {name!r}")
    return name


def check_tag(what: str, value: str, maximum: int = 256) -> str:
    value = value.strip()
    if not value or len(value) > maximum or not _TAG_VALUE.match(value):
        raise ValueError(f"{what} {value!r}: an IAM tag value is 1-{maximum} letters, digits, spaces and"
                         " _ . : / = + - @ (no apostrophes or commas)")
    return value


def check_email(value: str) -> str:
    value = check_tag("--email", value.strip().lower())
    if not _EMAIL.match(value):
        raise ValueError(f"--email {value!r} is not an email address")
    return value


def check_language(value: str) -> str:
    value = value.strip().lower()
    if value not in LANGUAGES:
        raise ValueError(f"--language must be one of {', '.join(LANGUAGES)} (the languages of messages), got {value!r}")
    return value
