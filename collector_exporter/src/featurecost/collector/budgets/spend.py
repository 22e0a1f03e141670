"""Spend per budget scope and period, from storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from featurecost.collector.budgets.config import SCOPE_DIMENSIONS, Scope
from featurecost.collector.budgets.periods import Period
from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.budgets"


@dataclass(frozen=True, slots=True)
class ScopeSpend:
    """Spend of one group of a scope: ``group`` holds the values of its ``"*"`` dimensions."""

    group: dict[str, str]
    spend_usd: Decimal
    calls: int
    unpriced_calls: int


def scope_parameters(scope: Scope, period: Period) -> dict[str, Any]:
    fixed, each = scope.fixed(), scope.each()
    params: dict[str, Any] = {
        "since": period.start.astimezone(UTC).replace(tzinfo=None),
        "until": period.end.astimezone(UTC).replace(tzinfo=None),
    }
    for dim in SCOPE_DIMENSIONS:
        params[f"match_{dim}"] = int(dim in fixed)
        params[dim] = fixed.get(dim, "")
        params[f"each_{dim}"] = int(dim in each)
    return params


def scope_spend(storage: Storage, scope: Scope, period: Period) -> list[ScopeSpend]:
    rows = storage.query_named(_PACKAGE, "budget_spend", scope_parameters(scope, period))
    each = scope.each()
    return [
        ScopeSpend(
            group={dim: str(row[f"g_{dim}"]) for dim in each},
            spend_usd=Decimal(row["spend_usd"]),
            calls=int(row["calls"]),
            unpriced_calls=int(row["unpriced_calls"]),
        )
        for row in rows
    ]
