"""The period an audit covers: `--from T --to T` as whole quota days or months in QUOTA_TIMEZONE, or, with
`--exact`, the instants given.

T is a day (`2026-11-03`), a month (`2026-11`) or a time (`2026-11-03T10:00`, with or without an offset;
without one it is read in QUOTA_TIMEZONE). Unless exact, `--from` widens to the start of its quota day (or
month) and `--to` to the end of its day (or month): an auditor asks about days and months, the units the
quotas are counted in, and a partial day would never match the record of that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bedrock_usage.periods import first_of_next_month, local_day, midnight

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PeriodError(ValueError):
    """A --from/--to that cannot be read, or a period that ends before it starts."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `days` are the quota days it touches, in QUOTA_TIMEZONE."""

    start: datetime
    end: datetime
    tz: ZoneInfo
    exact: bool

    @property
    def days(self) -> list[date]:
        first, last = local_day(self.start, self.tz), local_day(self.end - timedelta(microseconds=1), self.tz)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def describe(self) -> str:
        kind = "exact" if self.exact else f"whole quota days in {self.tz.key}"
        return f"{self.start.isoformat()} to {self.end.isoformat()} ({kind})"


def _instant(text: str, tz: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{text!r}: expected YYYY-MM, YYYY-MM-DD or an ISO 8601 time") from None
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def _start_of(text: str, tz: ZoneInfo, exact: bool) -> datetime:
    if _MONTH.match(text):
        return midnight(date.fromisoformat(text + "-01"), tz)
    if _DAY.match(text):
        return midnight(date.fromisoformat(text), tz)
    instant = _instant(text, tz)
    return instant if exact else midnight(local_day(instant, tz), tz)


def _end_of(text: str, tz: ZoneInfo, exact: bool) -> datetime:
    """The end (exclusive) of what `--to TEXT` names: its whole month or day, or the instant if exact."""
    if _MONTH.match(text):
        return midnight(first_of_next_month(date.fromisoformat(text + "-01")), tz)
    if _DAY.match(text):
        return midnight(date.fromisoformat(text) + timedelta(days=1), tz)
    instant = _instant(text, tz)
    return instant if exact else midnight(local_day(instant, tz) + timedelta(days=1), tz)


def parse_period(start: str, end: str, tz: ZoneInfo, *, exact: bool = False) -> Period:
    try:
        period = Period(_start_of(start.strip(), tz, exact), _end_of(end.strip(), tz, exact), tz, exact)
    except ValueError as error:  # date.fromisoformat on 2026-02-30
        raise PeriodError(str(error)) from None
    if period.end <= period.start:
        raise PeriodError(f"the period is empty: --to {end} is not after --from {start}")
    return period
