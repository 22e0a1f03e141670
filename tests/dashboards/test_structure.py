"""The Grafana dashboard JSON and provisioning: structure Grafana relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from dashboards import build

PROVISIONING = Path(build.HERE) / "provisioning"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(build.OUTPUT.read_text())
    return data


def _provisioned(name: str) -> dict[str, Any]:
    (datasource,) = yaml.safe_load((PROVISIONING / "datasources" / name).read_text())["datasources"]
    found: dict[str, Any] = datasource
    return found


def sql_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["datasource"]["uid"] == build.DATASOURCE_UID]


def test_every_panel_queries_a_provisioned_datasource() -> None:
    datasource = _provisioned("clickhouse.yaml")
    assert datasource["type"] == "grafana-clickhouse-datasource"
    api = _provisioned("featurecost-api.yaml")
    assert {"type": api["type"], "uid": api["uid"]} == build.API_DATASOURCE
    board = dashboard()
    assert board["panels"]
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        if panel["datasource"] == build.API_DATASOURCE:
            # the report API panel: a relative URL on the datasource's base URL, rows under "rows"
            for target in panel["targets"]:
                assert target["datasource"] == build.API_DATASOURCE
                assert (target["type"], target["source"], target["root_selector"]) == ("json", "url", "rows")
                assert target["url"].startswith("/api/v1/reports/")
                assert "${__from:date:iso}" in target["url"]
                assert "${__to:date:iso}" in target["url"]
            continue
        assert panel["datasource"] == {"type": datasource["type"], "uid": datasource["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
            assert target["editorType"] == "sql"
            assert target["rawSql"].strip().upper().startswith(("SELECT", "WITH"))
            assert target["format"] in (build.FORMAT_TABLE, build.FORMAT_TIME_SERIES)
            if panel["type"] == "timeseries":
                assert target["format"] == build.FORMAT_TIME_SERIES
                assert re.search(r"AS time\b", target["rawSql"])
    assert len(sql_panels()) == len(board["panels"]) - 1
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == datasource["uid"]


def test_variables_are_defined_and_used() -> None:
    board = dashboard()
    defined = {v["name"] for v in board["templating"]["list"]}
    assert defined == {"environment", "feature", "tenant"}
    panels = [t["rawSql"] for p in sql_panels() for t in p["targets"]]
    sql = panels + [v["query"] for v in board["templating"]["list"]]
    used = {name for text in sql for name in re.findall(r"\$\{(\w+)", text)}
    assert used == defined
    for text in panels:
        assert "$__timeFilter(" in text or "$__fromTime" in text  # every panel follows the time picker
        assert "${environment:sqlstring}" in text
    for variable in board["templating"]["list"]:
        if variable["multi"]:
            assert variable["includeAll"]
            assert variable["allValue"] == build.ALL_VALUE


def test_layout_ids_and_provisioning() -> None:
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
    titles = {p["title"] for p in board["panels"]}
    assert {
        "Weekly cost by feature",
        "Cost over time by feature",
        "Session cost p50 / p95",
        "Cache savings",
        "Top tenants",
        "Unpriced and unattributed share",
    } <= titles
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "featurecost.yaml").read_text())["providers"]
    assert provider["type"] == "file"
    assert board["uid"] == build.DASHBOARD_UID
