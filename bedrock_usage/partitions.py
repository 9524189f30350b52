"""Monthly partitions of `bedrock_calls` and `invocation_logs`: extend ahead of time, drop for retention.

Each partition `pYYYYMM` holds the rows whose event_date is before the 1st of the following month
(the first one also holds everything older). `p_future` (MAXVALUE) catches anything beyond the last
monthly partition, so inserts never fail if maintenance is late; it is split as months come.
Retention is `ALTER TABLE … DROP PARTITION`: instant, no long DELETE, no table bloat.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from pymysql.connections import Connection

from bedrock_usage.periods import first_of_next_month

log = logging.getLogger(__name__)

TABLES = ("bedrock_calls", "invocation_logs")  # the same monthly partitions, kept in step
MONTHS_AHEAD = 3


def _partitions(conn: Connection, table: str) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND PARTITION_NAME IS NOT NULL"
            " ORDER BY PARTITION_ORDINAL_POSITION",
            (table,),
        )
        rows = cur.fetchall()
    conn.commit()
    return [(str(name), str(bound).strip("'")) for name, bound in rows]


def _months(start: date, count: int) -> list[date]:
    months, month = [], start.replace(day=1)
    for _ in range(count):
        months.append(month)
        month = first_of_next_month(month)
    return months


def ensure_partitions(conn: Connection, *, today: date | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Split p_future so that monthly partitions exist through `ahead` months after today (both tables)."""
    created: list[str] = []
    for table in TABLES:
        created += _ensure(conn, table, today or datetime.now(UTC).date(), ahead)
    return created


def _ensure(conn: Connection, table: str, today: date, ahead: int) -> list[str]:
    existing = _partitions(conn, table)
    if not existing:
        raise RuntimeError(f"{table} is not partitioned; run the migrations")
    bounds = [date.fromisoformat(bound) for name, bound in existing if name != "p_future"]
    highest = max(bounds) if bounds else None
    wanted = [m for m in _months(today, ahead + 1) if highest is None or first_of_next_month(m) > highest]
    if not wanted:
        return []
    parts = ", ".join(
        f"PARTITION p{m:%Y%m} VALUES LESS THAN ('{first_of_next_month(m).isoformat()}')" for m in wanted
    )
    with conn.cursor() as cur:
        cur.execute(
            f"ALTER TABLE {table} REORGANIZE PARTITION p_future INTO"
            f" ({parts}, PARTITION p_future VALUES LESS THAN (MAXVALUE))"
        )
    conn.commit()
    created = [f"{table}.p{m:%Y%m}" for m in wanted]
    log.info("partitions added", extra={"partitions": created})
    return created


def drop_before(conn: Connection, keep_months: int, *, today: date | None = None) -> list[str]:
    """Drop the monthly partitions entirely older than the last `keep_months` months (this one included)."""
    if keep_months < 1:
        raise ValueError("keep_months must be at least 1")
    today = today or datetime.now(UTC).date()
    cutoff = today.replace(day=1)
    for _ in range(keep_months - 1):
        cutoff = (cutoff - timedelta(days=1)).replace(day=1)
    dropped: list[str] = []
    for table in TABLES:
        doomed = [name for name, bound in _partitions(conn, table)
                  if name != "p_future" and date.fromisoformat(bound) <= cutoff]
        if doomed:
            with conn.cursor() as cur:
                cur.execute(f"ALTER TABLE {table} DROP PARTITION {', '.join(doomed)}")
            conn.commit()
            dropped += [f"{table}.{name}" for name in doomed]
    return dropped
