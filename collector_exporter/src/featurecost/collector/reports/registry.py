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


REPORTS: dict[str, Runner] = {
    "feature-costs": lambda s, w, o, p: _rows(feature_costs(s, w, o.feature, o.tenant)),
    "weekly": lambda s, w, o, p: {
        **_rows(weekly_features(s, w, o.source)),
        "opportunities": [row.to_json() for row in opportunities(s, w, p)],
    },
    "breakdown": lambda s, w, o, p: _rows(breakdown(s, w, o.dimension, o.feature, o.source)),
    "decomposition": lambda s, w, o, p: _rows(decomposition(s, w, o.source)),
    "cache": lambda s, w, o, p: _rows(cache_effectiveness(s, w, o.source, p)),
    "outliers": _outliers,
    "regressions": lambda s, w, o, p: _rows(regressions(s, w, o.source)),
    "margin": lambda s, w, o, p: _rows(tenant_margin(s, w, o.source)),
    "unit-costs": lambda s, w, o, p: _rows(unit_costs(s, w, o.source)),
    "allocation": _allocation,
    "whatif": _whatif,
    "batch": lambda s, w, o, p: _rows(batch_opportunity(s, w, p)),
    "cache-opportunity": lambda s, w, o, p: _rows(cache_opportunity(s, w, p, o.source)),
    "opportunities": lambda s, w, o, p: _rows(opportunities(s, w, p, o.n)),
    # not windowed: every month the rollups hold, against calls FINAL
    "drift": lambda s, w, o, p: _rows(rollup_drift(s)),
}


def run_report(
    name: str, storage: Storage, window: Window, options: ReportOptions, pricer: Pricer | None = None
) -> dict[str, Any]:
    """The JSON payload of report ``name``: window, source, rows (+ report extras).

    ``pricer``: the one that priced the calls (reports that price, e.g. cache savings, use it);
    ``None`` means list prices only.
    """
    runner = REPORTS.get(name)
    if runner is None:
        raise KeyError(name)
    payload = runner(storage, window, options, pricer)
    return {"report": name, "window": window.to_json(), "source": options.source.value, **payload}
