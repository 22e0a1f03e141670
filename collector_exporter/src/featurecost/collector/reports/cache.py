"""Prompt-cache effectiveness per feature: hit ratio and dollars saved."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from featurecost.collector.pricing.pricer import Pricer, TokenPriceLookup
from featurecost.collector.reports._query import Row, Source, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage


@dataclass(slots=True)
class CacheRow(Row):
    feature: str
    calls: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    hit_ratio: Decimal | None = None
    saved_usd: Decimal = Decimal(0)
    unpriced_models: list[str] = field(default_factory=list)


def cache_effectiveness(
    storage: Storage, window: Window, source: Source = Source.rollup, pricer: Pricer | None = None
) -> list[CacheRow]:
    """Per feature: hit ratio = cache_read / input tokens, and net dollars saved =
    cache_read x (input - cache-read price) - cache_write x (cache-write - input price),
    at each model's base-tier price of the day for each tenant. Models without a price are
    listed, not guessed.

    ``pricer`` is the one that prices the calls (the collector's, with its prices file), so a
    contract price changes the saving as it changes the bill; ``None``: list prices only.
    """
    prices_of = TokenPriceLookup(pricer or Pricer())
    rows: dict[str, CacheRow] = defaultdict(lambda: CacheRow(""))
    for r in run(storage, "cache_effectiveness", window.parameters(), source):
        row = rows[r["feature"]]
        row.feature = r["feature"]
        row.calls += int(r["calls"])
        row.input_tokens += int(r["input_tokens"])
        read, write = int(r["cache_read_tokens"]), int(r["cache_write_tokens"])
        row.cache_read_tokens += read
        row.cache_write_tokens += write
        if not read and not write:
            continue
        prices = prices_of.get(r["provider"], r["model"], r["day"], r["tenant"])
        if prices is None:
            name = f"{r['provider']}/{r['model']}"
            if name not in row.unpriced_models:
                row.unpriced_models.append(name)
            continue
        row.saved_usd += read * (prices.input - prices.cache_read) - write * (prices.cache_write - prices.input)
    for row in rows.values():
        row.hit_ratio = ratio(row.cache_read_tokens, row.input_tokens)
    return sorted(rows.values(), key=lambda r: (-r.saved_usd, r.feature))
