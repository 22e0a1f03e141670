"""Cost by tenant, user, plan, provider, model or version; decomposition per root action."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from featurecost.collector.reports._query import Row, Source, ratio, run
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage


class Dimension(StrEnum):
    tenant = "tenant"
    user = "user"
    plan = "plan"
    provider = "provider"
    model = "model"
    version = "version"

    @property
    def column(self) -> str:
        return "user_id" if self is Dimension.user else self.value


@dataclass(frozen=True, slots=True)
class BreakdownRow(Row):
    feature: str
    value: str
    spend_usd: Decimal
    calls: int
    unpriced_calls: int
    actions: int
    sessions: int
    cost_per_action_usd: Decimal | None


def breakdown(
    storage: Storage,
    window: Window,
    dimension: Dimension,
    feature: str = "",
    source: Source = Source.rollup,
) -> list[BreakdownRow]:
    """Per feature and value of ``dimension``: spend, actions and cost per action (A/B)."""
    parameters = {**window.parameters(), "dimension": dimension.column, "feature": feature}
    return [
        BreakdownRow(
            feature=r["feature"],
            value=r["value"],
            spend_usd=r["spend_usd"],
            calls=int(r["calls"]),
            unpriced_calls=int(r["unpriced_calls"]),
            actions=int(r["actions"]),
            sessions=int(r["sessions"]),
            cost_per_action_usd=ratio(r["spend_usd"], int(r["actions"])),
        )
        for r in run(storage, "breakdown", parameters, source)
    ]


@dataclass(frozen=True, slots=True)
class DecompositionRow(Row):
    feature: str
    actions: int
    calls: int
    unpriced_calls: int
    spend_usd: Decimal
    cost_per_action_usd: Decimal | None
    turns_per_action: Decimal | None
    input_tokens_per_action: Decimal | None
    output_tokens_per_action: Decimal | None
    cache_read_tokens_per_action: Decimal | None
    cache_write_tokens_per_action: Decimal | None
    reasoning_tokens_per_action: Decimal | None
    uncached_input_tokens_per_action: Decimal | None


def decomposition(storage: Storage, window: Window, source: Source = Source.rollup) -> list[DecompositionRow]:
    """Per feature, what one root action costs and consumes on average.

    ``input_tokens`` includes cache reads and writes (GenAI semconv), so
    ``uncached_input = input - cache_read - cache_write``; reasoning is part of output.
    """
    result = []
    for r in run(storage, "decomposition", window.parameters(), source):
        actions = int(r["actions"])
        uncached = int(r["input_tokens"]) - int(r["cache_read_tokens"]) - int(r["cache_write_tokens"])
        result.append(
            DecompositionRow(
                feature=r["feature"],
                actions=actions,
                calls=int(r["calls"]),
                unpriced_calls=int(r["unpriced_calls"]),
                spend_usd=r["spend_usd"],
                cost_per_action_usd=ratio(r["spend_usd"], actions),
                turns_per_action=ratio(int(r["calls"]), actions),
                input_tokens_per_action=ratio(int(r["input_tokens"]), actions),
                output_tokens_per_action=ratio(int(r["output_tokens"]), actions),
                cache_read_tokens_per_action=ratio(int(r["cache_read_tokens"]), actions),
                cache_write_tokens_per_action=ratio(int(r["cache_write_tokens"]), actions),
                reasoning_tokens_per_action=ratio(int(r["reasoning_tokens"]), actions),
                uncached_input_tokens_per_action=ratio(uncached, actions),
            )
        )
    return result
