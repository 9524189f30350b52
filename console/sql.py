"""Small pieces every reader of the console shares: a viewer's teams as a SQL filter, instants as ISO text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bedrock_usage.db import from_db


def team_filter(scope: frozenset[str] | None, column: str) -> tuple[str, list[Any]]:
    """` AND <column> IN (…)` for a viewer who sees some teams only (None: every team; empty: none)."""
    if scope is None:
        return "", []
    if not scope:
        return " AND 1 = 0", []
    return f" AND {column} IN ({','.join(['%s'] * len(scope))})", sorted(scope)


def iso(value: datetime | None) -> str | None:
    """A naive UTC DATETIME (as the tables hold them) as an ISO 8601 instant."""
    instant = from_db(value)
    return instant.isoformat() if instant is not None else None
