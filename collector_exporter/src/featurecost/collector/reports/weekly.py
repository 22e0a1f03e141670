"""The weekly per-feature row, and the regression rule that reads its medians."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from featurecost.collector.reports._query import Row, Source, percent, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

REGRESSION_THRESHOLD = Decimal("0.05")  # median session cost up at least 5 % ...
REGRESSION_WEEKS = 2  # ... for at least 2 consecutive weeks


@dataclass(frozen=True, slots=True)
class WeeklyFeatureRow(Row):
    week: date
    feature: str
    spend_usd: Decimal
    restated_usd: Decimal
    calls: int
    unpriced_calls: int
    sessions: int
    unpriced_sessions: int
    session_p50_usd: Decimal | None
    session_p95_usd: Decimal | None
    median_change_pct: Decimal | None
    revenue_usd: Decimal | None
    cost_to_revenue_pct: Decimal | None
    anomalous_sessions: int
    baseline_sessions: int


def weekly_features(storage: Storage, window: Window, source: Source = Source.rollup) -> list[WeeklyFeatureRow]:
    """One row per feature and week (Monday 00:00 UTC) of the window widened to whole weeks.

    ``median_change_pct`` compares with the feature's previous calendar week (read even
    when it lies before the window); ``cost_to_revenue_pct`` divides by all tenants'
    imported revenue prorated to the week.
    """
    weeks = window.weeks()
    rows = run(storage, "weekly_features", weeks.parameters(), source)
    first_week = weeks.since.date()
    medians: dict[tuple[str, date], Decimal | None] = {}
    result = []
    for r in rows:
        priced_sessions = int(r["sessions"]) - int(r["unpriced_sessions"])
        p50 = r["session_cost_p50"] if priced_sessions else None
        medians[(r["feature"], r["week"])] = p50
    for r in rows:
        if r["week"] < first_week:
            continue
        p50 = medians[(r["feature"], r["week"])]
        previous = medians.get((r["feature"], r["week"] - timedelta(days=7)))
        has_revenue = int(r["revenue_rows"] or 0) > 0
        revenue = r["revenue_usd"] if has_revenue else None
        result.append(
            WeeklyFeatureRow(
                week=r["week"],
                feature=r["feature"],
                spend_usd=r["spend_usd"],
                restated_usd=r["restated_usd"],
                calls=int(r["calls"]),
                unpriced_calls=int(r["unpriced_calls"]),
                sessions=int(r["sessions"]),
                unpriced_sessions=int(r["unpriced_sessions"]),
                session_p50_usd=p50,
                session_p95_usd=r["session_cost_p95"] if p50 is not None else None,
                median_change_pct=(
                    percent(p50 - previous, previous) if p50 is not None and previous is not None else None
                ),
                revenue_usd=revenue,
                cost_to_revenue_pct=percent(r["spend_usd"], revenue) if revenue is not None else None,
                anomalous_sessions=int(r["anomalous_sessions"]),
                baseline_sessions=int(r["baseline_sessions"]),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class RegressionRow(Row):
    feature: str
    week: date
    session_p50_usd: Decimal
    previous_p50_usd: Decimal
    change_pct: Decimal
    consecutive_weeks: int


def regressions(storage: Storage, window: Window, source: Source = Source.rollup) -> list[RegressionRow]:
    """Weeks in which a feature's median session cost has risen ≥ 5 % week over week for
    ≥ 2 consecutive weeks (a missing week breaks the streak)."""
    weeks = window.weeks()
    rows = run(storage, "session_medians", weeks.parameters(), source)
    result: list[RegressionRow] = []
    streak = 0
    last: tuple[str, date, Decimal] | None = None
    for r in rows:  # ordered by feature, week
        feature, week, p50 = r["feature"], r["week"], r["session_cost_p50"]
        rose = (
            last is not None
            and last[0] == feature
            and last[1] == week - timedelta(days=7)
            and last[2] > 0
            and p50 >= last[2] * (1 + REGRESSION_THRESHOLD)
        )
        if rose and last is not None:
            streak += 1
            if streak >= REGRESSION_WEEKS:
                change = ratio((p50 - last[2]) * 100, last[2])
                assert change is not None
                result.append(RegressionRow(feature, week, p50, last[2], change, streak))
        else:
            streak = 0
        last = (feature, week, p50)
    return result
