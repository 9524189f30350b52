"""The usage comparison of a replay: what the replay counted beside what the live record holds, per person,
per team and per day of the period, and every person-day where they differ.

Both sides are read the same way from MySQL (the record; Redis is only its cache): calls from
`bedrock_calls` (requests: counted calls; failed: calls that failed, recorded but using no quota), tokens and
cost from `invocation_logs`, keyed by the person's quota key and the team the row was charged to, restricted to
the events whose time falls in the period. Money is exact: the DECIMAL sums, never floats. A difference is
replay - live: negative when the live record holds more than the events replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from pymysql.connections import Connection

from audit.output import Cell, Section
from audit.period import Period
from bedrock_usage import db
from bedrock_usage.config import MySQLParams

METRICS = ("requests", "failed", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
           "cost_usd")
Usage = tuple[int, int, int, int, int, int, Decimal]
ZERO: Usage = (0, 0, 0, 0, 0, 0, Decimal(0))
Key = tuple[str, str, date]  # (person's quota key, team charged, quota day)

_CALLS = (
    "SELECT COALESCE(p.quota_key, CONCAT('#', c.principal_id)), c.team, c.event_date,"
    " SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL)"
    " FROM bedrock_calls c LEFT JOIN principals p ON p.id = c.principal_id"
    " WHERE c.event_date BETWEEN %s AND %s AND c.event_time >= %s AND c.event_time < %s"
    " GROUP BY 1, 2, 3")
_LOGS = (
    "SELECT COALESCE(p.quota_key, CONCAT('#', l.principal_id)), l.team, l.event_date,"
    " SUM(l.input_tokens), SUM(l.output_tokens), SUM(l.cache_read_tokens),"
    " SUM(l.cache_write_5m_tokens + l.cache_write_1h_tokens), SUM(l.cost_usd)"
    " FROM invocation_logs l LEFT JOIN principals p ON p.id = l.principal_id"
    " WHERE l.event_date BETWEEN %s AND %s AND l.event_time >= %s AND l.event_time < %s"
    " GROUP BY 1, 2, 3")


def _add(a: Usage, b: Usage) -> Usage:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + b[6])


def read_usage(conn: Connection, period: Period) -> dict[Key, Usage]:
    """One side's usage per (person, team, day) over the period."""
    days = period.days
    args = (days[0], days[-1], db.to_db(period.start.astimezone(UTC)), db.to_db(period.end.astimezone(UTC)))
    usage: dict[Key, Usage] = {}
    with conn.cursor() as cur:
        cur.execute(_CALLS, args)
        rows: Any = cur.fetchall()
        for person, team, day, requests, failed in rows:
            key = (str(person), str(team), day)
            usage[key] = _add(usage.get(key, ZERO), (int(requests), int(failed), 0, 0, 0, 0, Decimal(0)))
        cur.execute(_LOGS, args)
        rows = cur.fetchall()
        for person, team, day, tokens_in, tokens_out, cache_read, cache_write, cost in rows:
            key = (str(person), str(team), day)
            usage[key] = _add(usage.get(key, ZERO), (0, 0, int(tokens_in), int(tokens_out), int(cache_read),
                                                      int(cache_write), Decimal(cost)))
    conn.commit()
    return usage


@dataclass
class UsageComparison:
    sections: list[Section]
    totals: dict[str, Cell]
    differs: bool
    differing: list[Key] = field(default_factory=list)  # the person-days that differ, in order


def _columns(*keys: str) -> list[str]:
    return [*keys, *(c for m in METRICS for c in (m, f"{m}_live")), "differences"]


def _differences(replay: Usage, live: Usage) -> str:
    """What differs, replay - live, e.g. "requests -1, cost_usd -0.0042"."""
    parts = []
    for name, mine, theirs in zip(METRICS, replay, live, strict=True):
        if mine != theirs:
            delta: int | Decimal = mine - theirs  # type: ignore[operator]
            parts.append(f"{name} {'+' if delta > 0 else ''}{delta}")
    return ", ".join(parts)


def _cells(replay: Usage, live: Usage) -> list[Cell]:
    cells: list[Cell] = []
    for mine, theirs in zip(replay, live, strict=True):
        cells += [mine, theirs]  # type: ignore[list-item]  # (a heterogeneous tuple zips to objects)
    return cells


def _roll(usage: dict[Key, Usage], by: Callable[[Key], str]) -> dict[str, Usage]:
    out: dict[str, Usage] = {}
    for key, value in usage.items():
        out[by(key)] = _add(out.get(by(key), ZERO), value)
    return out


def _section(name: str, label: str, replay: dict[Key, Usage], live: dict[Key, Usage], *, by: Callable[[Key], str],
             extra: Callable[[str], list[Cell]] | None = None, extra_names: Iterable[str] = ()) -> Section:
    mine, theirs = _roll(replay, by), _roll(live, by)
    rows: list[list[Cell]] = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key, ZERO), theirs.get(key, ZERO)
        rows.append([key, *(extra(key) if extra else []), *_cells(a, b), _differences(a, b)])
    return Section(name, _columns(label, *extra_names), list(rows))


def compare_usage(live: MySQLParams, replay: MySQLParams, period: Period) -> UsageComparison:
    """Read both sides and lay them side by side."""
    conns = [db.connect(live), db.connect(replay)]
    try:
        theirs, mine = read_usage(conns[0], period), read_usage(conns[1], period)
    finally:
        for conn in conns:
            conn.close()
    return lay_out(mine, theirs)


def lay_out(replay: dict[Key, Usage], live: dict[Key, Usage]) -> UsageComparison:
    teams_of: dict[str, set[str]] = {}
    for person, team, _ in (*replay, *live):
        teams_of.setdefault(person, set()).add(team)
    differing = sorted(k for k in set(replay) | set(live) if replay.get(k, ZERO) != live.get(k, ZERO))
    people = _section("people", "person", replay, live, by=lambda k: k[0],
                      extra=lambda person: [", ".join(sorted(teams_of[person]))], extra_names=("teams",))
    teams = _section("teams", "team", replay, live, by=lambda k: k[1])
    days = _section("days", "day", replay, live, by=lambda k: k[2].isoformat())
    rows: list[list[Cell]] = []
    for key in differing:
        a, b = replay.get(key, ZERO), live.get(key, ZERO)
        rows.append([key[0], key[1], key[2].isoformat(), *_cells(a, b), _differences(a, b)])
    usage_differences = Section("usage_differences", _columns("person", "team", "day"), list(rows))
    total_mine = _roll(replay, lambda k: "")[""] if replay else ZERO
    total_theirs = _roll(live, lambda k: "")[""] if live else ZERO
    totals: dict[str, Cell] = dict(zip(_columns()[:-1], _cells(total_mine, total_theirs), strict=True))
    totals["differing_person_days"] = len(differing)
    return UsageComparison([people, teams, days, usage_differences], totals, bool(differing), differing)
