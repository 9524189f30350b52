"""Hourly and daily usage summaries (sql/022-024): what the console's cost-analysis and hourly pages read instead
of scanning months of calls (issue 14, "speed").

A batch marks the UTC hours it wrote into (`mark`, in the batch's own transaction). `refresh` recomputes each
marked hour from the raw rows — an indexed range of both tables, whose primary keys lead with (event_date,
event_time) — replaces that hour's summary rows, sums the days it touched again into usage_daily, and clears the
mark only if no batch marked the hour again meanwhile. So the summaries are exact however rows arrive
(duplicates, late logs, redone batches, team moves): an hour is always recomputed whole, never incremented.
`backfill` marks the hours of rows that predate it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection
from pymysql.cursors import Cursor

HOUR = timedelta(hours=1)
_MARK_CHUNK = 500  # hours per INSERT of a backfill
_MARK_SQL = ("INSERT INTO usage_hourly_dirty (hour_utc, version, marked_at) VALUES {rows}"
             " ON DUPLICATE KEY UPDATE version = version + 1, marked_at = VALUES(marked_at)")
# (quota day, team, model) of an hour: requests and failures from the calls, the rest from the logs.
_CALLS_SQL = ("SELECT event_date, team, model_ref, COUNT(*), SUM(error_code IS NOT NULL) FROM bedrock_calls"
              " WHERE event_date IN ({days}) AND event_time >= %s AND event_time < %s"
              " GROUP BY event_date, team, model_ref")
_LOGS_SQL = ("SELECT event_date, team, COALESCE(price_model_ref, model_ref) AS model, COUNT(*), SUM(input_tokens),"
             " SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_5m_tokens + cache_write_1h_tokens),"
             " SUM(cost_usd) FROM invocation_logs WHERE event_date IN ({days}) AND event_time >= %s"
             " AND event_time < %s GROUP BY event_date, team, model")
_INSERT_SQL = ("INSERT INTO usage_hourly (event_date, hour_utc, team, model_ref, requests, failed, logs, input_tokens,"
               " output_tokens, cache_read_tokens, cache_write_tokens, cost_usd) VALUES ")
_DAILY_SQL = ("INSERT INTO usage_daily (event_date, team, model_ref, requests, failed, logs, input_tokens,"
              " output_tokens, cache_read_tokens, cache_write_tokens, cost_usd) SELECT event_date, team, model_ref,"
              " SUM(requests), SUM(failed), SUM(logs), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
              " SUM(cache_write_tokens), SUM(cost_usd) FROM usage_hourly WHERE event_date = %s"
              " GROUP BY event_date, team, model_ref")
# An hour's usage by team alone (the heat map's source), summed from the hour's rows just written.
_HOUR_TEAM_SQL = ("INSERT INTO usage_hour_team (hour_utc, team, requests, failed, cost_usd) SELECT hour_utc, team,"
                  " SUM(requests), SUM(failed), SUM(cost_usd) FROM usage_hourly WHERE hour_utc = %s"
                  " GROUP BY hour_utc, team")
_LOCK_WAIT_SECONDS = 30


def hour_of(instant: datetime) -> datetime:
    """The UTC hour of an instant as the tables hold it (naive UTC; an aware one is converted)."""
    return _naive_utc(instant).replace(minute=0, second=0, microsecond=0)


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None) if instant.tzinfo is not None else instant


def mark(cur: Cursor, hours: Iterable[datetime], now: datetime | None = None) -> int:
    """Mark hours dirty in the caller's transaction. In hour order, so that two batches marking the same hours
    take their row locks in the same order (no deadlock); call it last before the commit, so the locks are held
    for the commit alone. Returns how many hours were named."""
    wanted = sorted({hour_of(h) for h in hours})
    at = _naive_utc(now or datetime.now(UTC))
    for start in range(0, len(wanted), _MARK_CHUNK):
        chunk = wanted[start:start + _MARK_CHUNK]
        cur.execute(_MARK_SQL.format(rows=",".join(["(%s, 1, %s)"] * len(chunk))),
                    [x for hour in chunk for x in (hour, at)])
    return len(wanted)


def quota_days(hour: datetime, zone: ZoneInfo) -> list[date]:
    """The quota days (in `zone`) an hour's instants fall on: one, or two where the zone's offset is not whole
    hours (the rows' event_date is the quota day of their event_time)."""
    start = hour.replace(tzinfo=UTC)
    return sorted({start.astimezone(zone).date(), (start + HOUR - timedelta(microseconds=1)).astimezone(zone).date()})


@dataclass(frozen=True)
class Dirty:
    hour: datetime
    version: int


def refresh(conn: Connection, zone: ZoneInfo, *, limit: int = 500) -> int:
    """Recompute up to `limit` dirty hours, oldest first; returns how many were recomputed. One refresher at a
    time per database (a MySQL lock): two would only do the same work twice."""
    name = _lock_name(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, _LOCK_WAIT_SECONDS))
        got: Any = cur.fetchone()
    if not (got and got[0] == 1):
        return 0
    try:
        conn.commit()  # a fresh snapshot: the marks committed until now
        with conn.cursor() as cur:
            cur.execute("SELECT hour_utc, version FROM usage_hourly_dirty ORDER BY hour_utc LIMIT %s", (limit,))
            dirty = [Dirty(row[0], int(row[1])) for row in cur.fetchall()]
        conn.commit()
        days: set[date] = set()
        for item in dirty:
            days.update(_refresh_hour(conn, zone, item))
        for day in sorted(days):
            _refresh_day(conn, day)
        # Last, once the days too are done (a refresher that dies before leaves the hours marked, to be redone).
        _clear(conn, dirty)
        return len(dirty)
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
            cur.fetchall()
        conn.commit()


def refresh_all(conn: Connection, zone: ZoneInfo, *, limit: int = 500) -> int:
    """Refresh until a pass finds fewer than `limit` dirty hours (the current hour, re-marked by a live consumer
    every second, would otherwise keep it going forever). Returns the hours recomputed."""
    total = 0
    while True:
        done = refresh(conn, zone, limit=limit)
        total += done
        if done < limit:
            return total


def _refresh_hour(conn: Connection, zone: ZoneInfo, item: Dirty) -> set[date]:
    """One hour, one transaction: read its rows (a consistent snapshot taken after its mark was read, so every row
    committed with that mark is seen) and replace its summary rows. Returns the quota days whose daily rows
    changed with it."""
    days = quota_days(item.hour, zone)
    window = ",".join(["%s"] * len(days))
    bounds = (*days, item.hour, item.hour + HOUR)
    rows: dict[tuple[date, str, int], list[Any]] = {}
    try:
        with conn.cursor() as cur:
            # A consistent (non-locking) read: it never blocks the consumer's inserts into this hour.
            cur.execute(_CALLS_SQL.format(days=window), bounds)
            for day, team, model, requests, failed in cur.fetchall():
                rows[(day, team, int(model))] = [int(requests), int(failed), 0, 0, 0, 0, 0, Decimal(0)]
            cur.execute(_LOGS_SQL.format(days=window), bounds)
            for day, team, model, logs, *sums, cost in cur.fetchall():
                row = rows.setdefault((day, team, int(model)), [0, 0, 0, 0, 0, 0, 0, Decimal(0)])
                row[2:] = [int(logs), *(int(s) for s in sums), cost]
            cur.execute("SELECT DISTINCT event_date FROM usage_hourly WHERE hour_utc = %s", (item.hour,))
            touched = {row[0] for row in cur.fetchall()} | set(days)
            cur.execute("DELETE FROM usage_hourly WHERE hour_utc = %s", (item.hour,))
            values = [(day, item.hour, team, model, *sums) for (day, team, model), sums in sorted(rows.items())]
            for chunk in _chunks(values, 1000):
                cur.execute(_INSERT_SQL + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(chunk)),
                            [x for row in chunk for x in row])
            cur.execute("DELETE FROM usage_hour_team WHERE hour_utc = %s", (item.hour,))
            cur.execute(_HOUR_TEAM_SQL, (item.hour,))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return touched


def _refresh_day(conn: Connection, day: date) -> None:
    """A quota day's usage_daily rows, summed again from its hours (only the refresher, holding its lock, writes
    usage_hourly: what it reads is final)."""
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM usage_daily WHERE event_date = %s", (day,))
            cur.execute(_DAILY_SQL, (day,))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _clear(conn: Connection, dirty: list[Dirty]) -> None:
    """Delete the marks whose version is the one read. A batch committed after the hour's snapshot bumped the
    version (the DELETE reads the latest, and waits for a batch still holding the mark's lock): its hour stays
    dirty and the next pass sees its rows. In hour order, as batches mark them (no deadlock)."""
    try:
        with conn.cursor() as cur:
            for item in sorted(dirty, key=lambda d: d.hour):
                cur.execute("DELETE FROM usage_hourly_dirty WHERE hour_utc = %s AND version = %s",
                            (item.hour, item.version))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def backfill(conn: Connection, zone: ZoneInfo, since: date | None = None) -> int:
    """Mark every hour of every quota day (from `since`) that has calls or logs: for a database whose rows
    predate the summaries. By day, without reading the rows: a day's existence is one seek per table, and its
    rows' event_times are within that quota day in `zone`. Returns the hours marked."""
    marked = 0
    for day in _days_with_rows(conn, since):
        start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
        first, last = hour_of(start), hour_of(end - timedelta(microseconds=1))
        hours = [first + HOUR * i for i in range((last - first) // HOUR + 1)]
        with conn.cursor() as cur:
            marked += mark(cur, hours)
        conn.commit()
    return marked


def _days_with_rows(conn: Connection, since: date | None) -> Iterator[date]:
    bounds: list[date] = []
    with conn.cursor() as cur:
        for table in ("bedrock_calls", "invocation_logs"):
            cur.execute(f"SELECT MIN(event_date), MAX(event_date) FROM {table}")  # two seeks on the key
            bounds.extend(d for d in cur.fetchone() or () if isinstance(d, date))
    conn.commit()
    if not bounds:
        return
    day, last = max(min(bounds), since or date.min), max(bounds)
    while day <= last:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS(SELECT 1 FROM bedrock_calls WHERE event_date = %s)"
                        " OR EXISTS(SELECT 1 FROM invocation_logs WHERE event_date = %s)", (day, day))
            (found,) = cur.fetchone() or (0,)
        conn.commit()
        if found:
            yield day
        day += timedelta(days=1)


def _lock_name(conn: Connection) -> str:
    """GET_LOCK names are server-wide: one per database (64 characters at most)."""
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        (database,) = cur.fetchone() or ("",)
    return "bu_usage_hourly:" + hashlib.sha256(str(database).encode()).hexdigest()[:32]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
