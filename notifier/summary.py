"""The admins' daily summary: the day's usage per team, top users, who was blocked, what failed.

Built once a day at DAILY_SUMMARY_HOUR (in NOTIFY_TIMEZONE) for the previous quota day, and queued in
the outbox like any message; its dedupe key is the day, so several notifier tasks queue it once.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from pymysql.connections import Connection

from bedrock_usage import cost_report
from bedrock_usage.db import to_db
from bedrock_usage.periods import midnight
from bedrock_usage.usage import TeamStatus, UsageReader
from notifier.settings import NotifierSettings

TOP_USERS = 10


def summary_day(now: datetime, settings: NotifierSettings) -> date | None:
    """The day to summarise if the summary hour has come (today's local hour ≥ it), else None."""
    if settings.daily_summary_hour is None:
        return None
    local = now.astimezone(settings.notify_timezone)
    if local.hour < settings.daily_summary_hour:
        return None
    return local.date() - timedelta(days=1)


def build(conn: Connection, reader: UsageReader, day: date, settings: NotifierSettings) -> dict[str, Any]:
    people = reader.people(day)
    teams = reader.teams(day, sorted({p.team for p in people}))
    without = [p for p in people if p.team_status != TeamStatus.TEAM and (p.requests or p.failed)]
    start, end = midnight(day, settings.quota_timezone), midnight(day + timedelta(days=1), settings.quota_timezone)
    span = (to_db(start), to_db(end))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.principal, COALESCE(p.display_name, a.principal), a.reason, a.blocked_until"
            " FROM enforcement_actions a LEFT JOIN principals p ON p.quota_key = a.principal"
            " WHERE a.action = 'block' AND a.outcome IN ('applied', 'unchanged', 'shadow')"
            " AND a.at >= %s AND a.at < %s ORDER BY a.id", span)
        blocked: dict[str, dict[str, Any]] = {}
        for principal, name, reason, until in cur.fetchall():
            blocked[str(principal)] = {"principal": principal, "name": name, "reason": reason,
                                       "until": until.isoformat() + "+00:00" if until else None}
        cur.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'dead' AND created_at >= %s AND created_at < %s",
                    span)
        (dead,) = cur.fetchone() or (0,)
        cur.execute("SELECT COUNT(*) FROM enforcement_actions WHERE outcome = 'refused' AND at >= %s AND at < %s",
                    span)
        (refusals,) = cur.fetchone() or (0,)
    conn.commit()
    top = sorted(people, key=lambda p: (-p.requests, p.principal))[:TOP_USERS]
    return {
        "date": day.isoformat(),
        "teams": [{k: v for k, v in asdict(t).items() if k != "date"} for t in teams],
        "top": [{"principal": p.principal, "name": p.display_name, "team": p.team, "requests": p.requests}
                for p in top if p.requests],
        "blocked": list(blocked.values()),
        # Counted for themselves only: nobody's team quota covers them until they are given a team.
        "without_team": [{"principal": p.principal, "name": p.display_name, "status": p.team_status,
                          "requests": p.requests} for p in sorted(without, key=lambda p: (-p.requests, p.principal))],
        "dead": int(dead), "refusals": int(refusals),
        **_cost(conn, day),
    }


def _cost(conn: Connection, day: date) -> dict[str, Any]:
    """What the day cost (exact dollars, as a string) and the calls no invocation log priced, by region."""
    spent = cost_report.total(cost_report.spend(conn, day, day, cost_report.By.DAY))
    return {"spend_usd": str(spent.cost), "metered": spent.requests,
            "unmetered": [{"region": r, "calls": n} for r, n in cost_report.unmetered_on(conn, day).items()]}
