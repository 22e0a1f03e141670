"""The top savings opportunities in $/week: in the weekly report's payload, under the
weekly table of the CLI, and as their own report — from the batch test's calls, whose
savings are worked out by hand in tests/collector/reports/test_batch.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.reports import ReportOptions, Window, run_report
from featurecost.collector.storage.client import Storage
from tests.collector.reports.test_batch import CALLS, WINDOW

D = Decimal


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage) -> Storage:
    store = chdb_storage
    store.insert_calls(CALLS, dedup_token="a")
    return store


def test_weekly_payload_ranks_opportunities_by_dollars_per_week(storage: Storage) -> None:
    found = run_report("weekly", storage, WINDOW, ReportOptions())["opportunities"]
    # backfill saves 0.0075 and nightly-digest 0.0066 over 35 days; legacy-job has no price: not listed
    assert [(o["rank"], o["kind"], o["feature"], D(o["saving_per_week_usd"]), D(o["saving_usd"])) for o in found] == [
        (1, "batch", "backfill", D("0.0015"), D("0.0075")),
        (2, "batch", "nightly-digest", D("0.00132"), D("0.0066")),
    ]
    assert "Batch API" in found[0]["action"]
    assert "no parent span" in found[0]["action"]


def test_opportunities_report_takes_n(storage: Storage) -> None:
    rows = run_report("opportunities", storage, WINDOW, ReportOptions(n=1))["rows"]
    assert [r["feature"] for r in rows] == ["backfill"]


def test_weekly_cli_prints_the_top_savings(storage: Storage) -> None:
    args = ["report", "weekly", "--storage", storage.dsn, "--since", WINDOW.since.isoformat(),
            "--until", WINDOW.until.isoformat()]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    top = lines.index("Top savings:")
    assert lines[top + 1].startswith("  1. $0.0015/week · batch · backfill: send backfill's 2 calls")
    assert lines[top + 2].startswith("  2. $0.0013/week · batch · nightly-digest:")


def test_no_opportunity_says_so(storage: Storage) -> None:
    empty = Window(WINDOW.since.replace(year=2025), WINDOW.until.replace(year=2025))
    result = CliRunner().invoke(app, ["report", "weekly", "--storage", storage.dsn, "--since",
                                      empty.since.isoformat(), "--until", empty.until.isoformat()])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Top savings: none found in this window" in result.stdout
