"""Running the named queries, from the rollups or exactly from ``calls FINAL``."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Any

from featurecost.collector.storage.client import MONEY_QUANTUM, Storage, load_sql

QUERIES = "featurecost.collector.reports.queries"
MONEY = MONEY_QUANTUM


class Source(StrEnum):
    """``rollup``: the materialized rollups (fast). ``raw``: the same query over
    ``calls FINAL`` + restatement deltas (exact even if a span was stored twice)."""

    rollup = "rollup"
    raw = "raw"


_ROLLUPS = {"rollup_hourly": "raw_hourly", "rollup_actions": "raw_actions", "rollup_sessions": "raw_sessions"}
# A rollup read with FINAL becomes its raw derivation (rollup_sessions' is at its grain).
_ROLLUP_NAME = re.compile(r"\b(rollup_hourly|rollup_actions|rollup_sessions)\b(\s+FINAL\b)?")


def query_sql(name: str, source: Source = Source.rollup) -> str:
    sql = load_sql(QUERIES, f"{name}.sql")
    if source is Source.raw:
        raw = {table: load_sql(QUERIES, f"{raw_name}.sql") for table, raw_name in _ROLLUPS.items()}
        sql = _ROLLUP_NAME.sub(lambda m: f"({_strip_comments(raw[m.group(1)])})", _strip_comments(sql))
    return sql


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def run(
    storage: Storage, name: str, parameters: dict[str, Any], source: Source = Source.rollup
) -> list[dict[str, Any]]:
    return storage.query_text(query_sql(name, source), parameters)


def jsonable(value: Any) -> Any:
    """Money as strings (no float ever rounds it), times as ISO-8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):  # ClickHouse hands back UTC times without tzinfo
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """numerator / denominator to 18 places, None when the denominator is 0."""
    if not denominator:
        return None
    with localcontext() as ctx:
        ctx.prec = 80
        return (Decimal(numerator) / Decimal(denominator)).quantize(MONEY)


def percent(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    value = ratio(Decimal(numerator) * 100, denominator)
    return value


class Row:
    """Base of every report row (a dataclass): JSON with money as strings."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(asdict(self))  # type: ignore[call-overload]
        return data
