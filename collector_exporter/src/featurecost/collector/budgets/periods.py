"""Budget periods: the day, week or month that contains an instant, in a budget's time zone.

A "day" in New York is 23 or 25 hours long on DST transition days, and a "month" ends
on the 28th to 31st; computing the local calendar boundary first and converting it to UTC
afterwards keeps both right. Boundaries are half-open: ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class PeriodKind(StrEnum):
    day = "day"
    week = "week"
    month = "month"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    label: str  # stable name of the period in its zone, part of alert dedupe keys
    timezone: str


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0 resolves a midnight that does not exist (a DST gap at 00:00) to the
    # instant the day really starts, and an ambiguous one to its first occurrence.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _first_of_next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def period_containing(kind: PeriodKind, instant: datetime, timezone: str = "UTC", week_start: str = "monday") -> Period:
    """The period of ``kind`` that contains ``instant``, with calendar boundaries in ``timezone``."""
    if instant.tzinfo is None:
        raise ValueError("period_containing needs a timezone-aware instant")
    zone = ZoneInfo(timezone)
    local_day = instant.astimezone(zone).date()
    if kind is PeriodKind.day:
        first, after = local_day, local_day + timedelta(days=1)
        label = first.isoformat()
    elif kind is PeriodKind.week:
        offset = (local_day.weekday() - WEEKDAYS.index(week_start)) % 7
        first = local_day - timedelta(days=offset)
        after = first + timedelta(days=7)
        label = f"week-of-{first.isoformat()}"
    else:
        first = local_day.replace(day=1)
        after = _first_of_next_month(first)
        label = f"{first:%Y-%m}"
    return Period(kind, _local_midnight(first, zone), _local_midnight(after, zone), label, timezone)
