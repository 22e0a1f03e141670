"""Keeping the rollups honest: detect and repair double counting.

A batch delivered twice is dropped before it reaches the rollups (insert deduplication
on ``calls`` also skips its materialized views). A single span stored again inside a
different batch is collapsed by ``calls FINAL`` but summed twice by the views; this is
where that is found (``rollup_drift``) and repaired (``rebuild_rollups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from featurecost.collector.reports._query import Row, query_sql, run
from featurecost.collector.storage.client import Storage

# rollup -> (the query that derives it from calls FINAL, its time bucket column)
_ROLLUPS = {
    "rollup_hourly": ("raw_hourly", "hour"),
    "rollup_actions": ("raw_actions", "hour"),
    "rollup_sessions": ("raw_sessions", "week"),
}


@dataclass(frozen=True, slots=True)
class DriftRow(Row):
    month: int
    rollup_calls: int
    stored_calls: int
    drift: int


def rollup_drift(storage: Storage) -> list[DriftRow]:
    return [
        DriftRow(int(r["month"]), int(r["rollup_calls"]), int(r["stored_calls"]), int(r["drift"]))
        for r in run(storage, "rollup_drift", {})
    ]


# Spans arrive after they end (export batching, a collector spooling through an outage):
# a month stays open this long after its last day.
OPEN_MONTH_GRACE = timedelta(days=2)


class OpenMonthError(ValueError):
    """The month can still take calls: a rebuild would miss those inserted while it runs."""


def open_month_problem(month: int, now: datetime | None = None) -> str | None:
    """Why ``month`` (YYYYMM) cannot be rebuilt yet, or None."""
    year, number = divmod(month, 100)
    month_end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    reopens = month_end + OPEN_MONTH_GRACE
    if (now or datetime.now(UTC)) < reopens:
        return (
            f"month {month} is still open: calls for it may still arrive, and a rebuild misses those "
            f"inserted while it runs; rebuild it from {reopens:%Y-%m-%d %H:%M} UTC"
        )
    return None


def rebuild_rollups(storage: Storage, month: int, now: datetime | None = None) -> None:
    """Re-derive one month (YYYYMM) of every rollup from ``calls FINAL`` + restatements,
    swapping partitions atomically. rollup_sessions is partitioned by the month of each
    week's Monday, so its partitions for ``month`` and the month before are re-derived too
    (a week that starts in one month can hold calls of the next). Calls inserted for those
    months while it runs may be missed, so an open month (``open_month_problem``) is
    refused with ``OpenMonthError``."""
    problem = open_month_problem(month, now)
    if problem is not None:
        raise OpenMonthError(problem)
    previous = month - 1 if month % 100 != 1 else month - 100 + 11
    for table, (raw, bucket) in _ROLLUPS.items():
        for partition in (month,) if bucket == "hour" else (previous, month):
            _rebuild_partition(storage, table, raw, bucket, partition)


def _rebuild_partition(storage: Storage, table: str, raw: str, bucket: str, partition: int) -> None:
    scratch = f"{table}_rebuild"
    storage.command(f"DROP TABLE IF EXISTS {scratch}")
    storage.command(f"CREATE TABLE {scratch} AS {table}")
    try:
        storage.command(
            f"INSERT INTO {scratch} SELECT * FROM ({query_sql(raw)}) WHERE toYYYYMM({bucket}) = {{month:UInt32}}",
            {"month": partition},
        )
        if storage.query_text(f"SELECT count() AS n FROM {scratch}")[0]["n"]:
            storage.command(f"ALTER TABLE {table} REPLACE PARTITION {int(partition)} FROM {scratch}")
        else:  # nothing stored for that month: whatever the rollup holds there is spurious
            storage.command(f"ALTER TABLE {table} DROP PARTITION {int(partition)}")
    finally:
        storage.command(f"DROP TABLE IF EXISTS {scratch}")
