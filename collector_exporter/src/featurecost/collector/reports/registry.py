"""Every report by name: the one entry point the report API and the CLI share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports._query import Source
from featurecost.collector.reports.allocation import RULE, shared_cost_allocation
from featurecost.collector.reports.batch import batch_opportunity
from featurecost.collector.reports.breakdown import Dimension, breakdown, decomposition
from featurecost.collector.reports.cache import cache_effectiveness
from featurecost.collector.reports.cache_opportunity import cache_opportunity
from featurecost.collector.reports.features import feature_costs
from featurecost.collector.reports.margin import tenant_margin, unit_costs
from featurecost.collector.reports.opportunities import opportunities
from featurecost.collector.reports.outliers import outliers
from featurecost.collector.reports.rollups import rollup_drift
from featurecost.collector.reports.weekly import regressions, weekly_features
from featurecost.collector.reports.whatif import Target, WhatIfError, whatif
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage


class ReportError(ValueError):
    """A report asked for with options it cannot take (HTTP 400, CLI usage error)."""


@dataclass(frozen=True, slots=True)
class ReportOptions:
    source: Source = Source.rollup
    dimension: Dimension = Dimension.tenant
    feature: str = ""
    n: int = 10
    shared: tuple[str, ...] = ()
    # whatif: the target provider/model, one tenant, a tokenizer correction
    model: str = ""
    tenant: str = ""
    token_ratio: Decimal | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ReportOptions:
        """From URL query parameters (``shared`` comma-separated)."""
        try:
            source = Source(params.get("source", Source.rollup.value))
            dimension = Dimension(params.get("dimension", Dimension.tenant.value))
            n = int(params.get("n", "10"))
        except ValueError as exc:
            raise ReportError(str(exc)) from exc
        if not 1 <= n <= 10_000:
            raise ReportError("n must be between 1 and 10000")
        shared = tuple(s.strip() for s in params.get("shared", "").split(",") if s.strip())
        try:
            token_ratio = Decimal(params["token_ratio"]) if params.get("token_ratio") else None
        except InvalidOperation as exc:
            raise ReportError(f"token_ratio must be a number, got {params['token_ratio']!r}") from exc
        return cls(
            source, dimension, params.get("feature", ""), n, shared,
            params.get("model", ""), params.get("tenant", ""), token_ratio,
        )  # fmt: skip

    def to_query(self) -> dict[str, str]:
        return {
            "source": self.source.value,
            "dimension": self.dimension.value,
            "feature": self.feature,
            "n": str(self.n),
            "shared": ",".join(self.shared),
            "model": self.model,
            "tenant": self.tenant,
            "token_ratio": "" if self.token_ratio is None else str(self.token_ratio),
        }


Runner = Callable[[Storage, Window, ReportOptions, Pricer | None], dict[str, Any]]
# The default windows: the last 7 days; reports about weeks (weekly, regressions) the last 8 weeks.
DAYS = 7
WEEKS = 56


def _rows(rows: list[Any]) -> dict[str, Any]:
    return {"rows": [row.to_json() for row in rows]}


def _outliers(storage: Storage, window: Window, options: ReportOptions, pricer: Pricer | None) -> dict[str, Any]:
    rows, totals = outliers(storage, window, options.n, options.source)
    return {**_rows(rows), "totals": totals.to_json()}


def _allocation(storage: Storage, window: Window, options: ReportOptions, pricer: Pricer | None) -> dict[str, Any]:
    if not options.shared:
        raise ReportError("allocation needs the shared feature(s): shared=embeddings[,other]")
    rows = shared_cost_allocation(storage, window, list(options.shared), options.source)
    return {**_rows(rows), "rule": RULE, "shared": list(options.shared)}


def _whatif(storage: Storage, window: Window, options: ReportOptions, pricer: Pricer | None) -> dict[str, Any]:
    if not options.model:
        raise ReportError("whatif needs the target model: model=provider/model")
    try:
        return whatif(
            storage, window, options.feature, Target.parse(options.model),
            tenant=options.tenant, token_ratio=options.token_ratio, pricer=pricer,
        )  # fmt: skip
    except WhatIfError as exc:
        raise ReportError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Report:
    """One report: how to run it, and how a front end offers it (``featurecost report <name>``
    is built from these; the options a command takes beyond the window are the CLI's)."""

    run: Runner
    summary: str = ""  # what it answers, one line (the command's help); "": no generic command
    title: str = ""  # its table's heading; {by}, {top}, {feature}, {model} are the options
    days: int = DAYS  # the default window: reports about weeks look back 8 of them
    windowed: bool = True  # False: every month the rollups hold, whatever the window
    source: Source | None = None  # the source it always reads; None: rollup or raw as asked
    prices: bool = False  # prices tokens: a read from storage takes the collector's prices file


REPORTS: dict[str, Report] = {
    "feature-costs": Report(lambda s, w, o, p: _rows(feature_costs(s, w, o.feature, o.tenant))),
    "weekly": Report(
        lambda s, w, o, p: {
            **_rows(weekly_features(s, w, o.source)),
            "opportunities": [row.to_json() for row in opportunities(s, w, p)],
        },
        "The weekly per-feature row: spend, session p50/p95, cost-to-revenue, WoW, anomalies.",
        "LLM cost per feature and week",
        days=WEEKS,
    ),
    "breakdown": Report(
        lambda s, w, o, p: _rows(breakdown(s, w, o.dimension, o.feature, o.source)),
        "Cost per feature by tenant, user, plan, provider, model or version (A/B cost per action).",
        "LLM cost by feature x {by}",
    ),
    "decomposition": Report(
        lambda s, w, o, p: _rows(decomposition(s, w, o.source)),
        "Per root action: input / output / cache read / cache write / reasoning tokens and turns.",
        "What one user action consumes",
    ),
    "cache": Report(
        lambda s, w, o, p: _rows(cache_effectiveness(s, w, o.source, p)),
        "Prompt-cache effectiveness per feature: hit ratio and dollars saved (at each tenant's prices).",
        "Prompt cache per feature",
        prices=True,
    ),
    "outliers": Report(
        _outliers,
        "The costliest user actions, their share of spend, and the unattributed share.",
        "Top {top} user actions by cost",
    ),
    "regressions": Report(
        lambda s, w, o, p: _rows(regressions(s, w, o.source)),
        "Features whose median session cost rose ≥ 5 % week over week for ≥ 2 weeks in a row.",
        "Session cost regressions",
        days=WEEKS,
    ),
    "margin": Report(
        lambda s, w, o, p: _rows(tenant_margin(s, w, o.source)),
        "Per-tenant margin and cost per active user (needs `featurecost import usage`).",
        "Tenant margin",
    ),
    "unit-costs": Report(
        lambda s, w, o, p: _rows(unit_costs(s, w, o.source)),
        "Per feature: spend per imported product usage unit (usage.<feature> CSV columns).",
        "LLM cost per product usage unit",
    ),
    "allocation": Report(
        _allocation,
        "Spread shared features' spend (e.g. embeddings) over the features that use them.",
        "Spend with shared cost allocated",
    ),
    # not windowed: every month the rollups hold, against calls FINAL
    "drift": Report(
        lambda s, w, o, p: _rows(rollup_drift(s)),
        "Rollups vs raw calls per month: drift > 0 means a span was counted twice.",
        "Rollup drift (rollup calls - stored calls)",
        windowed=False,
    ),
    "whatif": Report(
        _whatif,
        "Re-price a feature's actual calls at another model's prices of the same days, per week and user action.",
        "{feature} at {model} (what-if)",
        days=WEEKS,
        source=Source.raw,
        prices=True,
    ),
    "batch": Report(
        lambda s, w, o, p: _rows(batch_opportunity(s, w, p)),
        "Features whose calls run outside user requests, at the provider's Batch API prices: $ saved per week.",
        "Batch API opportunity per feature",
        days=WEEKS,
        source=Source.raw,
        prices=True,
    ),
    "cache-opportunity": Report(
        lambda s, w, o, p: _rows(cache_opportunity(s, w, p, o.source)),
        "Per feature: uncached input share, cache prices, and $/week saved if repeated prompt prefixes were cached.",
        "Prompt-cache opportunity per feature",
        days=WEEKS,
        prices=True,
    ),
    "opportunities": Report(lambda s, w, o, p: _rows(opportunities(s, w, p, o.n))),
}


def run_report(
    name: str, storage: Storage, window: Window, options: ReportOptions, pricer: Pricer | None = None
) -> dict[str, Any]:
    """The JSON payload of report ``name``: window, source, rows (+ report extras).

    ``pricer``: the one that priced the calls (reports that price, e.g. cache savings, use it);
    ``None`` means list prices only.
    """
    report = REPORTS.get(name)
    if report is None:
        raise KeyError(name)
    payload = report.run(storage, window, options, pricer)
    return {"report": name, "window": window.to_json(), "source": options.source.value, **payload}
