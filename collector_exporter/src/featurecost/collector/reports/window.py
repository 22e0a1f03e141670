"""The time window and environment every report reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT

ALL_ENVIRONMENTS = "*"


def parse_utc(value: str, name: str) -> datetime:
    """An ISO-8601 time from a user (CLI option, query parameter); a naive time means UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"{name}: not an ISO-8601 time: {value!r} (e.g. 2026-11-01 or 2026-11-01T09:30; UTC unless offset)"
        ) from exc
    return _utc(parsed)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """``[since, until)`` in one environment (``*`` or ``all``: every environment)."""

    since: datetime
    until: datetime
    environment: str = DEFAULT_ENVIRONMENT

    @classmethod
    def last_days(cls, days: int, environment: str = DEFAULT_ENVIRONMENT, now: datetime | None = None) -> Window:
        until = (now or datetime.now(UTC)) + timedelta(seconds=1)
        return cls(until - timedelta(days=days), until, environment)

    def parameters(self) -> dict[str, Any]:
        environment = ALL_ENVIRONMENTS if self.environment in ("*", "all") else self.environment
        return {
            "since": _utc(self.since).replace(tzinfo=None),
            "until": _utc(self.until).replace(tzinfo=None),
            "environment": environment,
        }

    def to_json(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "environment": self.environment}

    def weeks(self) -> Window:
        """Widened to whole weeks: since back to its Monday 00:00 UTC, until up to the next."""
        since = _utc(self.since)
        start = datetime.combine(since.date() - timedelta(days=since.weekday()), time(), UTC)
        until = _utc(self.until)
        end = datetime.combine(until.date() - timedelta(days=until.weekday()), time(), UTC)
        if end < until:
            end += timedelta(days=7)
        return Window(start, end, self.environment)

    def days(self) -> Window:
        """Widened to whole UTC days (revenue is imported per day or period)."""
        since = _utc(self.since)
        start = datetime.combine(since.date(), time(), UTC)
        until = _utc(self.until)
        end = datetime.combine(until.date(), time(), UTC)
        if end < until:
            end += timedelta(days=1)
        return Window(start, end, self.environment)
