"""Query parameters shared by the pages and the API: a range of quota days, a time zone, audit filters."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bedrock_usage.periods import midnight
from bedrock_usage.quota_file import normalise_key
from console import trail
from console.errors import BadInput
from console.history import parse_day
from console.views import Views


def range_of(read: Views, first: str, last: str, default_days: int) -> tuple[date, date]:
    """[first, last] quota days; `last` defaults to today, `first` to the month's first day (0) or
    `default_days` days back."""
    end = parse_day(last, read.snapshots.today())
    return parse_day(first, end.replace(day=1) if default_days == 0 else end - timedelta(days=default_days - 1)), end


def zone_of(name: str, read: Views) -> ZoneInfo:
    if not name:
        return read.tz
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {name!r}") from None


def audit_query(read: Views, *, principal: str, actor: str, action: str, since: str, until: str) -> trail.AuditQuery:
    """Audit filters; `since` and `until` are quota days (both included)."""
    first = parse_day(since, date.min) if since else None
    last = parse_day(until, date.min) if until else None
    return trail.AuditQuery(principal=normalise_key(principal) if principal else "", actor=actor.strip(),
                            action=action.strip(), since=midnight(first, read.tz) if first else None,
                            until=midnight(last + timedelta(days=1), read.tz) if last else None, limit=500)
