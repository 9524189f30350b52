"""Usage over time, from MySQL: a person's or a team's hours of one day, calls by model, recent calls
(indexed ranges: (principal_id, event_date) and (team, event_date)), and the organisation's spend by
model, team and day and by hour (the hourly summary table `usage_hourly`, kept exact by the consumer's
marks and `bedrock_usage.usage_hourly.refresh`: never a scan of the call table).

Hours are UTC instants (ISO 8601); the pages show them in the viewer's time zone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage.periods import midnight
from console.errors import BadInput
from console.sql import iso, team_filter

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


def _subject(kind: str) -> str:
    if kind not in ("principal_id", "team"):
        raise ValueError(kind)
    return kind


def day_hours(conn: Connection, kind: str, subject: object, day: date, tz: ZoneInfo) -> list[HourPoint]:
    """Each hour of a quota day (`day` in `tz`, 23 to 25 of them) with its requests and cost. Hours are
    counted from the day's local midnight, not on UTC hours: in a zone half an hour off UTC, a UTC hour
    would straddle two of the day's hours (and the day's last half hour would fall outside)."""
    column = _subject(kind)
    start, end = midnight(day, tz).astimezone(UTC), midnight(day + timedelta(days=1), tz).astimezone(UTC)
    bucket = "FLOOR(TIMESTAMPDIFF(SECOND, %s, event_time) / 3600)"
    origin = start.replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {bucket}, SUM(error_code IS NULL), SUM(error_code IS NOT NULL) FROM bedrock_calls"
                    f" WHERE {column} = %s AND event_date = %s GROUP BY 1", (origin, subject, day))
        calls = {int(h): (int(r or 0), int(f or 0)) for h, r, f in cur.fetchall()}
        cur.execute(f"SELECT {bucket}, SUM(cost_usd) FROM invocation_logs WHERE {column} = %s AND event_date = %s"
                    " GROUP BY 1", (origin, subject, day))
        cost = {int(h): Decimal(c or 0) for h, c in cur.fetchall()}
    conn.commit()
    hours = int((end - start) / timedelta(hours=1))
    return [HourPoint((start + timedelta(hours=i)).isoformat(), *calls.get(i, (0, 0)), cost.get(i, ZERO))
            for i in range(hours)]


def by_model(conn: Connection, kind: str, subject: object, first: date, last: date) -> list[ModelRow]:
    """Calls and cost by model over quota days [first, last]; a log's model is the base model it was
    priced as (a profile's calls under the model they ran on)."""
    column = _subject(kind)
    # One day as an equality: MariaDB reads `BETWEEN d AND d` on (subject, event_date) by the subject alone.
    days, bounds = ("= %s", (first,)) if first == last else ("BETWEEN %s AND %s", (first, last))
    with conn.cursor() as cur:
        cur.execute("SELECT m.model_id, SUM(c.error_code IS NULL), SUM(c.error_code IS NOT NULL)"
                    f" FROM bedrock_calls c JOIN models m ON m.id = c.model_ref WHERE c.{column} = %s"
                    f" AND c.event_date {days} GROUP BY m.model_id", (subject, *bounds))
        calls = {str(m): (int(r or 0), int(f or 0)) for m, r, f in cur.fetchall()}
        cur.execute("SELECT m.model_id, SUM(l.input_tokens), SUM(l.output_tokens), SUM(l.cost_usd)"
                    " FROM invocation_logs l JOIN models m ON m.id = COALESCE(l.price_model_ref, l.model_ref)"
                    f" WHERE l.{column} = %s AND l.event_date {days} GROUP BY m.model_id", (subject, *bounds))
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
    return [CallRow(iso(at) or "", str(op), str(model), str(region), err, tin, tout,
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


def _model_names(conn: Connection, refs: set[int]) -> dict[int, str]:
    if not refs:
        return {}
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, model_id FROM models WHERE id IN ({','.join(['%s'] * len(refs))})", sorted(refs))
        return {int(i): str(m) for i, m in cur.fetchall()}


def cost_analysis(conn: Connection, first: date, last: date, scope: frozenset[str] | None,
                  team: str | None = None) -> CostAnalysis:
    """From the daily summary (one row per day, team and model: a month of a large organisation is some
    25,000 rows), each table grouped by MySQL on the model's number, the team, the day (models named after:
    a join would make the grouping spill to disk)."""
    where = " WHERE event_date BETWEEN %s AND %s"
    params: list[Any] = [first, last]
    limit_sql, limit_params = team_filter(scope, "team")
    where += limit_sql
    params += limit_params
    if team:
        where += " AND team = %s"
        params.append(team)
    # The summary's `requests` counts every call; a request, here as in the quotas, is a successful one.
    sums = "SUM(requests - failed), SUM(failed), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd)"

    def grouped(by: str) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {by}, {sums} FROM usage_daily{where} GROUP BY {by}", params)
            return list(cur.fetchall())

    def lines(rows: list[tuple[Any, ...]], name: Callable[[Any], str], by_cost: bool) -> list[CostLine]:
        out = [CostLine(name(key), int(n or 0), int(f or 0), int(i or 0), int(o or 0), Decimal(c or 0))
               for key, n, f, i, o, c in rows]
        return sorted(out, key=lambda c: (-c.cost_usd, c.key)) if by_cost else sorted(out, key=lambda c: c.key)

    model_rows = grouped("model_ref")
    names = _model_names(conn, {int(r[0]) for r in model_rows})
    by_model = lines(model_rows, lambda ref: names.get(int(ref), f"model #{ref}"), True)
    by_team = lines(grouped("team"), str, True)
    by_day = lines(grouped("event_date"), lambda d: d.isoformat(), False)
    chart: dict[str, dict[str, Decimal]] = {}
    with conn.cursor() as cur:
        cur.execute(f"SELECT event_date, team, SUM(cost_usd) FROM usage_daily{where} GROUP BY event_date, team",
                    params)
        for day, team_name, cost in cur.fetchall():
            chart.setdefault(day.isoformat(), {})[str(team_name)] = Decimal(cost or 0)
    conn.commit()
    return CostAnalysis(first.isoformat(), last.isoformat(), sum((d.cost_usd for d in by_day), ZERO),
                        sum(d.requests for d in by_day), by_model, by_team, by_day, chart)


def team_models(conn: Connection, team: str, first: date, last: date) -> list[ModelRow]:
    """A team's calls and cost by model over quota days, from the daily summary (a team's month of calls would
    be over a hundred thousand rows)."""
    with conn.cursor() as cur:
        cur.execute("SELECT model_ref, SUM(requests - failed), SUM(failed), SUM(input_tokens), SUM(output_tokens),"
                    " SUM(cost_usd) FROM usage_daily WHERE team = %s AND event_date BETWEEN %s AND %s"
                    " GROUP BY model_ref", (team, first, last))
        rows = cur.fetchall()
    names = _model_names(conn, {int(r[0]) for r in rows})
    conn.commit()
    found = [ModelRow(names.get(int(ref), f"model #{ref}"), int(n or 0), int(f or 0), int(i or 0), int(o or 0),
                      Decimal(c or 0)) for ref, n, f, i, o, c in rows]
    return sorted(found, key=lambda r: (-r.cost_usd, -r.requests, r.model))


@dataclass(frozen=True)
class HeatMap:
    time_zone: str
    days: list[str]  # the rows: days in `time_zone`
    requests: list[list[int]]  # [day][hour of day]
    cost_usd: list[list[Decimal]]
    max_requests: int


def heat_map(conn: Connection, first: date, last: date, tz: ZoneInfo, *, scope: frozenset[str] | None,
             team: str | None = None) -> HeatMap:
    """Requests and cost by hour of day (rows: days) in `tz`, from the hourly summary by team (`usage_hour_team`:
    a team's UTC hour per row, some 34,000 rows for two weeks of 100 teams)."""
    start, end = midnight(first, tz).astimezone(UTC), midnight(last + timedelta(days=1), tz).astimezone(UTC)
    where = " WHERE h.hour_utc >= %s AND h.hour_utc < %s"
    params: list[Any] = [start.replace(tzinfo=None), end.replace(tzinfo=None)]
    limit_sql, limit_params = team_filter(scope, "h.team")
    where += limit_sql
    params += limit_params
    if team:
        where += " AND h.team = %s"
        params.append(team)
    with conn.cursor() as cur:
        cur.execute(f"SELECT h.hour_utc, SUM(h.requests - h.failed), SUM(h.cost_usd) FROM usage_hour_team h{where}"
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
        raise BadInput("the range ends before it begins")
    if (last - first).days >= max_days:
        raise BadInput(f"ranges are at most {max_days} days")


def parse_day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"expected a date YYYY-MM-DD, got {text!r}") from None


