"""Prompt-cache effectiveness per feature: hit ratio and dollars saved."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache

import genai_prices
from genai_prices import Usage

from featurecost.collector.reports._query import Row, Source, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage import Storage

_PROBE_TOKENS = 1000  # small enough to stay in every model's base price tier


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """USD per token: uncached input, cache read, cache write."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal


@cache
def unit_prices(provider: str, model: str, day: date) -> UnitPrices | None:
    """The model's base-tier token prices on ``day`` from the pinned genai-prices data."""

    def price(usage: Usage) -> Decimal:
        when = datetime.combine(day, time(12), UTC)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                calc = genai_prices.calc_price(usage, model, provider_id=provider or None, genai_request_timestamp=when)
            except LookupError:
                calc = genai_prices.calc_price(usage, model, genai_request_timestamp=when)
        return calc.input_price

    n = _PROBE_TOKENS
    try:
        plain = price(Usage(input_tokens=n))
        read = price(Usage(input_tokens=n, cache_read_tokens=n))
        write = price(Usage(input_tokens=n, cache_write_tokens=n))
    except (LookupError, ValueError):
        return None
    return UnitPrices(plain / n, read / n, write / n)


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


def cache_effectiveness(storage: Storage, window: Window, source: Source = Source.rollup) -> list[CacheRow]:
    """Per feature: hit ratio = cache_read / input tokens, and net dollars saved =
    cache_read x (input - cache-read price) - cache_write x (cache-write - input price),
    at each model's base-tier price of the day. Models without a price are listed, not guessed.
    """
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
        prices = unit_prices(r["provider"], r["model"], r["day"])
        if prices is None:
            name = f"{r['provider']}/{r['model']}"
            if name not in row.unpriced_models:
                row.unpriced_models.append(name)
            continue
        row.saved_usd += read * (prices.input - prices.cache_read) - write * (prices.cache_write - prices.input)
    for row in rows.values():
        row.hit_ratio = ratio(row.cache_read_tokens, row.input_tokens)
    return sorted(rows.values(), key=lambda r: (-r.saved_usd, r.feature))
