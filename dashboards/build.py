"""Build the Grafana dashboard JSON from the panel SQL in ``dashboards/sql/``.

The SQL lives in ``.sql`` files (one query, one name) so it can be read, diffed and
executed by the tests; Grafana needs it inside the dashboard JSON, so this script
writes ``dashboards/json/featurecost-overview.json``. The tests fail when the committed
JSON differs from what this script builds, so edit the SQL or the layout here and run::

    python -m dashboards.build

Panels read the rollup tables (the same ones the reports read). A panel that shows a
report verbatim includes the report's named query: ``@query(name)`` in a panel's SQL
becomes the collector's ``queries/<name>.sql`` with its ``{parameter:Type}`` placeholders
bound to Grafana macros (``NAMED_QUERY_PARAMETERS``), so the panel cannot drift from the
report. Cache savings in dollars are priced in Python by the ``cache`` report (genai-prices
per model and day), which SQL cannot do: that panel reads the report API through the
Infinity datasource.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurecost.collector.reports._query import QUERIES
from featurecost.collector.storage.client import load_sql

HERE = Path(__file__).resolve().parent
SQL_DIR = HERE / "sql"
OUTPUT = HERE / "json" / "featurecost-overview.json"

DATASOURCE_UID = "featurecost-clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
# The collector's report API, for what only the reports compute (cache savings in dollars).
API_DATASOURCE = {"type": "yesoreyeram-infinity-datasource", "uid": "featurecost-api"}
DASHBOARD_UID = "featurecost-overview"
# The plugin's query format: 0 = time series, 1 = table.
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1
# Multi-value variables: "All" becomes this literal so the SQL can test for it
# (`'__all' IN (${feature:sqlstring})`) instead of listing every value.
ALL_VALUE = "'__all'"

# Named queries a panel includes, and what their parameters become in Grafana. The weekly
# report widens its window to whole weeks (Monday 00:00 UTC) and reads the week before it
# for the week-over-week change: the same here, from the time picker's range.
NAMED_QUERY_PARAMETERS: dict[str, dict[str, str]] = {
    "weekly_features": {
        "environment": "${environment:sqlstring}",
        "since": "toDateTime64(toMonday($__fromTime, 'UTC'), 6, 'UTC')",
        "until": "toDateTime64(toMonday($__toTime, 'UTC') + 7, 6, 'UTC')",
    },
}
_INCLUDE = re.compile(r"@query\((\w+)\)")
_PARAMETER = re.compile(r"\{(\w+):[^{}]+\}")

# Cache savings: the `cache` report over the dashboard's range and environment. The report
# answers {"rows": [...]} with money as decimal strings.
CACHE_REPORT_URL = (
    "/api/v1/reports/cache?environment=${environment:percentencode}&since=${__from:date:iso}&until=${__to:date:iso}"
)
CACHE_REPORT_COLUMNS = [
    ("feature", "feature", "string"),
    ("saved_usd", "saved_usd", "number"),
    ("hit_ratio", "cache_hit_ratio", "number"),
    ("cache_read_tokens", "cache_read_tokens", "number"),
    ("cache_write_tokens", "cache_write_tokens", "number"),
    ("input_tokens", "input_tokens", "number"),
    ("calls", "calls", "number"),
    ("unpriced_models", "unpriced_models", "string"),
]


@dataclass(frozen=True)
class Panel:
    title: str
    sql: str  # file name in sql/, without .sql; "" for the report API panel
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
        "Spend (restatements included), calls, sessions and calls whose price is unknown (never counted as $0).",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        },
        overrides=[_usd("spend_usd"), _usd("restated_usd")],
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
        "The weekly report: one row per ISO week and feature with spend (restatements included), calls, "
        "sessions, cost per session p50/p95 over fully priced sessions and the week-over-week change of the "
        "median. Ignores the tenant variable.",
        overrides=[
            _usd("spend_usd"),
            _usd("restated_usd"),
            _usd("session_p50_usd"),
            _usd("session_p95_usd"),
            _percent("p50_change_wow"),
        ],
    ),
    Panel(
        "Cost over time by feature",
        "cost_over_time",
        "timeseries",
        (0, 13, 12, 9),
        "Spend per interval (restatements included), one series per feature; whole hours.",
        unit="currencyUSD",
        time_series=True,
        options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["sum"]}},
    ),
    Panel(
        "Session cost p50 / p95",
        "session_cost_quantiles",
        "timeseries",
        (12, 13, 12, 9),
        "Cost of a session (conversation) per week: median and 95th percentile over sessions with every "
        "call priced. Ignores the tenant variable.",
        unit="currencyUSD",
        time_series=True,
    ),
    Panel(
        "Cache savings",
        "",
        "table",
        (0, 22, 12, 8),
        "The cache report: dollars saved by prompt caching per feature (reads at the cache price instead "
        "of the input price, minus the cache-write premium, at each model's price of the day) and the hit "
        "ratio. Models without a price are listed, not guessed. Ignores the feature and tenant variables.",
        overrides=[_usd("saved_usd"), _percent("cache_hit_ratio")],
    ),
    Panel(
        "Top tenants",
        "top_tenants",
        "table",
        (12, 22, 12, 8),
        "The ten tenants with the highest spend (restatements included).",
        overrides=[_usd("spend_usd"), _usd("restated_usd")],
    ),
    Panel(
        "Unpriced calls by model",
        "unpriced_reasons",
        "table",
        (0, 30, 24, 6),
        "Why calls have no price: add a price override for these models.",
    ),
]


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def named_query(name: str) -> str:
    """The collector's named query ``name`` with its parameters bound to Grafana macros."""
    bindings = NAMED_QUERY_PARAMETERS[name]

    def bind(match: re.Match[str]) -> str:
        if match.group(1) not in bindings:
            raise KeyError(f"queries/{name}.sql: no Grafana binding for parameter {match.group(1)!r}")
        return bindings[match.group(1)]

    return _PARAMETER.sub(bind, _strip_comments(load_sql(QUERIES, f"{name}.sql")))


def read_sql(name: str) -> str:
    """The query text without comment lines (Grafana shows the description), named
    queries included."""
    sql = _strip_comments((SQL_DIR / f"{name}.sql").read_text())

    def include(match: re.Match[str]) -> str:
        indent = sql[: match.start()].rsplit("\n", 1)[-1]
        return named_query(match.group(1)).replace("\n", "\n" + indent)

    return _INCLUDE.sub(include, sql)


def _api_target() -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": API_DATASOURCE,
        "type": "json",
        "source": "url",
        "parser": "backend",
        "format": "table",
        "url": CACHE_REPORT_URL,
        "url_options": {"method": "GET", "data": ""},
        "root_selector": "rows",
        "columns": [{"selector": s, "text": t, "type": k} for s, t, k in CACHE_REPORT_COLUMNS],
    }


def _target(panel: Panel) -> dict[str, Any]:
    if not panel.sql:
        return _api_target()
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
        "datasource": DATASOURCE if panel.sql else API_DATASOURCE,
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
