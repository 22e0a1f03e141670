"""Budget periods: calendar boundaries in the budget's zone, across DST and month ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from featurecost.collector.budgets.periods import PeriodKind, period_containing


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_day_in_new_york_starts_at_local_midnight() -> None:
    # 2026-07-01 03:30 UTC is still June 30 in New York (EDT, UTC-4).
    period = period_containing(PeriodKind.day, utc(2026, 7, 1, 3, 30), "America/New_York")
    assert period.label == "2026-06-30"
    assert period.start == utc(2026, 6, 30, 4)
    assert period.end == utc(2026, 7, 1, 4)


def test_spring_forward_day_is_23_hours_and_fall_back_day_25() -> None:
    spring = period_containing(PeriodKind.day, utc(2026, 3, 8, 12), "America/New_York")
    assert (spring.start, spring.end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert spring.end - spring.start == timedelta(hours=23)
    fall = period_containing(PeriodKind.day, utc(2026, 11, 1, 12), "America/New_York")
    assert (fall.start, fall.end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert fall.end - fall.start == timedelta(hours=25)


def test_the_repeated_hour_belongs_to_the_same_day() -> None:
    # 01:30 happens twice on 2026-11-01 in New York: 05:30 and 06:30 UTC.
    first = period_containing(PeriodKind.day, utc(2026, 11, 1, 5, 30), "America/New_York")
    second = period_containing(PeriodKind.day, utc(2026, 11, 1, 6, 30), "America/New_York")
    assert first == second


def test_midnight_that_does_not_exist_starts_the_day_at_0100() -> None:
    # Havana springs forward at 00:00 → 01:00 (2026-03-08): the day starts at 01:00 CDT = 05:00 UTC.
    period = period_containing(PeriodKind.day, utc(2026, 3, 8, 12), "America/Havana")
    assert period.start == utc(2026, 3, 8, 5)
    assert period.end == utc(2026, 3, 9, 4)


@pytest.mark.parametrize(
    ("instant", "label", "start", "end"),
    [
        (utc(2026, 1, 31, 23, 59, 59), "2026-01", utc(2026, 1, 1), utc(2026, 2, 1)),
        (utc(2026, 2, 1), "2026-02", utc(2026, 2, 1), utc(2026, 3, 1)),
        (utc(2028, 2, 29, 12), "2028-02", utc(2028, 2, 1), utc(2028, 3, 1)),
        (utc(2026, 12, 31, 23, 59, 59, 999999), "2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
    ],
)
def test_month_ends_in_utc(instant: datetime, label: str, start: datetime, end: datetime) -> None:
    period = period_containing(PeriodKind.month, instant, "UTC")
    assert (period.label, period.start, period.end) == (label, start, end)
    assert period.start <= instant < period.end


def test_month_in_tokyo_and_across_a_dst_change_in_berlin() -> None:
    # 2026-02-28 16:00 UTC is already March 1 in Tokyo (UTC+9).
    tokyo = period_containing(PeriodKind.month, utc(2026, 2, 28, 16), "Asia/Tokyo")
    assert (tokyo.label, tokyo.start, tokyo.end) == ("2026-03", utc(2026, 2, 28, 15), utc(2026, 3, 31, 15))
    # March in Berlin starts in CET (+1) and ends in CEST (+2).
    berlin = period_containing(PeriodKind.month, utc(2026, 3, 15), "Europe/Berlin")
    assert (berlin.start, berlin.end) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))


def test_weeks_start_on_the_configured_day() -> None:
    # Sunday 2026-11-22 23:00 in Los Angeles = Monday 07:00 UTC.
    instant = utc(2026, 11, 23, 7)
    monday = period_containing(PeriodKind.week, instant, "America/Los_Angeles")
    assert monday.label == "week-of-2026-11-16"
    assert (monday.start, monday.end) == (utc(2026, 11, 16, 8), utc(2026, 11, 23, 8))
    sunday = period_containing(PeriodKind.week, instant, "America/Los_Angeles", week_start="sunday")
    assert sunday.label == "week-of-2026-11-22"
    assert sunday.start == utc(2026, 11, 22, 8)


def test_week_spanning_a_dst_change_is_not_seven_times_24_hours() -> None:
    period = period_containing(PeriodKind.week, utc(2026, 11, 1, 12), "America/New_York")
    assert period.label == "week-of-2026-10-26"
    assert period.end - period.start == timedelta(days=7, hours=1)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_containing(PeriodKind.day, datetime(2026, 1, 1), "UTC")
