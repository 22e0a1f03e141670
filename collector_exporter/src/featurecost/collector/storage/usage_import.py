"""Import product usage and revenue from CSV into ``product_usage``.

Format (header row required, UTF-8, comma-separated; docs/reports.md has examples):

- ``tenant`` — the tenant id, as your app passes it to ``featurecost.attribute``.
- the period, one of: ``day`` (YYYY-MM-DD); ``period`` (YYYY-MM, a calendar month, or
  YYYY-MM-DD); or ``period_start`` and ``period_end`` (inclusive dates).
- ``revenue_usd`` — revenue from the tenant in that period (decimal, ≥ 0).
- ``active_users`` — optional, distinct active users in that period (integer, ≥ 0).
- ``usage.<feature>`` — optional, any number: product usage counts per feature.

The whole file is validated first; any bad row rejects the file and every problem is
reported with its line number (the first ``MAX_ERRORS``), so a file is never half
imported. A file holds at most ``MAX_ROWS`` rows: validated rows cost about 1.4 KB each
in memory, and the collector must not be made to hold gigabytes by one request.
"""

from __future__ import annotations

import calendar
import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from featurecost.collector.storage.client import Storage

USAGE_PREFIX = "usage."
MAX_ROWS = 50_000  # per import: split bigger files (a row per tenant, period and feature)
MAX_ERRORS = 100
COLUMNS = (
    "tenant", "period_start", "period_end", "feature", "revenue_usd", "active_users", "usage_count", "source",
)  # fmt: skip


class UsageRow(BaseModel):
    """One CSV row, validated."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tenant: str = Field(min_length=1)
    period_start: date
    period_end: date
    revenue_usd: Decimal = Field(ge=0, max_digits=38, decimal_places=18)
    active_users: int = Field(default=0, ge=0)
    usage: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _period(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v not in (None, "") or k in ("tenant", "revenue_usd")}
        day, period = data.pop("day", None), data.pop("period", None)
        given = [name for name, value in (("day", day), ("period", period)) if value]
        if "period_start" in data or "period_end" in data:
            given.append("period_start/period_end")
        if len(given) != 1:
            raise ValueError("give exactly one of: day, period, or period_start and period_end")
        if day:
            data["period_start"] = data["period_end"] = day
        elif period:
            data["period_start"], data["period_end"] = _period_bounds(str(period))
        usage = {k[len(USAGE_PREFIX) :]: v for k, v in data.items() if k.startswith(USAGE_PREFIX)}
        data = {k: v for k, v in data.items() if not k.startswith(USAGE_PREFIX)}
        data["usage"] = usage
        return data

    @field_validator("usage")
    @classmethod
    def _usage(cls, value: dict[str, int]) -> dict[str, int]:
        for feature, count in value.items():
            if not feature:
                raise ValueError("usage column needs a feature name: usage.<feature>")
            if count < 0:
                raise ValueError(f"usage.{feature} must be ≥ 0")
        return value

    @model_validator(mode="after")
    def _order(self) -> UsageRow:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


def _period_bounds(period: str) -> tuple[date, date]:
    try:
        if len(period) == 7:
            year, month = int(period[:4]), int(period[5:7])
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        day = date.fromisoformat(period)
    except ValueError as exc:
        raise ValueError(f"period {period!r}: expected YYYY-MM or YYYY-MM-DD") from exc
    return day, day


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class UsageImportError(ValueError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def parse_usage_csv(text: str) -> list[UsageRow]:
    """Every row validated; raises ``UsageImportError`` listing every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    errors: list[RowError] = []
    if "tenant" not in header or "revenue_usd" not in header:
        raise UsageImportError([RowError(1, f"header needs tenant and revenue_usd columns, got {header}")])
    rows: list[UsageRow] = []
    for raw in reader:
        line = reader.line_num
        if len(rows) + len(errors) >= MAX_ROWS:
            raise UsageImportError([RowError(line, f"more than {MAX_ROWS} rows: split the file")])
        if len(errors) >= MAX_ERRORS:
            errors.append(RowError(line, f"stopped after {MAX_ERRORS} problems"))
            break
        if None in raw:
            errors.append(RowError(line, "more fields than the header has columns"))
            continue
        try:
            rows.append(UsageRow.model_validate(raw))
        except ValidationError as exc:
            # Name the column the user wrote (day / period), not the field it became.
            given = next((c for c in ("day", "period") if raw.get(c)), None)
            messages: list[str] = []
            for problem in exc.errors():
                where = ".".join(str(p) for p in problem["loc"])
                if given and where in ("period_start", "period_end"):
                    where = given
                message = f"{where + ': ' if where else ''}{problem['msg']}"
                if message not in messages:
                    messages.append(message)
            errors.extend(RowError(line, m) for m in messages)
    if errors:
        raise UsageImportError(errors)
    if not rows:
        raise UsageImportError([RowError(1, "no data rows")])
    return rows


def store_usage(storage: Storage, rows: list[UsageRow], source: str) -> int:
    """Insert tenant rows (revenue, active users) and one row per feature usage count."""
    values: list[list[Any]] = []
    for r in rows:
        values.append([r.tenant, r.period_start, r.period_end, "", r.revenue_usd, r.active_users, 0, source])
        for feature, count in sorted(r.usage.items()):
            values.append([r.tenant, r.period_start, r.period_end, feature, Decimal(0), 0, count, source])
    storage.insert_rows("product_usage", values, COLUMNS)
    return len(rows)
