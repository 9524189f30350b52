"""Usage over time, from MySQL: a person's or a team's hours of one day, calls by model, recent calls
(indexed ranges: (principal_id, event_date) and (team, event_date)), and the organisation's spend by
model, team and day and by hour (the hourly summary table `usage_hourly`, kept exact by the consumer's
marks and `bedrock_usage.usage_hourly.refresh`: never a scan of the call table).

Hours are UTC instants (ISO 8601); the pages show them in the viewer's time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage.periods import midnight

ZERO = Decimal(0)


@dataclass(frozen=True)
class HourPoint:
    hour: str  # the hour's start, UTC, ISO 8601
    requests: int
    failed: int
    cost_usd: Decimal


@dataclass(frozen=True)
class ModelRow:
    model: str
    requests: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class CallRow:
    at: str  # UTC, ISO 8601
    operation: str
    model: str
    region: str
    error_code: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat()


def _subject(kind: str) -> str:
    if kind not in ("principal_id", "team"):
        raise ValueError(kind)
    return kind


def day_hours(conn: Connection, kind: str, subject: object, day: date, tz: ZoneInfo) -> list[HourPoint]:
    """Each hour of a quota day (`day` in `tz`, 23 to 25 of them) with its requests and cost."""
    column = _subject(kind)
    hour = "DATE_FORMAT(event_time, '%%Y-%%m-%%d %%H:00:00')"
    with conn.cursor() as cur:
        cur.execute(f"SELECT {hour}, SUM(error_code IS NULL), SUM(error_code IS NOT NULL) FROM bedrock_calls"
                    f" WHERE {column} = %s AND event_date = %s GROUP BY 1", (subject, day))
        calls = {str(h): (int(r or 0), int(f or 0)) for h, r, f in cur.fetchall()}
        cur.execute(f"SELECT {hour}, SUM(cost_usd) FROM invocation_logs WHERE {column} = %s AND event_date = %s"
                    " GROUP BY 1", (subject, day))
        cost = {str(h): Decimal(c or 0) for h, c in cur.fetchall()}
    conn.commit()
    start, end = midnight(day, tz), midnight(day + timedelta(days=1), tz)
    points, at = [], start.astimezone(UTC)
    while at < end:
        key = at.strftime("%Y-%m-%d %H:00:00")
        requests, failed = calls.get(key, (0, 0))
        points.append(HourPoint(at.isoformat(), requests, failed, cost.get(key, ZERO)))
        at += timedelta(hours=1)
    return points


def by_model(conn: Connection, kind: str, subject: object, first: date, last: date) -> list[ModelRow]:
    """Calls and cost by model over quota days [first, last]; a log's model is the base model it was
    priced as (a profile's calls under the model they ran on)."""
    column = _subject(kind)
    with conn.cursor() as cur:
        cur.execute("SELECT m.model_id, SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL)"
                    f" FROM bedrock_calls c JOIN models m ON m.id = c.model_ref WHERE c.{column} = %s"
                    " AND c.event_date BETWEEN %s AND %s GROUP BY m.model_id", (subject, first, last))
        calls = {str(m): (int(r or 0), int(f or 0)) for m, r, f in cur.fetchall()}
        cur.execute("SELECT m.model_id, SUM(l.input_tokens), SUM(l.output_tokens), SUM(l.cost_usd)"
                    " FROM invocation_logs l JOIN models m ON m.id = COALESCE(l.price_model_ref, l.model_ref)"
                    f" WHERE l.{column} = %s AND l.event_date BETWEEN %s AND %s GROUP BY m.model_id",
                    (subject, first, last))
        logs = {str(m): (int(i or 0), int(o or 0), Decimal(c or 0)) for m, i, o, c in cur.fetchall()}
    conn.commit()
    rows = []
    for model in set(calls) | set(logs):
        requests, failed = calls.get(model, (0, 0))
        tokens_in, tokens_out, cost = logs.get(model, (0, 0, ZERO))
        rows.append(ModelRow(model, requests, failed, tokens_in, tokens_out, cost))
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.requests, r.model))


def recent_calls(conn: Connection, kind: str, subject: object, until: date, *, days: int = 7,
                 limit: int = 50) -> list[CallRow]:
    """The latest calls (newest first) of the `days` quota days ending `until`: never prompt or completion
    text, which is not stored."""
    column = _subject(kind)
    with conn.cursor() as cur:
        cur.execute("SELECT c.event_time, c.operation, m.model_id, c.region, c.error_code, c.input_tokens,"
                    " c.output_tokens, c.cost_usd FROM bedrock_calls c JOIN models m ON m.id = c.model_ref"
                    f" WHERE c.{column} = %s AND c.event_date BETWEEN %s AND %s"
                    " ORDER BY c.event_date DESC, c.event_time DESC LIMIT %s",
                    (subject, until - timedelta(days=days - 1), until, limit))
        rows = cur.fetchall()
    conn.commit()
    return [CallRow(_iso(at), str(op), str(model), str(region), err, tin, tout,
                    Decimal(cost) if cost is not None else None)
            for at, op, model, region, err, tin, tout, cost in rows]


# -- the organisation over a range: the hourly summary -----------------------------------------------

@dataclass(frozen=True)
class CostLine:
    key: str  # a model, a team or a day
    requests: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class CostAnalysis:
    first: str
    last: str
    total_usd: Decimal
    requests: int
    by_model: list[CostLine]
    by_team: list[CostLine]
    by_day: list[CostLine]
    by_day_and_team: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # day → team → cost (chart)


def _scope_sql(scope: frozenset[str] | None, column: str = "h.team") -> tuple[str, list[Any]]:
    if scope is None:
        return "", []
    if not scope:
        return " AND 1 = 0", []
    return f" AND {column} IN ({','.join(['%s'] * len(scope))})", sorted(scope)


def cost_analysis(conn: Connection, first: date, last: date, scope: frozenset[str] | None,
                  team: str | None = None) -> CostAnalysis:
    where = " WHERE h.event_date BETWEEN %s AND %s"
    params: list[Any] = [first, last]
    limit_sql, limit_params = _scope_sql(scope)
    where += limit_sql
    params += limit_params
    if team:
        where += " AND h.team = %s"
        params.append(team)
    # The summary's `requests` counts every call; a request, here as in the quotas, is a successful one.
    sums = "SUM(h.requests - h.failed), SUM(h.failed), SUM(h.input_tokens), SUM(h.output_tokens), SUM(h.cost_usd)"
    with conn.cursor() as cur:
        cur.execute(f"SELECT h.event_date, h.team, m.model_id, {sums} FROM usage_hourly h"
                    f" JOIN models m ON m.id = h.model_ref{where} GROUP BY h.event_date, h.team, m.model_id", params)
        rows = cur.fetchall()
    conn.commit()
    models: dict[str, list[Any]] = {}
    teams: dict[str, list[Any]] = {}
    days: dict[str, list[Any]] = {}
    chart: dict[str, dict[str, Decimal]] = {}
    for day, team_name, model, *values in rows:
        numbers = [int(v or 0) for v in values[:4]] + [Decimal(values[4] or 0)]
        for table, key in ((models, str(model)), (teams, str(team_name)), (days, day.isoformat())):
            line = table.setdefault(key, [0, 0, 0, 0, ZERO])
            for i, value in enumerate(numbers):
                line[i] += value
        per_team = chart.setdefault(day.isoformat(), {})
        per_team[str(team_name)] = per_team.get(str(team_name), ZERO) + numbers[4]

    def lines(table: dict[str, list[Any]], by_cost: bool) -> list[CostLine]:
        out = [CostLine(key, *values) for key, values in table.items()]
        return sorted(out, key=lambda c: (-c.cost_usd, c.key)) if by_cost else sorted(out, key=lambda c: c.key)

    day_lines = lines(days, by_cost=False)
    return CostAnalysis(first.isoformat(), last.isoformat(), sum((d.cost_usd for d in day_lines), ZERO),
                        sum(d.requests for d in day_lines), lines(models, True), lines(teams, True), day_lines,
                        chart)


@dataclass(frozen=True)
class HeatMap:
    time_zone: str
    days: list[str]  # the rows: days in `time_zone`
    requests: list[list[int]]  # [day][hour of day]
    cost_usd: list[list[Decimal]]
    max_requests: int


def heat_map(conn: Connection, first: date, last: date, tz: ZoneInfo, *, scope: frozenset[str] | None,
             team: str | None = None) -> HeatMap:
    """Requests and cost by hour of day (rows: days) in `tz`, from the hourly summary's UTC hours."""
    start, end = midnight(first, tz).astimezone(UTC), midnight(last + timedelta(days=1), tz).astimezone(UTC)
    where = " WHERE h.hour_utc >= %s AND h.hour_utc < %s"
    params: list[Any] = [start.replace(tzinfo=None), end.replace(tzinfo=None)]
    limit_sql, limit_params = _scope_sql(scope)
    where += limit_sql
    params += limit_params
    if team:
        where += " AND h.team = %s"
        params.append(team)
    with conn.cursor() as cur:
        cur.execute(f"SELECT h.hour_utc, SUM(h.requests - h.failed), SUM(h.cost_usd) FROM usage_hourly h{where}"
                    " GROUP BY h.hour_utc", params)
        rows = cur.fetchall()
    conn.commit()
    days = [(first + timedelta(days=i)) for i in range((last - first).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    requests = [[0] * 24 for _ in days]
    cost = [[ZERO] * 24 for _ in days]
    for hour_utc, n, c in rows:
        local = hour_utc.replace(tzinfo=UTC).astimezone(tz)
        row = index.get(local.date())
        if row is not None:  # a zone with a half-hour offset puts an hour's calls in its first half-hour
            requests[row][local.hour] += int(n or 0)
            cost[row][local.hour] += Decimal(c or 0)
    return HeatMap(tz.key, [d.isoformat() for d in days], requests, cost,
                   max((max(r) for r in requests), default=0))


def check_range(first: date, last: date, *, max_days: int = 366) -> None:
    if last < first:
        raise ValueError("the range ends before it begins")
    if (last - first).days >= max_days:
        raise ValueError(f"ranges are at most {max_days} days")


def parse_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {text!r}") from None


