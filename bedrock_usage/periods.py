"""Quota periods: days and months in the quota time zone (pure).

An event at 23:30 UTC on 24 November is on 25 November in Madrid: the day an event counts against is
the calendar day of its `eventTime` in `QUOTA_TIMEZONE`, and a period ends at the next local midnight
(of the next day, or of the 1st of the next month), DST included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage.quota import Quota


@dataclass(frozen=True, slots=True)
class Periods:
    """The day and month an instant belongs to, and when each ends (UTC)."""

    day: date
    day_ends_at: datetime
    month_ends_at: datetime

    @property
    def day_id(self) -> str:
        return self.day.isoformat()

    @property
    def month_id(self) -> str:
        return self.day.strftime("%Y-%m")


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(tz).date()


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which local `day` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods_of(instant: datetime, tz: ZoneInfo) -> Periods:
    day = local_day(instant, tz)
    return Periods(
        day=day,
        day_ends_at=midnight(day + timedelta(days=1), tz),
        month_ends_at=midnight(first_of_next_month(day), tz),
    )


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def redis_horizon(now: datetime, tz: ZoneInfo, grace_days: int) -> date:
    """First day of the oldest month whose counters Redis still keeps (they expire `grace_days` after
    their month ends); before it, MySQL is the only source."""
    month = now.astimezone(tz).date().replace(day=1)
    previous = (month - timedelta(days=1)).replace(day=1)
    return previous if midnight(month, tz) + timedelta(days=grace_days) > now else month


def period_end(quota: str, period: str, tz: ZoneInfo) -> datetime:
    """When a quota period resets (UTC): the local midnight after a day (`2024-10-01`), or at the start
    of the next month (`2024-10`)."""
    if not Quota(quota).monthly:  # daily_requests, daily_cost
        return midnight(date.fromisoformat(period) + timedelta(days=1), tz)
    return midnight(first_of_next_month(date.fromisoformat(period + "-01")), tz)
