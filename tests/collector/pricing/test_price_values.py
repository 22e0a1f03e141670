"""Prices are values: a quote leaves the call alone, and the estimates' per-token prices are
the rates the calls are charged at (the same rate card, the same arithmetic)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Price, Pricer

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
M = Decimal(1_000_000)
PRICES = """
prices:
  - model: gpt-4o-mini
    discount: "0.10"
  - model: gpt-4o
    tenant: acme
    input_mtok: "2.00"
    output_mtok: "8.00"
    cache_read_mtok: "1.00"
"""


def call(provider: str, model: str, tenant: str = "", **usage: int) -> CallRecord:
    return CallRecord(
        trace_id="t" * 32, span_id="s" * 16, start_time=NOON, end_time=NOON, environment="production",
        service_name="svc", feature="f", tenant=tenant, user_id="", plan="", root_id="r", session_id="r",
        version="", operation="chat", provider=provider, request_model=model, response_model="",
        input_tokens=usage.get("input", 0), output_tokens=usage.get("output", 0),
        cache_read_tokens=usage.get("cache_read", 0), cache_write_tokens=usage.get("cache_write", 0),
        reasoning_tokens=0, usage_source="reported", status="ok",
    )  # fmt: skip


def test_a_quote_is_a_value_and_leaves_the_call_unpriced() -> None:
    record = call("openai", "gpt-4o-mini", input=1_000, output=100)
    before = replace(record)
    quoted = Pricer().quote(record)
    assert isinstance(quoted, Price)
    assert quoted.cost_usd == (1_000 * Decimal("0.15") + 100 * Decimal("0.60")) / M
    assert record == before  # nothing written on the call
    assert quoted.apply(record) is record
    assert (record.cost_usd, record.price_entry) == (quoted.cost_usd, quoted.price_entry)


def test_price_applies_and_counts_what_quote_says() -> None:
    pricer = Pricer()
    record = call("openai", "gpt-4o-mini", input=1_000, output=100)
    quoted = pricer.quote(record)
    assert pricer.stats.priced == 0
    priced = pricer.price(record)
    assert (priced.cost_usd, priced.input_cost_usd, priced.output_cost_usd, priced.price_source) == (
        quoted.cost_usd, quoted.input_cost_usd, quoted.output_cost_usd, quoted.price_source,
    )  # fmt: skip
    assert pricer.stats.priced == 1


def test_token_prices_are_the_rates_calls_are_charged_at_discount_and_contract_included() -> None:
    pricer = Pricer(Overrides.parse(PRICES))
    mini = pricer.token_prices("openai", "gpt-4o-mini", DAY)
    assert mini is not None
    # list $0.15 / $0.075 cached / $0.60 per MTok, 10 % off
    keep = Decimal("0.9")
    assert (mini.input, mini.cache_read, mini.output) == (
        Decimal("0.15") * keep / M, Decimal("0.075") * keep / M, Decimal("0.60") * keep / M,
    )  # fmt: skip
    usage = {"input": 9_000, "cache_read": 4_000, "output": 700}
    charged = pricer.quote(call("openai", "gpt-4o-mini", **usage)).cost_usd
    assert mini.cost(9_000, 4_000, 0, 700) == charged
    assert 5_000 * mini.input + 4_000 * mini.cache_read + 700 * mini.output == charged
    acme = pricer.token_prices("openai", "gpt-4o", DAY, tenant="acme")
    assert acme is not None
    assert (acme.input, acme.cache_read, acme.cache_write, acme.output) == (
        Decimal(2) / M, Decimal(1) / M, Decimal(2) / M, Decimal(8) / M,  # no cache-write price: as input
    )  # fmt: skip
    assert pricer.token_prices("openai", "gpt-acme-9000", DAY) is None  # unknown: no price, never $0
