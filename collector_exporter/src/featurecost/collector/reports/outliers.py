"""The most expensive user actions and how much of the spend they, and 'unattributed', take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from featurecost.collector.reports._query import Row, Source, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage


@dataclass(frozen=True, slots=True)
class OutlierRow(Row):
    feature: str
    root_id: str
    session_id: str
    tenant: str
    user_id: str
    span_id: str  # the action's costliest call: `featurecost prices explain SPAN_ID`
    trace_id: str
    first_call: datetime
    calls: int
    unpriced_calls: int
    spend_usd: Decimal
    share: Decimal | None


@dataclass(frozen=True, slots=True)
class SpendTotals(Row):
    spend_usd: Decimal
    calls: int
    unpriced_calls: int
    unattributed_spend_usd: Decimal
    unattributed_calls: int
    unattributed_share: Decimal | None
    top_n_spend_usd: Decimal
    top_n_share: Decimal | None


def outliers(
    storage: Storage, window: Window, n: int = 10, source: Source = Source.rollup
) -> tuple[list[OutlierRow], SpendTotals]:
    """The ``n`` costliest root actions with their share of the window's spend, plus the
    share of spend no feature claimed (feature ``unattributed``). Shares are fractions."""
    parameters = window.parameters()
    totals = run(storage, "spend_totals", parameters, source)[0]
    total = totals["total_spend_usd"] or Decimal(0)
    top_actions = run(storage, "outliers", {**parameters, "n": n}, source)
    costliest = {
        r["root_id"]: r["costliest"]
        for r in storage.query_named(
            "featurecost.collector.reports",
            "outlier_spans",
            {**parameters, "root_ids": [a["root_id"] for a in top_actions]},
        )
    }
    rows = [
        OutlierRow(
            feature=r["feature"],
            root_id=r["root_id"],
            session_id=r["session_id"],
            tenant=r["tenant"],
            user_id=r["user_id"],
            span_id=costliest.get(r["root_id"], ("", ""))[0],
            trace_id=costliest.get(r["root_id"], ("", ""))[1],
            first_call=r["first_call"],
            calls=int(r["calls"]),
            unpriced_calls=int(r["unpriced_calls"]),
            spend_usd=r["spend_usd"],
            share=ratio(r["spend_usd"], total),
        )
        for r in top_actions
    ]
    top = sum((r.spend_usd for r in rows), Decimal(0))
    unattributed = totals["unattributed_spend_usd"] or Decimal(0)
    return rows, SpendTotals(
        spend_usd=total,
        calls=int(totals["total_calls"] or 0),
        unpriced_calls=int(totals["total_unpriced_calls"] or 0),
        unattributed_spend_usd=unattributed,
        unattributed_calls=int(totals["unattributed_calls"] or 0),
        unattributed_share=ratio(unattributed, total),
        top_n_spend_usd=top,
        top_n_share=ratio(top, total),
    )
