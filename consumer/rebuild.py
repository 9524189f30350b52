"""`bedrockctl counters rebuild`: refill Redis from MySQL, the record.

Run by the consumer itself when Redis lost its data (consumer/redis_guard.py: under a MySQL lock, with the
marker's `rebuilding` placeholder, which the replay's scripts count with), and by an operator through the same
guard (`rebuild`: a forced repair, which writes a new marker at the end).

The calls and invocation logs of every period Redis still covers are replayed through the same counting
script, with
decisions switched off (they were taken when the calls first arrived), each for its person and for the
team its row was charged to (the row is the record of who paid); rows of people whose team was not
known yet are held again, and the consumers settle them as they settle live ones. The script deduplicates on
eventID, so the rebuild is a merge: safe while consumers run, and safe to repeat. Limit overrides are
re-cached too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql.cursors
from prometheus_client import CollectorRegistry

from bedrock_usage.keys import Keys
from bedrock_usage.periods import first_of_next_month, midnight, redis_horizon
from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import Scope, nanos_of
from consumer.assembly import assemble_consumer, sync_limits
from consumer.counters import Group, event_argument, log_argument
from consumer.settings import ConsumerSettings

CHUNK = 5000


@dataclass(frozen=True)
class RebuildReport:
    rows: int
    new: int
    since: date


# Each table's rows as (id, time, quota day, quota key, team charged, event argument fields…).
_CALLS = ("SELECT c.event_id, c.event_time, c.event_date, p.quota_key, c.team, c.error_code IS NULL"
          " FROM bedrock_calls c JOIN principals p ON p.id = c.principal_id"
          " WHERE c.event_date >= %s ORDER BY c.event_date")
_LOGS = ("SELECT l.request_id, l.event_time, l.event_date, p.quota_key, l.team, l.cost_usd, l.input_tokens,"
         " l.output_tokens, l.cache_read_tokens, l.cache_write_5m_tokens, l.cache_write_1h_tokens"
         " FROM invocation_logs l JOIN principals p ON p.id = l.principal_id"
         " WHERE l.event_date >= %s ORDER BY l.event_date")


def rebuild(settings: ConsumerSettings, now: datetime | None = None) -> RebuildReport:
    """An operator's rebuild: the guard's, forced (the lock, the placeholder, a new marker at the end)."""
    now = now or datetime.now(UTC)
    parts = assemble_consumer(settings, source="rebuild", registry=CollectorRegistry(), lookups=False,
                              clock=lambda: now)
    try:
        repair = parts.guard.repair(force=True)
    finally:
        parts.close()
    return RebuildReport(repair.rows, repair.new, redis_horizon(now, settings.quota_timezone,
                                                               settings.counter_grace_days))


def replay(settings: ConsumerSettings, marker: str, now: datetime | None = None) -> RebuildReport:
    """Count MySQL's rows of the periods Redis covers into Redis, with decisions off, expecting `marker`."""
    now = now or datetime.now(UTC)
    since = redis_horizon(now, settings.quota_timezone, settings.counter_grace_days)
    parts = assemble_consumer(settings, source="rebuild", registry=CollectorRegistry(), lookups=False)
    counters = parts.guard.counters
    counters.marker = marker
    grace = timedelta(days=settings.counter_grace_days)
    rows = new = 0

    def call(row: tuple[Any, ...], key: str) -> str:
        return event_argument(str(row[0]), row[1].replace(tzinfo=UTC).isoformat(), key, bool(row[5]))

    def log(row: tuple[Any, ...], key: str) -> str:
        return log_argument(str(row[0]), row[1].replace(tzinfo=UTC).isoformat(), key, nanos_of(row[5]),
                            Tokens(*(int(n) for n in row[6:11])))

    try:
        sync_limits(parts, Keys(settings.redis_key_prefix))
        conn = parts.caller_session.conn
        for sql, argument in ((_CALLS, call), (_LOGS, log)):
            with conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(sql, (since,))
                while chunk := cur.fetchmany(CHUNK):
                    groups: dict[tuple[Scope, str, date, str], Group] = {}
                    for row in chunk:
                        day, key, team = row[2], str(row[3]), str(row[4])
                        expire_at = int((midnight(first_of_next_month(day), settings.quota_timezone)
                                         + grace).timestamp())
                        event = argument(row, key)
                        # A row charged to a team counts for it directly; a row of a person whose team was
                        # not known yet ('') is held again, to be settled as live ones are.
                        scopes = [(Scope.USER, key)] + ([(Scope.TEAM, team)] if team else [])
                        for scope, subject in scopes:
                            # Keyed by the row's team too: a day of one person can hold rows of a team and
                            # rows held for none (their file team removed while their lookup failed).
                            group = groups.setdefault((scope, subject, day, team), Group(
                                scope, subject, team, day.isoformat(), day.strftime("%Y-%m"), expire_at,
                                decide_daily=False, decide_monthly=False, forward=not team))
                            group.events.append(event)
                            group.logs += argument is log
                    result = counters.count(list(groups.values()))
                    rows += len(chunk)
                    new += result.new
            conn.commit()
    finally:
        parts.close()
    return RebuildReport(rows, new, since)
