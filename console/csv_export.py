"""CSV downloads: the rows a page shows, with the same columns, amounts as exact decimals and instants in
UTC ISO 8601 (a spreadsheet converts them; a file passed around must not depend on who saved it)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response

from console.history import CostAnalysis
from console.trail import ActionRow, BlockRow
from console.usage_view import PersonRow, TeamRow


def _write(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        # A cell a spreadsheet would run as a formula (=, +, -, @ first) is prefixed: names come from tags.
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else
                         "" if v is None else v for v in row])
    return out.getvalue()


def response(filename: str, body: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


PEOPLE_COLUMNS = ("principal", "display_name", "team", "requests", "failed", "monthly_requests", "cost_usd",
                  "monthly_cost_usd", "daily_limit", "monthly_limit", "daily_cost_limit_usd",
                  "monthly_cost_limit_usd", "percent_of_strictest", "state", "blocked")


def people(rows: Iterable[PersonRow]) -> str:
    return _write(PEOPLE_COLUMNS, ([getattr(r, c) for c in PEOPLE_COLUMNS] for r in rows))


TEAM_COLUMNS = ("team", "requests", "failed", "monthly_requests", "cost_usd", "monthly_cost_usd", "daily_limit",
                "monthly_limit", "daily_cost_limit_usd", "monthly_cost_limit_usd", "percent_of_strictest", "state",
                "people_today", "people", "blocked_people")


def teams(rows: Iterable[TeamRow]) -> str:
    return _write(TEAM_COLUMNS, ([getattr(r, c) for c in TEAM_COLUMNS] for r in rows))


def cost(found: CostAnalysis) -> str:
    """One line per day, team and model would be the rollup itself; the page's three tables, stacked."""
    lines = []
    for kind, table in (("model", found.by_model), ("team", found.by_team), ("day", found.by_day)):
        lines += [(kind, c.key, c.requests, c.failed, c.input_tokens, c.output_tokens, c.cost_usd) for c in table]
    return _write(("by", "key", "requests", "failed", "input_tokens", "output_tokens", "cost_usd"), lines)


AUDIT_COLUMNS = ("at", "actor", "action", "outcome", "principal", "team", "quota", "period", "usage", "limit",
                 "blocked_until", "reason", "iam_change", "shadow")


def audit(rows: Iterable[ActionRow]) -> str:
    return _write(AUDIT_COLUMNS, ([getattr(r, c) for c in AUDIT_COLUMNS] for r in rows))


BLOCKED_COLUMNS = ("principal", "display_name", "team", "origin", "reason", "actor", "quota", "period", "blocked_at",
                   "blocked_until", "iam_state", "shadow")


def blocked(rows: Iterable[BlockRow]) -> str:
    return _write(BLOCKED_COLUMNS, ([getattr(r, c) for c in BLOCKED_COLUMNS] for r in rows))
