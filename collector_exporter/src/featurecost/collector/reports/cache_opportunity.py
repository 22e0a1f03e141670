"""Cache opportunity: what prompt caching would save on the prefixes a feature repeats.

The ``cache`` report says how much caching saves where it is on; this one says what it
would save where it is not. Per feature: the share of input tokens that were not cache
reads, the cache read/write prices of its models, and an estimated saving from repeated
prompt prefixes. Which prefixes repeat is known without any prompt text: the
instrumentation emits a short keyed hash of the leading system/instruction block and its
length class (docs/attributes.md, docs/instrumentation.md — opt-out). A repeat within the
provider's cache lifetime (5 minutes by default: Anthropic's default TTL and the low end of
OpenAI's automatic caching) would have been a cache read; the first call of each run a
cache write. Priced at each model's per-token prices of the day for the tenant, from the
same pricer as the calls (base tier, like ``cache``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from featurecost.collector.pricing.pricer import Pricer, TokenPriceLookup, TokenPrices
from featurecost.collector.reports._query import Row, Source, ratio, run
from featurecost.collector.reports.batch import per_week
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

CACHE_TTL_SECONDS = 300
MIN_CACHEABLE_TOKENS = 1024  # OpenAI's and Anthropic's (Sonnet/Opus) minimum cacheable prompt
_MTOK = Decimal(1_000_000)


@dataclass(slots=True)
class CacheOpportunityRow(Row):
    feature: str
    input_tokens: int = 0
    cache_read_tokens: int = 0
    uncached_input_share: Decimal | None = None  # input tokens that were not cache reads / input
    cache_prices: list[str] = field(default_factory=list)  # per model, USD per million tokens
    fingerprinted_calls: int = 0
    repeated_prefix_calls: int = 0  # repeats within the TTL that were not served from the cache
    cacheable_tokens: int = 0
    saving_usd: Decimal = Decimal(0)
    saving_per_week_usd: Decimal = Decimal(0)
    unpriced_models: list[str] = field(default_factory=list)


def _per_mtok(value: Decimal) -> str:
    return f"{(value * _MTOK).normalize():f}"


@lru_cache(maxsize=1024)
def _price_label(name: str, prices: TokenPrices) -> str:
    return (
        f"{name}: input {_per_mtok(prices.input)}, cache read {_per_mtok(prices.cache_read)}, "
        f"cache write {_per_mtok(prices.cache_write)} /MTok"
    )


def cache_opportunity(
    storage: Storage, window: Window, pricer: Pricer | None = None, source: Source = Source.rollup
) -> list[CacheOpportunityRow]:
    """Per feature: uncached input share, cache prices, and the estimated saving (window and
    per week) had repeated prefixes been cached. Largest saving first.

    saving = cacheable repeat tokens x (input - cache-read price)
             - first-of-run tokens x (cache-write - input price)
    """
    prices_of = TokenPriceLookup(pricer or Pricer())
    rows: dict[str, CacheOpportunityRow] = {}

    def row_of(feature: str) -> CacheOpportunityRow:
        return rows.setdefault(feature, CacheOpportunityRow(feature))

    params = {**window.parameters(), "priced_tenants": sorted(prices_of.pricer.overrides.tenants)}
    for r in run(storage, "cache_opportunity_inputs", params, source):
        row = row_of(r["feature"])
        row.input_tokens += int(r["input_tokens"])
        row.cache_read_tokens += int(r["cache_read_tokens"])
        name = f"{r['provider']}/{r['model']}"
        prices = prices_of.get(r["provider"], r["model"], r["day"], r["price_tenant"])
        if prices is None:
            if name not in row.unpriced_models:
                row.unpriced_models.append(name)
            continue
        label = _price_label(name, prices)
        if label not in row.cache_prices:
            row.cache_prices.append(label)
    params = {**params, "ttl_seconds": CACHE_TTL_SECONDS, "min_tokens": MIN_CACHEABLE_TOKENS}
    for r in run(storage, "cache_opportunity", params):
        row = row_of(r["feature"])
        row.fingerprinted_calls += int(r["fingerprinted_calls"])
        repeats, cacheable, writes = int(r["repeated_calls"]), int(r["cacheable_tokens"]), int(r["write_tokens"])
        row.repeated_prefix_calls += repeats
        row.cacheable_tokens += cacheable
        if not cacheable:
            continue
        prices = prices_of.get(r["provider"], r["model"], r["day"], r["price_tenant"])
        if prices is None:
            continue  # listed in unpriced_models above
        row.saving_usd += cacheable * (prices.input - prices.cache_read) - writes * (prices.cache_write - prices.input)
    for row in rows.values():
        row.uncached_input_share = ratio(row.input_tokens - row.cache_read_tokens, row.input_tokens)
        row.saving_per_week_usd = per_week(row.saving_usd, window)
    return sorted(rows.values(), key=lambda r: (-r.saving_usd, r.feature))
