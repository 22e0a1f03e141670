"""Build the Grafana dashboard JSON from the panel SQL in ``dashboards/sql/``.

The SQL lives in ``.sql`` files (one query, one name) so it can be read, diffed and
executed by the tests; Grafana needs it inside the dashboard JSON, so this script
writes ``dashboards/json/featurecost-overview.json``. The tests fail when the committed
JSON differs from what this script builds, so edit the SQL or the layout here and run::

    python -m dashboards.build

When rollup tables land, point a panel at them by editing its ``.sql`` file only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SQL_DIR = HERE / "sql"
OUTPUT = HERE / "json" / "featurecost-overview.json"

DATASOURCE_UID = "featurecost-clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
DASHBOARD_UID = "featurecost-overview"
# The plugin's query format: 0 = time series, 1 = table.
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1
# Multi-value variables: "All" becomes this literal so the SQL can test for it
# (`'__all' IN (${feature:sqlstring})`) instead of listing every value.
ALL_VALUE = "'__all'"


@dataclass(frozen=True)
class Panel:
    title: str
    sql: str  # file name in sql/, without .sql
    kind: str  # Grafana panel type
    grid: tuple[int, int, int, int]  # x, y, w, h
    description: str
    unit: str = ""
    time_series: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)


def _usd(name: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": "currencyUSD"}]}


def _percent(name: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": "percentunit"}]}


PANELS = [
    Panel(
        "Spend in range",
        "total_spend",
        "stat",
        (0, 0, 12, 4),
        "Priced spend, calls, sessions and calls whose price is unknown (never counted as $0).",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        },
        overrides=[_usd("spend_usd")],
    ),
    Panel(
        "Unpriced and unattributed share",
        "coverage",
        "stat",
        (12, 0, 12, 4),
        "Share of calls without a price, and of calls and spend without a feature. "
        "Not filtered by the feature variable.",
        unit="percentunit",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        },
    ),
    Panel(
        "Weekly cost by feature",
        "weekly_features",
        "table",
        (0, 4, 24, 9),
        "One row per ISO week and feature: spend, calls, actions, sessions, cost per session p50/p95 and the "
        "week-over-week change of the median session cost.",
        overrides=[
            _usd("spend_usd"),
            _usd("session_cost_p50_usd"),
            _usd("session_cost_p95_usd"),
            _percent("p50_change_wow"),
        ],
    ),
    Panel(
        "Cost over time by feature",
        "cost_over_time",
        "timeseries",
        (0, 13, 12, 9),
        "Priced cost per interval, one series per feature.",
        unit="currencyUSD",
        time_series=True,
        options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["sum"]}},
    ),
    Panel(
        "Session cost p50 / p95",
        "session_cost_quantiles",
        "timeseries",
        (12, 13, 12, 9),
        "Cost of a session (conversation) by the interval it started in: median and 95th percentile.",
        unit="currencyUSD",
        time_series=True,
    ),
    Panel(
        "Cache savings",
        "cache_savings",
        "table",
        (0, 22, 12, 8),
        "Prompt-cache use per feature: tokens read from the cache and the cache hit rate of input tokens.",
        overrides=[_percent("cache_hit_rate"), _usd("input_cost_total_usd")],
    ),
    Panel(
        "Top tenants",
        "top_tenants",
        "table",
        (12, 22, 12, 8),
        "The ten tenants with the highest priced spend.",
        overrides=[_usd("spend_usd")],
    ),
    Panel(
        "Unpriced calls by model",
        "unpriced_reasons",
        "table",
        (0, 30, 24, 6),
        "Why calls have no price: add a price override for these models.",
    ),
]


def read_sql(name: str) -> str:
    """The query text without its leading comment lines (Grafana shows the description)."""
    lines = (SQL_DIR / f"{name}.sql").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("--")).strip()


def _target(panel: Panel) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "format": FORMAT_TIME_SERIES if panel.time_series else FORMAT_TABLE,
        "queryType": "timeseries" if panel.time_series else "table",
        "rawSql": read_sql(panel.sql),
    }


def _panel(panel_id: int, panel: Panel) -> dict[str, Any]:
    x, y, w, h = panel.grid
    defaults: dict[str, Any] = {"unit": panel.unit} if panel.unit else {}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "options": panel.options,
        "targets": [_target(panel)],
    }


def _query_variable(name: str, label: str, multi: bool) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": read_sql(f"var_{name}"),
        "definition": read_sql(f"var_{name}"),
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        variable["allValue"] = ALL_VALUE
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        variable["current"] = {"selected": True, "text": "production", "value": "production"}
    return variable


def build() -> dict[str, Any]:
    return {
        "uid": DASHBOARD_UID,
        "title": "featurecost — LLM cost by feature",
        "description": "Which feature, tenant and user action is eating the LLM bill. Built by dashboards/build.py.",
        "tags": ["featurecost", "llm", "cost"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5m",
        "time": {"from": "now-30d", "to": "now"},
        "templating": {
            "list": [
                _query_variable("environment", "Environment", multi=False),
                _query_variable("feature", "Feature", multi=True),
                _query_variable("tenant", "Tenant", multi=True),
            ]
        },
        "panels": [_panel(i, panel) for i, panel in enumerate(PANELS, start=1)],
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
