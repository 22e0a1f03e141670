"""``featurecost prices update``: newer genai-prices data in a running collector, no restart.

Real processes: the app under ``opentelemetry-instrument`` → OTLP → ``featurecost collector``
(embedded chDB) → the CLI against its API, then ``prices reprice`` against its storage.
The data file is in genai-prices' own ``data.json`` schema (a provider array) and adds a
model the pinned package does not know, as a genai-prices release does every week;
expected costs are hand arithmetic on what the stand-in served at the file's prices.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from testsupport.harness import app_environment, run_instrumented, start_collector, start_stand_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

M = Decimal(1_000_000)
NEW_MODEL = "gpt-9-mini"
# genai-prices' data.json shape: the OpenAI provider with the model it had and a new one
DATA = [
    {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {
                "id": "gpt-4o-mini",
                "match": {"starts_with": "gpt-4o-mini"},
                "prices": {"input_mtok": 0.15, "cache_read_mtok": 0.075, "output_mtok": 0.6},
            },
            {"id": NEW_MODEL, "match": {"equals": NEW_MODEL}, "prices": {"input_mtok": 1.25, "output_mtok": 5}},
        ],
    }
]


def _get(url: str) -> Any:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return response.json()


def _row(api: str) -> dict[str, Any]:
    rows = _get(f"{api}/api/v1/reports/feature-costs")["rows"]
    (row,) = [r for r in rows if r["feature"] == "new-model"]
    return row


def test_prices_update_prices_new_models_without_a_restart(tmp_path: Path) -> None:
    logs, data_dir = tmp_path / "logs", tmp_path / "data"
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(DATA))
    stand_in = start_stand_in(logs)
    collector = start_collector(data_dir, logs)
    runner = CliRunner()
    try:
        env = {**app_environment(collector, stand_in), "FEATURECOST_TEST_MODEL": NEW_MODEL}
        run_instrumented("tests.apps.new_model_app", env, logs)
        collector.wait_for_calls(1)
        collector.wait_drained()
        before = _row(collector.api_url)
        assert before["unpriced_calls"] == 1
        pinned = _get(f"{collector.api_url}/api/v1/prices/data")["data_version"]
        assert pinned.startswith("genai-prices==")

        result = runner.invoke(app, ["prices", "update", str(data_file), "--api", collector.api_url])
        assert result.exit_code == 0, result.output
        assert NEW_MODEL in result.output
        assert "openai/gpt-9-mini" in result.output  # what prices it now
        version = _get(f"{collector.api_url}/api/v1/prices/data")["data_version"]
        assert version.startswith("genai-prices-data@")
        assert version in result.output

        # the next call is priced with the new data, no restart
        run_instrumented("tests.apps.new_model_app", env, logs)
        collector.wait_for_calls(2)
        collector.wait_drained()
        after = _row(collector.api_url)
        served = stand_in.served()[-1]["usage"]
        expected = (served["prompt_tokens"] * Decimal("1.25") + served["completion_tokens"] * Decimal(5)) / M
        assert (after["calls"], after["unpriced_calls"]) == (2, 1)
        assert Decimal(after["cost_usd"]) == expected

        # a restart keeps the updated data
        assert collector.process.stop() == 0
        collector = start_collector(data_dir, logs)
        assert _get(f"{collector.api_url}/api/v1/prices/data")["data_version"] == version
    finally:
        stand_in.process.stop()
        assert collector.process.stop() == 0, collector.process.log()

    # the stored unpriced call is restated by reprice with the same data (and the collector's prices file)
    storage = f"chdb://{(data_dir / 'clickhouse').resolve()}"
    reprice = ["prices", "reprice", "--storage", storage, "--since", "2000-01-01", "--price-data", str(data_file)]
    result = runner.invoke(app, [*reprice, "--prices-file", str(logs / "stand-in-prices.yaml")])
    assert result.exit_code == 0, result.output
    assert "restated 1 " in result.output


def test_prices_update_refuses_a_file_that_is_not_price_data(tmp_path: Path) -> None:
    bad = tmp_path / "data.json"
    bad.write_text(json.dumps({"prices": []}))
    result = CliRunner().invoke(app, ["prices", "update", str(bad), "--api", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "provider array" in result.output
