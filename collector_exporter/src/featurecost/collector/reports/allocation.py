"""Shared-cost allocation: a shared feature's spend split over the features that use it.

Rule ``usage-share/v1`` (versioned: a changed rule gets a new name, reports say which
rule produced them): within each tenant, the spend of the shared features is split over
that tenant's other features in proportion to their root actions in the window. Each
share is truncated to 18 decimal places and the remainder goes to the consumer with the
most actions (ties: first by name), so allocated shares add up to the shared spend
exactly. A tenant with shared spend but no other feature keeps it as ``unallocated``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from featurecost.collector.reports._query import MONEY, Row, Source, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

RULE = "usage-share/v1"
UNALLOCATED = "unallocated"


@dataclass(slots=True)
class AllocationRow(Row):
    feature: str
    direct_spend_usd: Decimal
    allocated_usd: Decimal
    total_usd: Decimal
    actions: int
    rule: str = RULE


def shared_cost_allocation(
    storage: Storage, window: Window, shared: list[str], source: Source = Source.rollup
) -> list[AllocationRow]:
    rows = run(storage, "shared_cost_usage", {**window.parameters(), "shared": shared}, source)
    direct: dict[str, Decimal] = defaultdict(Decimal)
    actions: dict[str, int] = defaultdict(int)
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    shared_by_tenant: dict[str, Decimal] = defaultdict(Decimal)
    consumers: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r["is_shared"]:
            shared_by_tenant[r["tenant"]] += r["spend_usd"]
        else:
            direct[r["feature"]] += r["spend_usd"]
            actions[r["feature"]] += int(r["actions"])
            consumers[r["tenant"]][r["feature"]] = int(r["actions"])
    for tenant, spend in shared_by_tenant.items():
        users = {f: a for f, a in consumers[tenant].items() if a > 0}
        if not users:
            allocated[UNALLOCATED] += spend
            continue
        total = sum(users.values())
        with localcontext() as ctx:
            ctx.prec = 80
            parts = {f: (spend * a / total).quantize(MONEY, rounding=ROUND_DOWN) for f, a in users.items()}
        largest = min(users, key=lambda f: (-users[f], f))
        parts[largest] += spend - sum(parts.values())
        for f, part in parts.items():
            allocated[f] += part
    features = sorted(set(direct) | set(allocated))
    result = [
        AllocationRow(
            feature=f,
            direct_spend_usd=direct[f],
            allocated_usd=allocated[f],
            total_usd=direct[f] + allocated[f],
            actions=actions[f],
        )
        for f in features
    ]
    return sorted(result, key=lambda r: (-r.total_usd, r.feature))
