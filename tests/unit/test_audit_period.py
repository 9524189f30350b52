from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from audit.period import PeriodError, parse_period

MADRID = ZoneInfo("Europe/Madrid")


def test_days_widen_to_whole_quota_days_in_the_quota_timezone() -> None:
    period = parse_period("2026-11-03", "2026-11-04", MADRID)
    assert period.start == datetime(2026, 11, 2, 23, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 4, 23, tzinfo=UTC)
    assert period.days == [date(2026, 11, 3), date(2026, 11, 4)]


def test_a_month_is_the_whole_month() -> None:
    period = parse_period("2026-10", "2026-10", MADRID)
    assert period.start == datetime(2026, 9, 30, 22, tzinfo=UTC)  # summer time
    assert period.end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # winter time
    assert len(period.days) == 31


def test_times_widen_to_their_days_unless_exact() -> None:
    widened = parse_period("2026-11-03T10:00", "2026-11-03T11:00+00:00", MADRID)
    assert (widened.start, widened.end) == (datetime(2026, 11, 2, 23, tzinfo=UTC),
                                            datetime(2026, 11, 3, 23, tzinfo=UTC))
    exact = parse_period("2026-11-03T10:00", "2026-11-03T11:00+00:00", MADRID, exact=True)
    assert (exact.start, exact.end) == (datetime(2026, 11, 3, 9, tzinfo=UTC), datetime(2026, 11, 3, 11, tzinfo=UTC))
    assert datetime(2026, 11, 3, 10, 59, tzinfo=UTC) in exact
    assert datetime(2026, 11, 3, 11, tzinfo=UTC) not in exact


@pytest.mark.parametrize(("start", "end"), [("2026-11-04", "2026-11-03"), ("yesterday", "2026-11-03"),
                                            ("2026-02-30", "2026-03-01")])
def test_bad_periods_are_refused_with_the_reason(start: str, end: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(start, end, MADRID)
