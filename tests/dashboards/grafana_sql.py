"""Turn a Grafana panel's rawSql into the SQL ClickHouse receives.

Two steps, in Grafana's order: the frontend interpolates template variables
(``${name:sqlstring}``, ``${name}``, ``$name``), then the ClickHouse plugin's backend
expands its macros. The macro expansions follow grafana/clickhouse-datasource
``pkg/macros/macros.go`` (``$__timeFilter`` → ``col >= toDateTime(from) AND col <=
toDateTime(to)``, ``$__timeInterval`` → ``toStartOfInterval(toDateTime(col), INTERVAL n
second)``...). Anything left starting with ``$`` is an error: Grafana would send it to
ClickHouse verbatim and the panel would fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

ALL = "$__all"


@dataclass(frozen=True)
class Variable:
    values: Sequence[str]
    all_value: str | None = None  # the variable's custom allValue, used verbatim when ALL is selected


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_seconds: int


class UnexpandedMacro(ValueError):
    pass


def _sqlstring(values: Sequence[str]) -> str:
    return ",".join("'" + value.replace("'", "''") + "'" for value in values)


def _iso(moment: datetime) -> str:
    """Grafana's ``${__from:date:iso}``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def interpolate_globals(text: str, time_range: TimeRange) -> str:
    """The global time variables Grafana interpolates in any query text (the Infinity URL)."""
    return text.replace("${__from:date:iso}", _iso(time_range.start)).replace("${__to:date:iso}", _iso(time_range.end))


def interpolate(sql: str, variables: Mapping[str, Variable]) -> str:
    def value(name: str, fmt: str | None) -> str:
        if name not in variables:
            raise UnexpandedMacro(f"template variable ${name} is not defined")
        variable = variables[name]
        if list(variable.values) == [ALL]:
            if variable.all_value is None:
                raise UnexpandedMacro(f"${name} is All but has no allValue")
            return variable.all_value  # Grafana does not format a custom all value
        if fmt == "sqlstring":
            return _sqlstring(variable.values)
        if fmt == "percentencode":
            return quote(",".join(variable.values), safe="")
        if fmt is None:
            return ",".join(variable.values) if len(variable.values) > 1 else variable.values[0]
        raise UnexpandedMacro(f"format {fmt!r} of ${name} is not supported here")

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}", lambda m: value(m.group(1), m.group(2)), sql)
    return re.sub(r"\$(?!__)([A-Za-z_]\w*)", lambda m: value(m.group(1), None), sql)


def _to_datetime(moment: datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _to_datetime64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"


def expand_macros(sql: str, time_range: TimeRange) -> str:
    start, end, interval = time_range.start, time_range.end, max(time_range.interval_seconds, 1)

    def with_column(name: str, render: str) -> None:
        nonlocal sql
        sql = re.sub(rf"\$__{name}\(\s*([^()]+?)\s*\)", lambda m: render.format(col=m.group(1)), sql)

    with_column("timeFilter_ms", f"{{col}} >= {_to_datetime64(start)} AND {{col}} <= {_to_datetime64(end)}")
    with_column("timeFilter", f"{{col}} >= {_to_datetime(start)} AND {{col}} <= {_to_datetime(end)}")
    with_column("dateFilter", f"{{col}} >= toDate('{start:%Y-%m-%d}') AND {{col}} <= toDate('{end:%Y-%m-%d}')")
    with_column(
        "timeInterval_ms",
        f"toStartOfInterval(toDateTime64({{col}}, 3), INTERVAL {interval * 1000} millisecond)",
    )
    with_column("timeInterval", f"toStartOfInterval(toDateTime({{col}}), INTERVAL {interval} second)")
    for name, text in (
        ("fromTime_ms", _to_datetime64(start)),
        ("toTime_ms", _to_datetime64(end)),
        ("fromTime", _to_datetime(start)),
        ("toTime", _to_datetime(end)),
        ("interval_s", str(interval)),
    ):
        sql = re.sub(rf"\$__{name}\b", text, sql)
    leftover = re.search(r"\$\S+", sql)
    if leftover:
        raise UnexpandedMacro(f"not expanded: {leftover.group(0)!r}")
    return sql


def to_clickhouse(sql: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    return expand_macros(interpolate(sql, variables), time_range)
