"""Findings for the regression and anomalous-session alert rules, from small queries of
their own. Interim sources: the report functions for the same questions can replace
them (``FindingsRule`` takes any ``(now) -> findings`` callable)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from featurecost.collector.alerts import Finding
from featurecost.collector.storage import Storage

_PACKAGE = "featurecost.collector.budgets"
REGRESSION_STEP = Decimal("1.05")  # median session cost up ≥ 5 % week over week ...
REGRESSION_WEEKS = 2  # ... for at least this many consecutive weeks


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _monday(instant: datetime) -> datetime:
    day = instant.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), tzinfo=UTC)


def session_cost_regressions(storage: Storage, now: datetime) -> list[Finding]:
    """Features whose median session cost rose ≥ 5 % in each of the last two complete weeks."""
    until = _monday(now)  # complete weeks only
    since = until - timedelta(weeks=REGRESSION_WEEKS + 1)
    rows = storage.query_named(_PACKAGE, "session_cost_weeks", {"since": _naive_utc(since), "until": _naive_utc(until)})
    weeks: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    for row in rows:
        weeks[(row["environment"], row["feature"])][str(row["week"])] = Decimal(row["median_session_cost"])
    expected = [str((since + timedelta(weeks=i)).date()) for i in range(REGRESSION_WEEKS + 1)]
    found = []
    for (environment, feature), medians in sorted(weeks.items()):
        if not all(week in medians for week in expected):
            continue
        series = [medians[week] for week in expected]
        if all(prev > 0 and cur >= prev * REGRESSION_STEP for prev, cur in pairwise(series)):
            changes = [f"{(cur / prev - 1):+.1%}" for prev, cur in pairwise(series)]
            found.append(
                Finding(
                    "regression",
                    f"{environment}/{feature}",
                    f"week-of-{expected[-1]}",
                    "regression",
                    f"Cost regression: {feature} median session cost up {REGRESSION_WEEKS} weeks running",
                    f"{feature} ({environment}): median session cost "
                    + " → ".join(f"${m:.4f}" for m in series)
                    + f" (weeks of {', '.join(expected)}; {', '.join(changes)}).",
                    {
                        "environment": environment,
                        "feature": feature,
                        "weeks": dict(zip(expected, map(str, series), strict=True)),
                    },
                )
            )
    return found


def anomalous_sessions(
    storage: Storage, now: datetime, *, factor: int = 10, window: timedelta = timedelta(days=1), min_baseline: int = 5
) -> list[Finding]:
    """Sessions of the last ``window`` costing more than ``factor`` times their feature's median."""
    since = now - window
    params: dict[str, Any] = {
        "baseline_since": _naive_utc(since - timedelta(days=7)),
        "since": _naive_utc(since),
        "until": _naive_utc(now),
        "factor": factor,
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
                f"Anomalous session in {row['feature']}: ${cost:.4f} ({cost / median:.0f}x the median)",
                f"Session {row['session_id']} of {row['feature']} ({row['environment']}) cost ${cost:.4f} over "
                f"{row['calls']} calls; the feature's median session over the previous 7 days is ${median:.4f}.",
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
