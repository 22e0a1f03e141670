"""What-if repricing: a feature's actual calls re-priced at another model's prices.

The question a team asks after "which feature eats the bill" is "what would it cost on
model X". We hold every call's recorded usage, so the answer re-prices exactly those
calls — each at the target model's price of the call's own day, for the call's tenant
(contract prices apply), in the call's service tier — through the same ``Pricer`` that
prices live traffic, never a second price table. What it cannot know is how the target's
tokenizer would count the same text: the payload says so, and ``token_ratio`` scales
every recorded token count for a user who has measured it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from featurecost.collector import attributes as attrs
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports._query import Row, percent, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage, money

TOKENIZER_CAVEAT = (
    "Re-priced with the token counts the current model reported; the target model's tokenizer "
    "may count the same text differently. Measure a sample on both and pass the ratio "
    "(target tokens / current tokens) as token_ratio to scale every count."
)


class WhatIfError(ValueError):
    """The what-if cannot be answered as asked (no feature, bad target, target without a price)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The model to re-price at: ``provider/model`` (the provider as ``gen_ai.provider.name``)."""

    provider: str
    model: str

    @classmethod
    def parse(cls, value: str) -> Target:
        provider, _, model = value.strip().partition("/")
        if not provider or not model:
            raise WhatIfError(f"target model must be provider/model (e.g. openai/gpt-4o-mini), got {value!r}")
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class WhatIfWeekRow(Row):
    """One week (Monday 00:00 UTC) of the feature: actual vs re-priced, over calls priced both ways."""

    week: date
    calls: int
    actual_usd: Decimal
    whatif_usd: Decimal
    difference_usd: Decimal  # what-if minus actual: negative is a saving
    change_pct: Decimal | None
    unpriced_calls: int  # calls with no actual cost: left out of both columns


@dataclass(frozen=True, slots=True)
class ActionCosts(Row):
    """Cost per user action (root), p50/p95 over actions whose every call is priced."""

    actions: int
    actual_p50_usd: Decimal | None
    actual_p95_usd: Decimal | None
    whatif_p50_usd: Decimal | None
    whatif_p95_usd: Decimal | None


def _quantile(values: list[Decimal], level: float) -> Decimal | None:
    """Exact quantile as the SQL reports take it: the sorted value at index floor(level * n)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


def _scaled(count: int, token_ratio: Decimal | None) -> int:
    if token_ratio is None:
        return count
    return int((Decimal(count) * token_ratio).to_integral_value(ROUND_HALF_EVEN))


def _probe(row: dict[str, Any], target: Target, token_ratio: Decimal | None) -> CallRecord:
    """The call as if it had gone to ``target``: same time, tenant, tier and (scaled) usage."""
    start: datetime = row["start_time"]

    def tokens(name: str) -> int:
        return _scaled(int(row[name]), token_ratio)

    return CallRecord(
        trace_id="", span_id="", start_time=start, end_time=start, environment="", service_name="",
        feature="", tenant=row["tenant"], user_id="", plan="", root_id="", session_id="", version="",
        operation="chat", provider=target.provider, request_model=target.model, response_model="",
        input_tokens=tokens("input_tokens"), output_tokens=tokens("output_tokens"),
        cache_read_tokens=tokens("cache_read_tokens"), cache_write_tokens=tokens("cache_write_tokens"),
        cache_write_1h_tokens=tokens("cache_write_1h_tokens"), reasoning_tokens=tokens("reasoning_tokens"),
        input_audio_tokens=tokens("input_audio_tokens"), output_audio_tokens=tokens("output_audio_tokens"),
        usage_source=row["usage_source"], status=row["status"], service_tier=row["service_tier"],
    )  # fmt: skip


def whatif(
    storage: Storage,
    window: Window,
    feature: str,
    target: Target,
    *,
    tenant: str = "",
    token_ratio: Decimal | None = None,
    pricer: Pricer | None = None,
) -> dict[str, Any]:
    """``feature``'s calls in ``window`` (one ``tenant``'s if given), actual vs at ``target``.

    Rows are weeks; ``actions`` compares cost per user action; ``totals`` the whole window.
    Both columns cover the same calls: those with an actual cost (the others are counted in
    ``unpriced_calls``). A target the pricer cannot price is an error naming it — an estimate
    of $0 would be the worst answer. ``pricer``: the collector's (contract prices), or list
    prices when ``None``.
    """
    if not feature:
        raise WhatIfError("whatif needs the feature to re-price: feature=<name>")
    if token_ratio is not None and not Decimal(0) < token_ratio <= Decimal(10):
        raise WhatIfError(f"token_ratio must be > 0 and <= 10, got {token_ratio}")
    pricer = pricer or Pricer()
    params = {**window.parameters(), "feature": feature, "tenant": tenant}
    weeks: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"calls": 0, "actual": Decimal(0), "whatif": Decimal(0), "unpriced": 0}
    )
    actions: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    unpriced_actions: set[str] = set()
    models: set[str] = set()
    for row in run(storage, "whatif_calls", params):
        start: datetime = row["start_time"]
        week = weeks[start.date() - timedelta(days=start.weekday())]
        root = row["root_id"]
        if not row["priced"]:
            week["unpriced"] += 1
            unpriced_actions.add(root)
            continue
        quoted = pricer.quote(_probe(row, target, token_ratio))
        if quoted.cost_usd is None:
            raise WhatIfError(f"cannot price {target}: {quoted.unpriced_reason}")
        cost = money(quoted.cost_usd)
        assert cost is not None
        models.add(f"{row['provider']}/{row['model']}")
        week["calls"] += 1
        week["actual"] += row["actual_usd"]
        week["whatif"] += cost
        actions[root][0] += row["actual_usd"]
        actions[root][1] += cost
    rows = [
        WhatIfWeekRow(
            week=week,
            calls=w["calls"],
            actual_usd=w["actual"],
            whatif_usd=w["whatif"],
            difference_usd=w["whatif"] - w["actual"],
            change_pct=percent(w["whatif"] - w["actual"], w["actual"]),
            unpriced_calls=w["unpriced"],
        )
        for week, w in sorted(weeks.items())
    ]
    if not rows:
        _check_priceable(pricer, target, window)
    priced = [costs for root, costs in actions.items() if root not in unpriced_actions]
    actual_total = sum((r.actual_usd for r in rows), Decimal(0))
    whatif_total = sum((r.whatif_usd for r in rows), Decimal(0))
    return {
        "rows": [r.to_json() for r in rows],
        "feature": feature,
        "tenant": tenant,
        "target": str(target),
        "current_models": sorted(models),
        "token_ratio": None if token_ratio is None else str(token_ratio),
        "totals": {
            "calls": sum(r.calls for r in rows),
            "unpriced_calls": sum(r.unpriced_calls for r in rows),
            "actual_usd": str(actual_total),
            "whatif_usd": str(whatif_total),
            "difference_usd": str(whatif_total - actual_total),
        },
        "actions": ActionCosts(
            actions=len(priced),
            actual_p50_usd=_quantile([a for a, _ in priced], 0.5),
            actual_p95_usd=_quantile([a for a, _ in priced], 0.95),
            whatif_p50_usd=_quantile([w for _, w in priced], 0.5),
            whatif_p95_usd=_quantile([w for _, w in priced], 0.95),
        ).to_json(),
        "caveat": TOKENIZER_CAVEAT,
    }


def _check_priceable(pricer: Pricer, target: Target, window: Window) -> None:
    """With no calls to re-price, still refuse a target that has no price (a typo must not
    pass as "no difference")."""
    start = window.since
    probe = CallRecord(
        trace_id="", span_id="", start_time=start, end_time=start, environment="", service_name="",
        feature="", tenant="", user_id="", plan="", root_id="", session_id="", version="",
        operation="chat", provider=target.provider, request_model=target.model, response_model="",
        input_tokens=1000, output_tokens=1000, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
        usage_source=attrs.USAGE_REPORTED, status="ok",
    )  # fmt: skip
    quoted = pricer.quote(probe)
    if quoted.cost_usd is None:
        raise WhatIfError(f"cannot price {target}: {quoted.unpriced_reason}")
