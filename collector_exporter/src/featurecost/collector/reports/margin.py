"""Per-tenant margin and cost per active user, per-feature cost per product usage unit:
LLM spend against imported product data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from featurecost.collector.reports._query import Row, Source, percent, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage


@dataclass(frozen=True, slots=True)
class TenantMarginRow(Row):
    tenant: str
    spend_usd: Decimal
    calls: int
    unpriced_calls: int
    revenue_usd: Decimal | None
    margin_usd: Decimal | None
    margin_pct: Decimal | None
    cost_to_revenue_pct: Decimal | None
    active_users: int | None
    cost_per_active_user_usd: Decimal | None


def tenant_margin(storage: Storage, window: Window, source: Source = Source.rollup) -> list[TenantMarginRow]:
    """Per tenant over the window widened to whole days. margin = revenue - LLM spend;
    tenants with no imported usage get None, not a fabricated 0."""
    result = []
    for r in run(storage, "tenant_margin", window.days().parameters(), source):
        imported = int(r["usage_rows"]) > 0
        revenue: Decimal | None = r["revenue_usd"] if imported else None
        spend: Decimal = r["spend_usd"]
        users = int(r["active_users"]) if imported else None
        result.append(
            TenantMarginRow(
                tenant=r["tenant"],
                spend_usd=spend,
                calls=int(r["calls"]),
                unpriced_calls=int(r["unpriced_calls"]),
                revenue_usd=revenue,
                margin_usd=None if revenue is None else revenue - spend,
                margin_pct=None if revenue is None else percent(revenue - spend, revenue),
                cost_to_revenue_pct=None if revenue is None else percent(spend, revenue),
                active_users=users,
                cost_per_active_user_usd=ratio(spend, users) if users else None,
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class UnitCostRow(Row):
    feature: str
    spend_usd: Decimal
    calls: int
    unpriced_calls: int
    usage_count: Decimal | None
    cost_per_unit_usd: Decimal | None


def unit_costs(storage: Storage, window: Window, source: Source = Source.rollup) -> list[UnitCostRow]:
    """Per feature over the window widened to whole days: spend / imported usage count
    (e.g. cost per support ticket). Features without imported usage get None."""
    result = []
    for r in run(storage, "unit_costs", window.days().parameters(), source):
        usage: Decimal | None = r["usage_count"] if int(r["usage_rows"]) else None
        result.append(
            UnitCostRow(
                feature=r["feature"],
                spend_usd=r["spend_usd"],
                calls=int(r["calls"]),
                unpriced_calls=int(r["unpriced_calls"]),
                usage_count=usage,
                cost_per_unit_usd=ratio(r["spend_usd"], usage) if usage else None,
            )
        )
    return result
