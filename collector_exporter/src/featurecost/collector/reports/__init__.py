"""Reports: the named queries that read the money back, shared by the CLI and the API.

Each report is one or more ``queries/<name>.sql`` files plus a typed function here;
``registry.run_report`` is what the report API and ``featurecost report`` call. Money
stays ``Decimal`` end to end and is a string in JSON.
"""

from featurecost.collector.reports._query import Source
from featurecost.collector.reports.allocation import RULE as ALLOCATION_RULE
from featurecost.collector.reports.allocation import AllocationRow, shared_cost_allocation
from featurecost.collector.reports.breakdown import (
    BreakdownRow,
    DecompositionRow,
    Dimension,
    breakdown,
    decomposition,
)
from featurecost.collector.reports.cache import CacheRow, cache_effectiveness
from featurecost.collector.reports.features import FeatureCostRow, feature_costs
from featurecost.collector.reports.margin import TenantMarginRow, UnitCostRow, tenant_margin, unit_costs
from featurecost.collector.reports.outliers import OutlierRow, SpendTotals, outliers
from featurecost.collector.reports.registry import REPORTS, ReportError, ReportOptions, run_report
from featurecost.collector.reports.rollups import DriftRow, OpenMonthError, rebuild_rollups, rollup_drift
from featurecost.collector.reports.weekly import RegressionRow, WeeklyFeatureRow, regressions, weekly_features
from featurecost.collector.reports.window import Window

__all__ = [
    "ALLOCATION_RULE",
    "REPORTS",
    "AllocationRow",
    "BreakdownRow",
    "CacheRow",
    "DecompositionRow",
    "Dimension",
    "DriftRow",
    "FeatureCostRow",
    "OpenMonthError",
    "OutlierRow",
    "RegressionRow",
    "ReportError",
    "ReportOptions",
    "Source",
    "SpendTotals",
    "TenantMarginRow",
    "UnitCostRow",
    "WeeklyFeatureRow",
    "Window",
    "breakdown",
    "cache_effectiveness",
    "decomposition",
    "feature_costs",
    "outliers",
    "rebuild_rollups",
    "regressions",
    "rollup_drift",
    "run_report",
    "shared_cost_allocation",
    "tenant_margin",
    "unit_costs",
    "weekly_features",
]
