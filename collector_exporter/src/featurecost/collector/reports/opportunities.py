"""The savings finder's headline: the few changes that would cut the bill most, in $/week.

Each finder (batch API, prompt caching) prices its own opportunity per feature from the
window's recorded usage; this module ranks them on one scale — dollars per week — so the
weekly report and the page can show a lead the top three things worth doing, each with the
action it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports._query import Row
from featurecost.collector.reports.batch import batch_opportunity
from featurecost.collector.reports.cache_opportunity import cache_opportunity
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

TOP = 3


@dataclass(frozen=True, slots=True)
class Opportunity(Row):
    rank: int
    kind: str  # "batch", "cache"
    feature: str
    saving_per_week_usd: Decimal
    saving_usd: Decimal  # over the window
    action: str  # what to change, in one line


def _money(value: Decimal) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def _batch(storage: Storage, window: Window, pricer: Pricer | None) -> list[tuple[str, str, Decimal, Decimal, str]]:
    found = []
    for row in batch_opportunity(storage, window, pricer):
        if row.saving_usd <= 0:
            continue
        why = " and ".join(row.basis)
        action = (
            f"send {row.feature}'s {row.calls:,} calls ({why}) through the provider's Batch API: "
            f"{_money(row.standard_usd)} → {_money(row.batch_usd)} in the window"
        )
        found.append(("batch", row.feature, row.saving_per_week_usd, row.saving_usd, action))
    return found


def _cache(storage: Storage, window: Window, pricer: Pricer | None) -> list[tuple[str, str, Decimal, Decimal, str]]:
    found = []
    for row in cache_opportunity(storage, window, pricer):
        if row.saving_usd <= 0:
            continue
        action = (
            f"turn on prompt caching for {row.feature}: {row.repeated_prefix_calls:,} calls repeated a "
            f"~{row.cacheable_tokens // max(row.repeated_prefix_calls, 1):,}-token prompt prefix within "
            f"the cache lifetime without reading it from the cache"
        )
        found.append(("cache", row.feature, row.saving_per_week_usd, row.saving_usd, action))
    return found


def opportunities(storage: Storage, window: Window, pricer: Pricer | None = None, n: int = TOP) -> list[Opportunity]:
    """The ``n`` largest savings over every finder, by dollars per week (ties by feature)."""
    found = _batch(storage, window, pricer) + _cache(storage, window, pricer)
    found.sort(key=lambda f: (-f[2], f[1], f[0]))
    return [
        Opportunity(rank=i + 1, kind=kind, feature=feature, saving_per_week_usd=weekly, saving_usd=total, action=action)
        for i, (kind, feature, weekly, total, action) in enumerate(found[:n])
    ]
