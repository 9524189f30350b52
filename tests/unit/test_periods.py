"""bedrock_usage.periods: quota days and months in the quota time zone, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bedrock_usage.periods import (
    Periods,
    first_of_next_month,
    local_day,
    midnight,
    month_of,
    periods_of,
    redis_horizon,
)

MADRID = ZoneInfo("Europe/Madrid")


def utc(text: str) -> datetime:
    """`utc("2025-11-24T23:30")`: an instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_late_evening_utc_is_the_next_day_in_madrid() -> None:
    periods = periods_of(utc("2025-11-24T23:30"), MADRID)

    assert periods == Periods(
        day=date(2025, 11, 25),
        day_ends_at=utc("2025-11-25T23:00"),
        month_ends_at=utc("2025-11-30T23:00"),
    )
    assert (periods.day_id, periods.month_id) == ("2025-11-25", "2025-11")


def test_the_last_instant_of_a_local_day_belongs_to_it() -> None:
    assert local_day(utc("2025-11-24T22:59:59"), MADRID) == date(2025, 11, 24)
    assert local_day(utc("2025-11-24T23:00:00"), MADRID) == date(2025, 11, 25)


def test_summer_time_shifts_the_day_boundary_to_22_utc() -> None:
    assert local_day(utc("2025-07-14T21:59:59"), MADRID) == date(2025, 7, 14)
    assert local_day(utc("2025-07-14T22:00"), MADRID) == date(2025, 7, 15)
    assert periods_of(utc("2025-07-14T12:00"), MADRID).day_ends_at == utc("2025-07-14T22:00")


def test_spring_forward_day_is_23_hours_long() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST. The day begins at 23:00 UTC and ends at 22:00 UTC.
    periods = periods_of(utc("2026-03-29T12:00"), MADRID)

    assert periods.day == date(2026, 3, 29)
    assert periods.day_ends_at == utc("2026-03-29T22:00")
    assert periods.month_ends_at == utc("2026-03-31T22:00")
    assert midnight(date(2026, 3, 29), MADRID) == utc("2026-03-28T23:00")
    assert periods.day_ends_at - midnight(periods.day, MADRID) == timedelta(hours=23)


def test_the_day_before_spring_forward_still_ends_at_23_utc() -> None:
    assert periods_of(utc("2026-03-28T12:00"), MADRID).day_ends_at == utc("2026-03-28T23:00")


def test_fall_back_day_is_25_hours_long() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET. The day begins at 22:00 UTC and ends at 23:00 UTC.
    periods = periods_of(utc("2026-10-25T01:30"), MADRID)  # 02:30 local, the first time round

    assert periods.day == date(2026, 10, 25)
    assert periods.day_ends_at == utc("2026-10-25T23:00")
    assert periods.month_ends_at == utc("2026-10-31T23:00")
    assert midnight(date(2026, 10, 25), MADRID) == utc("2026-10-24T22:00")
    assert periods.day_ends_at - midnight(periods.day, MADRID) == timedelta(hours=25)


def test_month_of_a_dst_change_ends_at_the_new_offset() -> None:
    # March ends in summer time, October in winter time.
    assert periods_of(utc("2026-03-01T09:00"), MADRID).month_ends_at == utc("2026-03-31T22:00")
    assert periods_of(utc("2026-10-01T09:00"), MADRID).month_ends_at == utc("2026-10-31T23:00")


def test_31_december_month_ends_on_1_january_of_the_next_year() -> None:
    periods = periods_of(utc("2025-12-31T12:00"), MADRID)

    assert periods == Periods(date(2025, 12, 31), utc("2025-12-31T23:00"), utc("2025-12-31T23:00"))
    assert periods.month_id == "2025-12"


def test_new_years_eve_late_in_utc_is_already_next_year() -> None:
    periods = periods_of(utc("2025-12-31T23:30"), MADRID)

    assert (periods.day_id, periods.month_id) == ("2026-01-01", "2026-01")
    assert periods.day_ends_at == utc("2026-01-01T23:00")
    assert periods.month_ends_at == utc("2026-01-31T23:00")


def test_instants_in_other_zones_are_converted_first() -> None:
    tokyo = datetime(2025, 11, 25, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo"))  # 23:30 UTC on the 24th

    assert periods_of(tokyo, MADRID) == periods_of(utc("2025-11-24T23:30"), MADRID)


def test_utc_quota_zone() -> None:
    periods = periods_of(utc("2024-02-29T23:59"), ZoneInfo("UTC"))

    assert periods == Periods(date(2024, 2, 29), utc("2024-03-01T00:00"), utc("2024-03-01T00:00"))


def test_a_day_that_starts_at_a_skipped_midnight_starts_at_the_transition() -> None:
    # Chile springs forward at local midnight: 2026-09-06 00:00 does not exist, the day starts at 01:00 -03.
    santiago = ZoneInfo("America/Santiago")

    assert midnight(date(2026, 9, 6), santiago) == utc("2026-09-06T04:00")
    assert local_day(utc("2026-09-06T04:00"), santiago) == date(2026, 9, 6)
    assert local_day(utc("2026-09-06T03:59:59"), santiago) == date(2026, 9, 5)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 1, 31), date(2024, 2, 1)),
        (date(2024, 2, 29), date(2024, 3, 1)),
        (date(2025, 2, 1), date(2025, 3, 1)),
        (date(2025, 4, 30), date(2025, 5, 1)),
        (date(2025, 12, 1), date(2026, 1, 1)),
        (date(2025, 12, 31), date(2026, 1, 1)),
    ],
)
def test_first_of_next_month(day: date, expected: date) -> None:
    assert first_of_next_month(day) == expected


def test_month_of() -> None:
    assert month_of(date(2026, 1, 9)) == "2026-01"


def test_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        periods_of(datetime(2025, 11, 24, 23, 30), MADRID)
    with pytest.raises(ValueError, match="timezone-aware"):
        local_day(datetime(2025, 11, 24, 23, 30), MADRID)


def test_redis_holds_the_previous_month_only_for_the_grace_days() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    # 1 December 00:00 in Madrid is 30 November 23:00 UTC; with 3 grace days November is kept until
    # 3 December 23:00 UTC.
    assert redis_horizon(datetime(2026, 12, 3, 22, 59, tzinfo=UTC), madrid, 3) == date(2026, 11, 1)
    assert redis_horizon(datetime(2026, 12, 3, 23, 0, tzinfo=UTC), madrid, 3) == date(2026, 12, 1)
    assert redis_horizon(datetime(2026, 12, 20, tzinfo=UTC), madrid, 3) == date(2026, 12, 1)
