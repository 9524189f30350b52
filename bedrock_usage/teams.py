"""A person's team, else DEFAULT_TEAM: the one rule for whom nobody has put in a team.

DEFAULT_TEAM is not a team (no team quota applies to it, no team block is decided): it is only what
such people are listed and reported under. The rule is evaluated in Python (`team_or_default`) and,
where rows are filtered or grouped in MySQL, in SQL (`team_or_default_sql`); both treat NULL and ''
alike. `is_team` says which names are teams at all; `TeamSource` where a person's team came from.
"""

from __future__ import annotations

from enum import StrEnum


class TeamSource(StrEnum):
    """Where a person's team came from (`principals.team_source`, shown by `bedrockctl limits show`).

    The quota file wins over the lookups; SQL statements that test the column spell the same strings."""

    QUOTA_FILE = "quota_file"
    IDENTITY_CENTER = "identity_center"  # a lookup: the person's Identity Center groups
    IAM_TAG = "iam_tag"  # a lookup: the IAM user's or role's team tag
    DEFAULT = "default"  # none found (or not yet asked): counted under DEFAULT_TEAM


def team_or_default(team: object, default_team: str) -> str:
    """`team` (a column value: None, '' or a name) when there is one, else `default_team`."""
    return str(team) if team else default_team


def team_or_default_sql(column: str) -> str:
    """The same in SQL; the statement passes DEFAULT_TEAM as the one `%s` parameter it adds."""
    return f"COALESCE(NULLIF({column}, ''), %s)"


def is_team(name: str | None, default_team: str) -> bool:
    """Whether `name` is a team: DEFAULT_TEAM and '' are not teams (no team quota, no team block).

    '' is a person's team not known yet, DEFAULT_TEAM where people with no team are counted; neither
    groups people who share a quota."""
    return bool(name) and name != default_team
