"""Calls without a cost (issue 10, point 5): successful calls that CloudTrail saw and no invocation log priced.

The consumer fills a call's token and cost columns when it joins the call's invocation log on the request
ID, in either order. A successful call (`error_code IS NULL`) whose `input_tokens` is still NULL
`UNMETERED_AFTER_SECONDS` after it is *unmetered*: invocation logging is off in its region, an endpoint
logs nothing, or the log's requestId did not match the event's (undocumented: counted, not assumed).

Every pass (the enforcer's loop, every `EVERY_SECONDS`) counts them per region, for two windows:
- `bedrock_usage_unmetered_calls{region}`: event_time in [now - 24 h, now - UNMETERED_AFTER] — what a
  dashboard shows;
- `bedrock_usage_unmetered_calls_recent{region}` and `bedrock_usage_calls_recent{region}`: the last hour of
  that window, unmetered and all successful calls — what an alert fires on (it clears an hour after
  logging is fixed, not a day after).

Cost: a range scan of the primary key (event_date, event_time, event_id) — the event_date values are
listed (IN), so both key parts bound the range — grouped by region. Every row of the window is read
(1.2-2 s per million rows on MariaDB 10.11, tests/performance/bench_metering.py on 300,000 rows), so the
hour the alert reads is counted every pass and the 24 hours only every `FULL_EVERY_SECONDS`: at 3 million
calls a day, ~0.2 s a minute and ~4-6 s every 10 minutes. Several enforcers each count (read-only); the alert takes
`max by (region)`. (An index on bedrock_calls (input_tokens, error_code) would make both reads touch only
unmetered rows; not added: every call's row would pay for it on insert and on its log's join.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from bedrock_usage.db import to_db
from bedrock_usage.periods import local_day
from enforcement.metrics import EnforcerMetrics

log = logging.getLogger(__name__)

EVERY_SECONDS = 60.0
FULL_EVERY_SECONDS = 600.0
WINDOW = timedelta(hours=24)
RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class RegionCount:
    region: str
    unmetered: int  # in [now - 24 h, now - UNMETERED_AFTER]
    unmetered_recent: int  # in the last hour of that window
    calls_recent: int  # successful calls in that hour, metered or not


def days_of(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """The quota days (event_date values) an interval of instants touches, both ends included."""
    first, last = local_day(start, tz), local_day(end, tz)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def statement(start: datetime, end: datetime, recent_from: datetime, tz: ZoneInfo) -> tuple[str, tuple[object, ...]]:
    """The count's SQL: successful calls with event_time in [start, end) not metered, by region; and, from
    `recent_from`, unmetered and all successful calls. The listed days bound the key's first part."""
    days = days_of(start, end, tz)
    return (
        "SELECT region, SUM(input_tokens IS NULL), SUM(input_tokens IS NULL AND event_time >= %s),"
        " SUM(event_time >= %s) FROM bedrock_calls"
        f" WHERE event_date IN ({', '.join(['%s'] * len(days))}) AND event_time >= %s AND event_time < %s"
        " AND error_code IS NULL GROUP BY region",
        (to_db(recent_from), to_db(recent_from), *days, to_db(start), to_db(end)))


def count(conn: Connection, start: datetime, end: datetime, recent_from: datetime,
          tz: ZoneInfo) -> dict[str, RegionCount]:
    with conn.cursor() as cur:
        cur.execute(*statement(start, end, recent_from, tz))
        rows = cur.fetchall()
    conn.commit()
    return {str(r[0]): RegionCount(str(r[0]), int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


class MeteringWatch:
    def __init__(self, conn: Callable[[], Connection], metrics: EnforcerMetrics, *, after_seconds: int,
                 tz: ZoneInfo, clock: Callable[[], datetime]) -> None:
        self._conn, self._metrics, self._after, self._tz, self._clock = conn, metrics, after_seconds, tz, clock
        self._regions: set[str] = set()
        self._full_at: datetime | None = None
        self._day: dict[str, int] = {}  # the 24-hour counts as last read

    def run_once(self) -> dict[str, RegionCount]:
        now = self._clock()
        end = now - timedelta(seconds=self._after)
        recent = count(self._conn(), end - RECENT, end, end - RECENT, self._tz)
        if self._full_at is None or (now - self._full_at).total_seconds() >= FULL_EVERY_SECONDS:
            self._day = {r: found.unmetered
                         for r, found in count(self._conn(), now - WINDOW, end, end, self._tz).items()}
            self._full_at = now
        counts = {region: RegionCount(region, max(self._day.get(region, 0), found.unmetered_recent),
                                      found.unmetered_recent, found.calls_recent)
                  for region, found in recent.items()}
        for region, day_count in self._day.items():
            counts.setdefault(region, RegionCount(region, day_count, 0, 0))
        # A region that had unmetered calls and has none now goes to 0 (not absent): the alert resolves.
        for region in self._regions | set(counts):
            found = counts.get(region, RegionCount(region, 0, 0, 0))
            self._metrics.unmetered.labels(region).set(found.unmetered)
            self._metrics.unmetered_recent.labels(region).set(found.unmetered_recent)
            self._metrics.calls_recent.labels(region).set(found.calls_recent)
        self._regions |= set(counts)
        unmetered = {r: c.unmetered for r, c in counts.items() if c.unmetered}
        if unmetered:
            log.warning("successful calls without an invocation log", extra={"unmetered": unmetered})
        return counts
