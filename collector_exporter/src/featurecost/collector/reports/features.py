"""The per-feature cost table (raw ``calls FINAL``; the e2e test and demo read it).

Money stays ``Decimal`` end to end; in JSON it is a string so no float ever rounds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.reports"


@dataclass(frozen=True, slots=True)
class FeatureCostRow:
    feature: str
    calls: int
    actions: int
    sessions: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    unpriced_calls: int
    unpriced_reasons: list[str]
    share: Decimal | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("cost_usd", "share"):
            data[key] = None if data[key] is None else str(data[key])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureCostRow:
        values = {f.name: data[f.name] for f in fields(cls)}
        for key in ("cost_usd", "share"):
            values[key] = None if values[key] is None else Decimal(values[key])
        return cls(**values)


def feature_costs(storage: Storage, window: Window, feature: str = "", tenant: str = "") -> list[FeatureCostRow]:
    """One row per feature: calls, actions, sessions, tokens, priced cost, share of total.
    ``feature`` / ``tenant`` ('' = all) narrow it to one feature or one tenant's calls."""
    rows = storage.query_named(_PACKAGE, "feature_costs", {**window.parameters(), "feature": feature, "tenant": tenant})
    total = sum((r["total_cost_usd"] for r in rows if r["total_cost_usd"] is not None), Decimal(0))
    result = []
    for r in rows:
        cost = r["total_cost_usd"]
        share = (cost / total) if cost is not None and total else None
        result.append(
            FeatureCostRow(
                feature=r["feature"],
                calls=int(r["calls"]),
                actions=int(r["actions"]),
                sessions=int(r["sessions"]),
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
                cache_read_tokens=int(r["cache_read_tokens"]),
                cache_write_tokens=int(r["cache_write_tokens"]),
                reasoning_tokens=int(r["reasoning_tokens"]),
                cost_usd=cost,
                unpriced_calls=int(r["unpriced_calls"]),
                unpriced_reasons=sorted(r["unpriced_reasons"]),
                share=share,
            )
        )
    return result
