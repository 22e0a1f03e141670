"""`featurecost budgets ...` and the collector's --budgets-file option."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from testsupport.budgets import insert, make_call, open_storage

BUDGETS = """
timezone: Asia/Kolkata
budgets:
  - name: bot-daily
    scope: {feature: support-bot}
    period: day
    limit_usd: "10"
  - name: tenant-weekly
    scope: {tenant: "*"}
    period: week
    limit_usd: "100"
    enforce: false
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    base = tmp_path_factory.mktemp("budgets-cli")
    path = base / "clickhouse"
    for storage in open_storage(path):
        # Kolkata is UTC+5:30: 18:29 UTC is 23:59 on the 23rd, 18:31 UTC is the 24th.
        insert(
            storage,
            make_call(datetime(2026, 11, 23, 18, 29, tzinfo=UTC), "9", tenant="acme"),
            make_call(datetime(2026, 11, 23, 18, 31, tzinfo=UTC), "2", tenant="acme"),
            make_call(datetime(2026, 11, 23, 18, 31, tzinfo=UTC), None, tenant="globex"),
        )
    budgets = base / "budgets.yaml"
    budgets.write_text(BUDGETS)
    return f"chdb://{path}", budgets


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_from_storage_at_a_chosen_time(seeded: tuple[str, Path]) -> None:
    dsn, budgets = seeded
    common = ("budgets", "status", "--storage", dsn, "--budgets-file", str(budgets), "--format", "json")
    before = json.loads(run(*common, "--at", "2026-11-23T18:29:30+00:00"))
    day = {b["budget"]: b for b in before["budgets"]}["bot-daily"]
    assert (day["period"]["label"], day["spend_usd"], day["level"]) == ("2026-11-23", "9.000000000000000000", "soft")
    after = json.loads(run(*common, "--at", "2026-11-23T18:30:00+00:00"))
    statuses = {(b["budget"], b["scope"].get("tenant")): b for b in after["budgets"]}
    assert statuses[("bot-daily", None)]["period"]["label"] == "2026-11-24"
    assert statuses[("bot-daily", None)]["spend_usd"] == "2.000000000000000000"
    assert statuses[("tenant-weekly", "acme")]["spend_usd"] == "11.000000000000000000"
    assert statuses[("tenant-weekly", "globex")]["unpriced_calls"] == 1


def test_status_table_warns_about_unpriced_calls(seeded: tuple[str, Path]) -> None:
    dsn, budgets = seeded
    out = run("budgets", "status", "--storage", dsn, "--budgets-file", str(budgets), "--at", "2026-11-24T00:00:00Z")
    assert "bot-daily" in out
    assert "tenant=globex" in out
    assert "tenant-weekly: 1 unpriced calls are not in the spend" in out


def test_check_lists_periods_and_rejects_bad_files(seeded: tuple[str, Path], tmp_path: Path) -> None:
    _, budgets = seeded
    out = run("budgets", "check", str(budgets))
    assert "2 budgets" in out
    assert "Asia/Kolkata" in out
    assert "alert only" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets: [{name: x, period: day, limit_usd: 1, soft_threshold: 120%}]")
    result = CliRunner().invoke(app, ["budgets", "check", str(bad)])
    assert result.exit_code == 2
    assert "must not exceed" in result.output


def test_collector_refuses_to_start_with_a_bad_budgets_file(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text("budgets: [{name: x, period: hourly, limit_usd: 1}]")
    result = CliRunner().invoke(app, ["collector", "--data-dir", str(tmp_path / "data"), "--budgets-file", str(bad)])
    assert result.exit_code == 2
    assert "budgets.0.period" in result.output


def test_status_needs_a_budgets_file_with_storage(seeded: tuple[str, Path]) -> None:
    dsn, _ = seeded
    result = CliRunner().invoke(app, ["budgets", "status", "--storage", dsn], env={"FEATURECOST_BUDGETS_FILE": ""})
    assert result.exit_code == 2
    assert "--budgets-file" in result.output
