"""Costs computed by hand from the providers' published prices (USD per million tokens)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer

M = Decimal(1_000_000)
WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def call(provider: str, model: str, **usage: int) -> CallRecord:
    return CallRecord(
        trace_id="t" * 32, span_id="s" * 16, start_time=WHEN, end_time=WHEN, environment="production",
        service_name="svc", feature="f", tenant="", user_id="", plan="", root_id="r", session_id="r",
        version="", operation="chat", provider=provider, request_model=model, response_model=model,
        input_tokens=usage.get("input", 0), output_tokens=usage.get("output", 0),
        cache_read_tokens=usage.get("cache_read", 0), cache_write_tokens=usage.get("cache_write", 0),
        reasoning_tokens=usage.get("reasoning", 0), usage_source="reported", status="ok",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output; cached tokens are inside input
        (
            call("openai", "gpt-4o-mini-2024-07-18", input=3141, cache_read=2816, output=277),
            (Decimal(3141 - 2816) * Decimal("0.15") + 2816 * Decimal("0.075") + 277 * Decimal("0.60")) / M,
        ),
        # gpt-4.1-mini: $0.40 input, $0.10 cached, $1.60 output
        (
            call("openai", "gpt-4.1-mini", input=542, output=301),
            (542 * Decimal("0.40") + 301 * Decimal("1.60")) / M,
        ),
        # claude-haiku-4-5: $1 input, $1.25 cache write (5m), $0.10 cache read, $5 output
        (
            call("anthropic", "claude-haiku-4-5-20251001", input=1397, cache_write=1373, output=200),
            (Decimal(1397 - 1373) * 1 + 1373 * Decimal("1.25") + 200 * 5) / M,
        ),
        (
            call("anthropic", "claude-haiku-4-5-20251001", input=1397, cache_read=1373, output=200),
            (Decimal(1397 - 1373) * 1 + 1373 * Decimal("0.10") + 200 * 5) / M,
        ),
        # claude-sonnet-4-6: $3 input, $15 output
        (call("anthropic", "claude-sonnet-4-6", input=390, output=400), (390 * 3 + 400 * 15) / M),
    ],
)
def test_published_prices(record: CallRecord, expected: Decimal) -> None:
    priced = Pricer().price(record)
    assert priced.cost_usd == expected
    assert priced.unpriced_reason == ""
    assert priced.price_data_version.startswith("genai-prices==")
    assert priced.price_entry


def test_unknown_model_is_null_with_a_reason_never_zero() -> None:
    priced = Pricer().price(call("openai", "acme-private-llm", input=100, output=10))
    assert priced.cost_usd is None
    assert "acme-private-llm" in priced.unpriced_reason


def test_missing_usage_is_unpriced() -> None:
    record = call("openai", "gpt-4o-mini")
    record.usage_source = "missing"
    priced = Pricer().price(record)
    assert priced.cost_usd is None
    assert priced.unpriced_reason == "usage not reported"


def test_failed_call_without_usage_is_not_billed_and_says_so() -> None:
    record = call("openai", "gpt-4o-mini")
    record.usage_source = "missing"
    record.status = "error"
    record.error_type = "BadRequestError"
    priced = Pricer().price(record)
    assert priced.cost_usd == 0
    assert priced.price_source == "not-billed"
    assert "BadRequestError" in priced.price_entry
