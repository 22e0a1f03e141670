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

_ROLLUPS = {"rollup_hourly": "raw_hourly", "rollup_actions": "raw_actions"}


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
    swapping the partition atomically. Calls inserted for that month while it runs may be
    missed by the rebuilt partition: run it when that month takes no new calls (a past
    month) or re-check drift afterwards."""
    for table, raw in _ROLLUPS.items():
        scratch = f"{table}_rebuild"
        storage.command(f"DROP TABLE IF EXISTS {scratch}")
        storage.command(f"CREATE TABLE {scratch} AS {table}")
        try:
            storage.command(
                f"INSERT INTO {scratch} SELECT * FROM ({query_sql(raw)}) WHERE toYYYYMM(hour) = {{month:UInt32}}",
                {"month": month},
            )
            storage.command(f"ALTER TABLE {table} REPLACE PARTITION {int(month)} FROM {scratch}")
        finally:
            storage.command(f"DROP TABLE IF EXISTS {scratch}")
