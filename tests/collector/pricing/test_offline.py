"""Prices are pinned data: pricing never reaches the network and never uses fetched prices.

genai-prices can replace its bundled snapshot with one fetched in the background
(``UpdatePrices``). Money must not change under the user's feet, so the pricer reads the
bundled snapshot only, and nothing in the collector starts the updater.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from genai_prices import data_snapshot, update_prices

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer

WHEN = datetime(2026, 11, 20, tzinfo=UTC)


def _call(provider: str, model: str) -> CallRecord:
    return CallRecord(
        trace_id="t", span_id="s", start_time=WHEN, end_time=WHEN, environment="e", service_name="s",
        feature="f", tenant="", user_id="", plan="", root_id="r", session_id="r", version="",
        operation="chat", provider=provider, request_model=model, response_model=model,
        input_tokens=1_000, output_tokens=1_000, cache_read_tokens=0, cache_write_tokens=0,
        reasoning_tokens=0, usage_source="reported", status="ok",
    )  # fmt: skip


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_pricing_works_without_network_and_never_starts_the_updater(no_network: list[Any]) -> None:
    pricer = Pricer()
    for provider, model in [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("gcp.gemini", "gemini-2.5-flash"),
    ]:
        assert pricer.price(_call(provider, model)).cost_usd is not None
    assert pricer.price(_call("openai", "no-such-model")).cost_usd is None
    assert no_network == []
    assert update_prices._shared_updater.thread is None
    assert update_prices._shared_updater.ref_count == 0
    assert data_snapshot._custom_snapshot is None


def test_a_fetched_snapshot_is_ignored() -> None:
    # Another library in the process (say, an observability SDK) started genai-prices' updater and it
    # installed fetched data; our prices stay the pinned ones.
    fetched = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    data_snapshot.set_custom_snapshot(fetched)
    try:
        priced = Pricer().price(_call("openai", "gpt-4o-mini"))
    finally:
        data_snapshot.set_custom_snapshot(None)
    # GPT-4o mini published price: $0.15 input, $0.60 output per million tokens
    assert priced.cost_usd == (1_000 * Decimal("0.15") + 1_000 * Decimal("0.60")) / 1_000_000
    assert priced.price_data_version == "genai-prices==0.2.3"


def test_collector_code_never_references_the_updater() -> None:
    # every module, sub-packages included (the stages are sub-packages)
    package = Path(str(resources.files("featurecost.collector")))
    offenders = [
        str(entry.relative_to(package))
        for entry in package.rglob("*.py")
        if any(name in entry.read_text() for name in ("UpdatePrices", "wait_prices_updated", "set_custom_snapshot"))
    ]
    assert offenders == []
