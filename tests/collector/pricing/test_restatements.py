"""Re-pricing after a price fix: append-only restatements, idempotent, through the real CLI and chDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.storage.client import Storage

M = Decimal(1_000_000)
WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
runner = CliRunner()

PRICES = """
prices:
  - model: acme-llama-70b
    provider: vllm
    input_mtok: "0.40"
    output_mtok: "0.40"
  - model: gpt-4o
    tenant: acme
    input_mtok: "2.00"
    output_mtok: "8.00"
"""


def _call(span: str, provider: str, model: str, tenant: str, inp: int, out: int) -> CallRecord:
    return CallRecord(
        trace_id="a" * 32, span_id=span, start_time=WHEN, end_time=WHEN, environment="production",
        service_name="svc", feature="support-bot", tenant=tenant, user_id="u", plan="", root_id="r",
        session_id="s", version="", operation="chat", provider=provider, request_model=model,
        response_model=model, input_tokens=inp, output_tokens=out, cache_read_tokens=0, cache_write_tokens=0,
        reasoning_tokens=0, usage_source="reported", status="ok",
    )  # fmt: skip


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    dsn = f"chdb://{tmp_path / 'db'}"
    store = Storage(dsn)
    store.migrate()
    pricer = Pricer()  # no prices file yet: the self-hosted model is unknown, acme pays list price
    store.insert_calls(
        [
            pricer.price(_call("1" * 16, "vllm", "acme-llama-70b", "acme", 10_000, 2_000)),
            pricer.price(_call("2" * 16, "openai", "gpt-4o", "acme", 1_000, 1_000)),
            pricer.price(_call("3" * 16, "openai", "gpt-4o-mini", "initech", 1_000, 1_000)),
        ],
        "batch-1",
    )
    store.close()
    return dsn


def _table(dsn: str, sql: str) -> list[tuple[object, ...]]:
    store = Storage(dsn)
    try:
        return [tuple(row) for row in store.client.query(sql).result_rows]
    finally:
        store.close()


def test_reprice_appends_deltas_once_and_never_mutates_calls(dsn: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    calls_before = _table(dsn, "SELECT span_id, cost_usd, price_entry FROM calls FINAL ORDER BY span_id")
    # list prices at insert: the self-hosted call unpriced, GPT-4o at $2.50/$10, GPT-4o mini at $0.15/$0.60
    assert [row[1] for row in calls_before] == [
        None,
        (1_000 * Decimal("2.50") + 1_000 * Decimal(10)) / M,
        (1_000 * Decimal("0.15") + 1_000 * Decimal("0.60")) / M,
    ]

    unpriced = runner.invoke(app, ["prices", "unpriced", "--storage", dsn, "--since", "2026-11-01"])
    assert unpriced.exit_code == 0, unpriced.output
    assert "acme-llama-70b" in unpriced.output
    assert "provider not in genai-prices" in unpriced.output

    args = ["prices", "reprice", "--storage", dsn, "--since", "2026-11-01", "--until", "2026-12-01"]
    first = runner.invoke(app, [*args, "--prices-file", str(prices), "--reason", "contract signed"])
    assert first.exit_code == 0, first.output
    assert "restated 2" in first.output

    deltas = _table(
        dsn,
        "SELECT span_id, previous_cost_usd, cost_usd, cost_delta_usd, price_source, reason "
        "FROM cost_restatements FINAL ORDER BY span_id",
    )
    self_hosted = (10_000 * Decimal("0.40") + 2_000 * Decimal("0.40")) / M
    list_price = (1_000 * Decimal("2.50") + 1_000 * Decimal(10)) / M
    contract = (1_000 * Decimal("2.00") + 1_000 * Decimal(8)) / M
    assert deltas == [
        ("1" * 16, None, self_hosted, self_hosted, "override", "contract signed"),
        ("2" * 16, list_price, contract, contract - list_price, "override", "contract signed"),
    ]
    # history is untouched
    assert _table(dsn, "SELECT span_id, cost_usd, price_entry FROM calls FINAL ORDER BY span_id") == calls_before

    again = runner.invoke(app, [*args, "--prices-file", str(prices)])
    assert again.exit_code == 0, again.output
    assert "restated 0" in again.output
    assert _table(dsn, "SELECT count() FROM cost_restatements") == [(2,)]

    # what reports compute: stored cost plus the deltas
    (total,) = _table(
        dsn,
        "SELECT (SELECT sum(cost_usd) FROM calls FINAL) + (SELECT sum(cost_delta_usd) FROM cost_restatements FINAL)",
    )
    assert total[0] == self_hosted + contract + (1_000 * Decimal("0.15") + 1_000 * Decimal("0.60")) / M

    unpriced_after = runner.invoke(app, ["prices", "unpriced", "--storage", dsn, "--since", "2026-11-01"])
    assert "every model priced" in unpriced_after.output

    explained = runner.invoke(app, ["prices", "explain", "2" * 16, "--storage", dsn, "--prices-file", str(prices)])
    assert explained.exit_code == 0, explained.output
    assert "genai-prices" in explained.output  # how it was priced when stored
    assert "override:acme:*/gpt-4o" in explained.output  # how it is priced now, and the restatement
    assert "contract signed" in explained.output


def test_dropping_a_price_never_restates_a_call_to_zero(dsn: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    args = ["prices", "reprice", "--storage", dsn, "--since", "2026-11-01", "--until", "2026-12-01"]
    assert runner.invoke(app, [*args, "--prices-file", str(prices)]).exit_code == 0
    # the prices file is gone: the self-hosted model has no price any more
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 kept (new pricing has no price)" in result.output
    # acme's GPT-4o goes back to list price: one more delta, the self-hosted call keeps its restated cost
    assert "restated 1" in result.output
    rows = _table(dsn, "SELECT span_id, sum(cost_delta_usd) FROM cost_restatements FINAL GROUP BY span_id ORDER BY 1")
    assert rows == [("1" * 16, (10_000 * Decimal("0.40") + 2_000 * Decimal("0.40")) / M), ("2" * 16, Decimal(0))]


def test_a_bad_prices_file_is_refused_with_the_entry_at_fault(dsn: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("prices:\n  - model: gpt-4o\n    input_mtok: '2.00'\n    discount: '0.1'\n")
    result = runner.invoke(
        app, ["prices", "reprice", "--storage", dsn, "--since", "2026-11-01", "--prices-file", str(prices)]
    )
    assert result.exit_code == 2
    assert "prices.0" in result.output
    assert "not both" in result.output
    started = runner.invoke(app, ["collector", "--data-dir", str(tmp_path / "data"), "--prices-file", str(prices)])
    assert started.exit_code == 2
    assert "not both" in started.output


def test_explain_an_unknown_span(dsn: str) -> None:
    result = runner.invoke(app, ["prices", "explain", "f" * 16, "--storage", dsn])
    assert result.exit_code == 2
    assert "no stored call" in result.output


def test_unplaced_endpoints_are_listed_with_the_endpoint_and_repriced_after_a_fix(tmp_path: Path) -> None:
    """A self-hosted server and an unknown host: unpriced, named by `prices unpriced`; listing
    the host in the prices file and repricing restates the stored call (its endpoint was kept)."""
    dsn = f"chdb://{tmp_path / 'db'}"
    store = Storage(dsn)
    store.migrate()
    pricer = Pricer()
    local = _call("4" * 16, "openai", "llama-3.1-8b", "acme", 1_000, 500)
    local.endpoint = "10.0.3.7:8000"
    proxy = _call("5" * 16, "openai", "gpt-4o-mini", "acme", 1_000, 1_000)
    proxy.endpoint = "llm-gateway.acme.example"
    store.insert_calls([pricer.price(local), pricer.price(proxy)], "batch-endpoints")
    store.close()

    listed = runner.invoke(app, ["prices", "unpriced", "--storage", dsn, "--since", "2026-11-01", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["endpoint"]: row for row in json.loads(listed.output)}
    assert rows["10.0.3.7:8000"]["provider"] == "self-hosted"
    assert rows["10.0.3.7:8000"]["reason"].startswith("self-hosted endpoint: add a prices-file entry")
    assert "unknown endpoint llm-gateway.acme.example" in rows["llm-gateway.acme.example"]["reason"]
    assert "gpt-4o-mini" in rows["llm-gateway.acme.example"]["reason"]

    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "endpoints:\n  - address: llm-gateway.acme.example\n    price_as: openai\n"
        'prices:\n  - model: llama-3.1-8b\n    provider: self-hosted\n    input_mtok: "0.05"\n    output_mtok: "0.05"\n'
    )
    result = runner.invoke(
        app, ["prices", "reprice", "--storage", dsn, "--since", "2026-11-01", "--prices-file", str(prices)]
    )
    assert result.exit_code == 0, result.output
    assert "restated 2 " in result.output
    restated = _table(dsn, "SELECT span_id, cost_usd FROM cost_restatements FINAL ORDER BY span_id")
    assert restated == [
        ("4" * 16, (1_000 + 500) * Decimal("0.05") / M),
        ("5" * 16, (1_000 * Decimal("0.15") + 1_000 * Decimal("0.60")) / M),
    ]
