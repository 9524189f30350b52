"""The one rule for a person's team, else DEFAULT_TEAM, and which names are teams."""

from __future__ import annotations

from bedrock_usage.teams import is_team, team_or_default, team_or_default_sql


def test_team_or_default_treats_none_and_empty_alike() -> None:
    assert team_or_default("ml", "unassigned") == "ml"
    assert team_or_default(None, "unassigned") == "unassigned"
    assert team_or_default("", "unassigned") == "unassigned"
    assert team_or_default_sql("p.team") == "COALESCE(NULLIF(p.team, ''), %s)"


def test_default_team_and_empty_are_not_teams() -> None:
    assert is_team("ml", "unassigned")
    assert not is_team("unassigned", "unassigned")
    assert not is_team("", "unassigned")
    assert not is_team(None, "unassigned")
