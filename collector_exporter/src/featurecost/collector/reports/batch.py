"""Batch opportunity: features whose calls run outside user requests, at Batch API prices.

A call no user waits for (a nightly summary, an embedding backfill, a queue worker) can go
through the provider's Batch API, typically at half price. Which calls those are comes from
the span attribute ``featurecost.latency``: ``batch`` when the app declared it
(``featurecost.attribute(..., latency="batch")``), ``background`` when the instrumentation saw
no enclosing span at all when the call started (no traced server request above it). Calls
already on the batch tier, failed calls and calls without usage are left out.

The saving is priced like the cache report's: each model's per-token prices of the day for
the tenant, standard tier vs the ``batch`` tier, from the same pricer that prices the calls
(genai-prices' batch variants, or a prices-file entry with ``service_tier: batch``). A model
whose batch price equals its standard one that day has no discount to offer and is listed,
not counted; a model with no price at all is listed as unpriced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from featurecost.collector import attributes as attrs
from featurecost.collector.pricing.pricer import Pricer, TokenPriceLookup, TokenPrices
from featurecost.collector.reports._query import Row, percent, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

# featurecost.latency (batch_candidates.sql reads it): declared batch, or inferred background
BASIS = {attrs.LATENCY_BATCH: "declared batch", attrs.LATENCY_BACKGROUND: "no parent span"}
BATCH_TIER = "batch"


@dataclass(slots=True)
class BatchRow(Row):
    feature: str
    basis: list[str] = field(default_factory=list)
    calls: int = 0
    standard_usd: Decimal = Decimal(0)  # the eligible calls at standard prices
    batch_usd: Decimal = Decimal(0)  # the same calls at batch prices (standard where none)
    saving_usd: Decimal = Decimal(0)
    saving_per_week_usd: Decimal = Decimal(0)
    saving_pct: Decimal | None = None
    no_batch_price: list[str] = field(default_factory=list)
    unpriced_models: list[str] = field(default_factory=list)


def _cost(prices: TokenPrices, r: dict[str, int]) -> Decimal:
    return prices.cost(
        int(r["input_tokens"]), int(r["cache_read_tokens"]), int(r["cache_write_tokens"]), int(r["output_tokens"])
    )


def per_week(amount: Decimal, window: Window) -> Decimal:
    """``amount`` over ``window`` as dollars per 7 days."""
    days = Decimal((window.until - window.since).total_seconds()) / Decimal(86_400)
    weekly = ratio(amount * 7, days)
    return weekly if weekly is not None else Decimal(0)


def batch_opportunity(storage: Storage, window: Window, pricer: Pricer | None = None) -> list[BatchRow]:
    """Per feature with calls outside user requests: their cost at standard vs batch prices,
    the saving over the window and per week. Largest saving first.

    ``pricer``: the collector's (contract prices and prices-file batch entries apply);
    ``None``: list prices only.
    """
    prices_of = TokenPriceLookup(pricer or Pricer())
    rows: dict[str, BatchRow] = {}
    params = {**window.parameters(), "priced_tenants": sorted(prices_of.pricer.overrides.tenants)}
    for r in run(storage, "batch_candidates", params):
        row = rows.setdefault(r["feature"], BatchRow(r["feature"]))
        basis = BASIS[r["latency"]]
        if basis not in row.basis:
            row.basis.append(basis)
        row.calls += int(r["calls"])
        name = f"{r['provider']}/{r['model']}"
        standard = prices_of.get(r["provider"], r["model"], r["day"], r["price_tenant"], "")
        batch = prices_of.get(r["provider"], r["model"], r["day"], r["price_tenant"], BATCH_TIER)
        if standard is None or batch is None:
            if name not in row.unpriced_models:
                row.unpriced_models.append(name)
            continue
        standard_cost, batch_cost = _cost(standard, r), _cost(batch, r)
        row.standard_usd += standard_cost
        row.batch_usd += batch_cost
        if batch == standard and name not in row.no_batch_price:
            row.no_batch_price.append(name)
    for row in rows.values():
        row.basis.sort()
        row.saving_usd = row.standard_usd - row.batch_usd
        row.saving_per_week_usd = per_week(row.saving_usd, window)
        row.saving_pct = percent(row.saving_usd, row.standard_usd)
    return sorted(rows.values(), key=lambda r: (-r.saving_usd, r.feature))
