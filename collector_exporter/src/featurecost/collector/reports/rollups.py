"""Keeping the rollups honest: detect and repair double counting.

A batch delivered twice is dropped before it reaches the rollups (insert deduplication
on ``calls`` also skips its materialized views). A single span stored again inside a
different batch is collapsed by ``calls FINAL`` but summed twice by the views; this is
where that is found (``rollup_drift``) and repaired (``rebuild_rollups``).
"""

from __future__ import annotations

from dataclasses import dataclass

from featurecost.collector.reports._query import Row, query_sql, run
from featurecost.collector.storage import Storage

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


def rebuild_rollups(storage: Storage, month: int) -> None:
    """Re-derive one month (YYYYMM) of every rollup from ``calls FINAL`` + restatements,
    swapping partitions atomically. rollup_sessions is partitioned by the month of each
    week's Monday, so its partitions for ``month`` and the month before are re-derived too
    (a week that starts in one month can hold calls of the next). Calls inserted for those
    months while it runs may be missed: run it for a month that takes no new calls (a past
    month), then check ``rollup_drift`` again."""
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
