"""Findings for the regression and anomalous-session alert rules (``FindingsRule`` takes
any ``(now) -> findings`` callable). Regressions come from the reports' own rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from featurecost.collector.budgets.alerts import Finding
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT
from featurecost.collector.reports.weekly import regressions
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.budgets"
REGRESSION_WEEKS = 2  # the report flags a feature once its median rose this many weeks running


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _monday(instant: datetime) -> datetime:
    day = instant.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), tzinfo=UTC)


def session_cost_regressions(storage: Storage, now: datetime, environment: str = DEFAULT_ENVIRONMENT) -> list[Finding]:
    """Features whose median session cost rose ≥ 5 % week over week for ≥ 2 weeks running,
    ending with the last complete week — the same rule and query as ``featurecost report
    regressions`` (``reports.weekly.regressions``), so an alert and the report never disagree."""
    until = _monday(now)  # complete weeks only
    since = until - timedelta(weeks=REGRESSION_WEEKS + 1)
    last_week = (until - timedelta(weeks=1)).date()
    found = []
    for row in regressions(storage, Window(since, until, environment)):
        if row.week != last_week:
            continue
        found.append(
            Finding(
                "regression",
                f"{environment}/{row.feature}",
                f"week-of-{row.week}",
                "regression",
                f"Cost regression: {row.feature} median session cost up {row.consecutive_weeks} weeks running",
                f"{row.feature} ({environment}): median session cost ${row.previous_p50_usd:.4f} → "
                f"${row.session_p50_usd:.4f} in the week of {row.week} ({row.change_pct:+.1f}%), "
                f"up ≥ 5 % for {row.consecutive_weeks} consecutive weeks.",
                {
                    "environment": environment,
                    "feature": row.feature,
                    "week": str(row.week),
                    "session_p50_usd": str(row.session_p50_usd),
                    "previous_p50_usd": str(row.previous_p50_usd),
                    "change_pct": str(row.change_pct),
                    "consecutive_weeks": row.consecutive_weeks,
                },
            )
        )
    return found


def anomalous_sessions(
    storage: Storage, now: datetime, *, window: timedelta = timedelta(days=1), min_baseline: int = 10
) -> list[Finding]:
    """Sessions of the last ``window`` that the reports' anomaly rule flags (robust z-score
    > 3.5 and > twice the median), against the feature's sessions of the 4 weeks before."""
    since = now - window
    params: dict[str, Any] = {
        "baseline_since": _naive_utc(since - timedelta(weeks=4)),
        "since": _naive_utc(since),
        "until": _naive_utc(now),
        "min_baseline_sessions": min_baseline,
    }
    found = []
    for row in storage.query_named(_PACKAGE, "anomalous_sessions", params):
        cost, median = Decimal(row["session_cost"]), Decimal(row["median_session_cost"])
        found.append(
            Finding(
                "anomalous-session",
                f"{row['environment']}/{row['feature']}/session={row['session_id']}",
                "session",
                "anomaly",
                f"Anomalous session in {row['feature']}: ${cost:.4f}"
                + (f" ({cost / median:.0f}x the median)" if median else ""),
                f"Session {row['session_id']} of {row['feature']} ({row['environment']}) cost ${cost:.4f} over "
                f"{row['calls']} calls; the feature's median session over the previous 4 weeks is ${median:.4f}.",
                {
                    "environment": row["environment"],
                    "feature": row["feature"],
                    "session_id": row["session_id"],
                    "session_cost_usd": str(cost),
                    "median_session_cost_usd": str(median),
                    "calls": int(row["calls"]),
                },
            )
        )
    return found
