"""The prices file in a running collector: an app's self-hosted model gets its contract price.

Real processes as in test_end_to_end.py: the app under ``opentelemetry-instrument`` → OTLP →
``featurecost collector --prices-file`` → report and status API.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from testsupport.harness import STAND_IN_ENDPOINTS, app_environment, run_instrumented, start_collector, start_stand_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

M = Decimal(1_000_000)
PRICES = """
prices:
  - model: acme-private-llm
    tenant: acme
    input_mtok: "0.50"
    output_mtok: "1.50"
    note: acme hosts this model; we bill them our GPU cost
"""


def test_collector_prices_with_the_prices_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES + STAND_IN_ENDPOINTS)
    logs = tmp_path / "logs"
    stand_in = start_stand_in(logs)
    collector = start_collector(tmp_path / "data", logs, ["--prices-file", str(prices)])
    try:
        run_instrumented("tests.apps.unpriced_app", app_environment(collector, stand_in), logs)
        collector.wait_drained()
        served = stand_in.served()
        report = httpx.get(f"{collector.api_url}/api/v1/reports/feature-costs", timeout=30).json()["rows"]
        status = httpx.get(f"{collector.api_url}/api/v1/status", timeout=30).json()
    finally:
        stand_in.process.stop()
        assert collector.process.stop() == 0, collector.process.log()

    (row,) = [r for r in report if r["feature"] == "private-model"]
    private, mini = (s["usage"] for s in served[-2:])
    # the contract price for the private model; GPT-4o mini at its list price ($0.15 / $0.60)
    expected = (
        private["prompt_tokens"] * Decimal("0.50")
        + private["completion_tokens"] * Decimal("1.50")
        + mini["prompt_tokens"] * Decimal("0.15")
        + mini["completion_tokens"] * Decimal("0.60")
    ) / M
    assert row["unpriced_calls"] == 0
    assert Decimal(row["cost_usd"]) == expected
    assert status["pricing"]["by_source"] == {"override": 1, "genai-prices": 1}
    assert status["pricing"]["unpriced"] == 0
