"""A table of calls with costs computed by hand from the providers' published prices.

Every expected cost below is arithmetic on USD-per-million-token prices copied from the
providers' pricing pages (quoted in the comments) — never from featurecost's pricing code
or genai-prices — so a wrong lookup, a wrong date or a wrong cache rule fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer

M = Decimal(1_000_000)
NOV_2026 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def call(
    provider: str,
    model: str,
    *,
    when: datetime = NOV_2026,
    tenant: str = "",
    tier: str = "",
    request_model: str | None = None,
    **usage: int,
) -> CallRecord:
    return CallRecord(
        trace_id="t" * 32, span_id="s" * 16, start_time=when, end_time=when, environment="production",
        service_name="svc", feature="f", tenant=tenant, user_id="", plan="", root_id="r", session_id="r",
        version="", operation="chat", provider=provider, request_model=request_model or model,
        response_model=model, input_tokens=usage.get("input", 0), output_tokens=usage.get("output", 0),
        cache_read_tokens=usage.get("cache_read", 0), cache_write_tokens=usage.get("cache_write", 0),
        reasoning_tokens=usage.get("reasoning", 0), usage_source="reported", status="ok",
        cache_write_1h_tokens=usage.get("cache_write_1h", 0), service_tier=tier,
    )  # fmt: skip


def d(text: str) -> Decimal:
    return Decimal(text)


PUBLISHED = [
    pytest.param(
        # Anthropic, Claude Sonnet 4.5: $3 input, $3.75 5-minute cache write, $6 1-hour cache write,
        # $0.30 cache read, $15 output. Input here is semconv-inclusive: 10,000 = 4,000 uncached +
        # 2,000 read + 4,000 written (1,000 of them with the 1-hour TTL).
        call(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            input=10_000,
            cache_read=2_000,
            cache_write=4_000,
            cache_write_1h=1_000,
            output=800,
        ),
        (4_000 * d("3") + 2_000 * d("0.30") + 3_000 * d("3.75") + 1_000 * d("6") + 800 * d("15")) / M,
        id="anthropic-cache-5m-and-1h",
    ),
    pytest.param(
        # Claude Sonnet 4.5 over 200K input tokens: long-context rates $6 input, $22.50 output for the whole call.
        call("anthropic", "claude-sonnet-4-5", input=250_000, output=2_000),
        (250_000 * d("6") + 2_000 * d("22.50")) / M,
        id="anthropic-long-context-tier",
    ),
    pytest.param(
        # Gemini 2.5 Pro, prompts <= 200K: $1.25 input, $10 output (thinking billed as output).
        call("gcp.gemini", "gemini-2.5-pro", input=120_000, output=3_000, reasoning=2_000),
        (120_000 * d("1.25") + 3_000 * d("10")) / M,
        id="gemini-pro-base-tier-with-thinking",
    ),
    pytest.param(
        # Gemini 2.5 Pro, prompts > 200K: $2.50 input, $15 output.
        call("gcp.gemini", "models/gemini-2.5-pro", input=300_000, output=1_000),
        (300_000 * d("2.50") + 1_000 * d("15")) / M,
        id="gemini-pro-long-tier-models-prefix",
    ),
    pytest.param(
        # OpenAI o3 before the 10 June 2025 price cut: $10 input, $40 output (reasoning inside output).
        call(
            "openai", "o3-2025-04-16", when=datetime(2025, 5, 1, tzinfo=UTC), input=1_000, output=5_000, reasoning=4_000
        ),
        (1_000 * d("10") + 5_000 * d("40")) / M,
        id="o3-before-price-cut",
    ),
    pytest.param(
        # ... and after it: $2 input, $0.50 cached input, $8 output.
        call(
            "openai",
            "o3-2025-04-16",
            when=datetime(2025, 7, 1, tzinfo=UTC),
            input=1_000,
            cache_read=512,
            output=5_000,
            reasoning=4_000,
        ),
        (488 * d("2") + 512 * d("0.50") + 5_000 * d("8")) / M,
        id="o3-after-price-cut",
    ),
    pytest.param(
        # OpenAI Batch API: 50% off — GPT-4o $1.25 input, $5 output.
        call("openai", "gpt-4o-2024-08-06", tier="batch", input=20_000, output=1_000),
        (20_000 * d("1.25") + 1_000 * d("5")) / M,
        id="openai-batch",
    ),
    pytest.param(
        # OpenAI Flex processing, GPT-5: $0.625 input, $0.0625 cached input, $5 output.
        call("openai", "gpt-5", tier="flex", input=10_000, cache_read=4_096, output=2_000),
        (5_904 * d("0.625") + 4_096 * d("0.0625") + 2_000 * d("5")) / M,
        id="openai-flex",
    ),
    pytest.param(
        # OpenAI Priority processing, GPT-5: $2.50 input, $20 output.
        call("openai", "gpt-5", tier="priority", input=1_000, output=1_000),
        (1_000 * d("2.50") + 1_000 * d("20")) / M,
        id="openai-priority",
    ),
    pytest.param(
        # A tier the response names "default" is the standard price: GPT-5 $1.25 input, $10 output.
        call("openai", "gpt-5", input=1_000, output=1_000),
        (1_000 * d("1.25") + 1_000 * d("10")) / M,
        id="openai-standard",
    ),
    pytest.param(
        # Bedrock cross-region inference profile, Claude 3.5 Sonnet v2: $3 input, $15 output.
        call("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", input=2_000, output=300),
        (2_000 * d("3") + 300 * d("15")) / M,
        id="bedrock-regional-prefix",
    ),
    pytest.param(
        # Azure OpenAI reports the real snapshot as the response model: GPT-4o $2.50 input, $10 output.
        call("azure.ai.openai", "gpt-4o-2024-08-06", request_model="prod-chat", input=1_000, output=100),
        (1_000 * d("2.50") + 100 * d("10")) / M,
        id="azure-response-model",
    ),
]


@pytest.mark.parametrize(("record", "expected"), PUBLISHED)
def test_published_prices(record: CallRecord, expected: Decimal) -> None:
    priced = Pricer().price(record)
    assert priced.unpriced_reason == ""
    assert priced.cost_usd == expected
    assert priced.input_cost_usd is not None
    assert priced.output_cost_usd is not None
    assert priced.input_cost_usd + priced.output_cost_usd == priced.cost_usd
    assert priced.price_source == "genai-prices"
    assert priced.price_data_version == "genai-prices==0.2.3"


def test_tier_the_model_has_no_price_for_says_so_in_the_stamp() -> None:
    # Claude has no "flex" tier: priced at the standard $3/$15, and the stamp says so.
    priced = Pricer().price(call("anthropic", "claude-sonnet-4-5", tier="flex", input=1_000, output=1_000))
    assert priced.cost_usd == (1_000 * d("3") + 1_000 * d("15")) / M
    assert "standard: no flex price" in priced.price_entry


PRICES_FILE = """
deployments:
  - deployment: prod-chat
    provider: azure.ai.openai
    model: gpt-4o
prices:
  # acme's contract: GPT-4o at $2.00 / $8.00 during 2026
  - model: gpt-4o
    tenant: acme
    effective_from: 2026-01-01
    effective_to: 2027-01-01
    input_mtok: "2.00"
    output_mtok: "8.00"
    cache_read_mtok: "1.00"
  # everyone: 10% off GPT-4o-mini list price
  - model: gpt-4o-mini
    discount: "0.10"
  # globex additionally negotiated 25% off GPT-4o-mini
  - model: gpt-4o-mini
    tenant: globex
    discount: "0.25"
  # our own vLLM deployment, costed at the GPU bill
  - model: acme-llama-70b
    provider: vllm
    input_mtok: "0.40"
    output_mtok: "0.40"
  # batch contract price for acme's GPT-4o
  - model: gpt-4o
    tenant: acme
    service_tier: batch
    input_mtok: "0.90"
    output_mtok: "3.60"
"""


@pytest.fixture
def pricer() -> Pricer:
    return Pricer(Overrides.parse(PRICES_FILE))


OVERRIDDEN = [
    pytest.param(
        # tenant contract beats genai-prices; the cache read has its own contract rate
        call("openai", "gpt-4o-2024-08-06", tenant="acme", input=10_000, cache_read=2_000, output=1_000),
        (8_000 * d("2.00") + 2_000 * d("1.00") + 1_000 * d("8.00")) / M,
        "override",
        id="tenant-contract",
    ),
    pytest.param(
        # outside the contract's dates the public price applies again: GPT-4o $2.50 / $10
        call("openai", "gpt-4o", tenant="acme", when=datetime(2027, 2, 1, tzinfo=UTC), input=1_000, output=1_000),
        (1_000 * d("2.50") + 1_000 * d("10")) / M,
        "genai-prices",
        id="contract-expired",
    ),
    pytest.param(
        # another tenant pays list price
        call("openai", "gpt-4o", tenant="initech", input=1_000, output=1_000),
        (1_000 * d("2.50") + 1_000 * d("10")) / M,
        "genai-prices",
        id="other-tenant-list-price",
    ),
    pytest.param(
        # tier-specific contract entry beats the general one
        call("openai", "gpt-4o", tenant="acme", tier="batch", input=1_000, output=1_000),
        (1_000 * d("0.90") + 1_000 * d("3.60")) / M,
        "override",
        id="tenant-batch-contract",
    ),
    pytest.param(
        # global discount on list price: GPT-4o-mini $0.15 / $0.60, 10% off
        call("openai", "gpt-4o-mini", input=10_000, output=1_000),
        (10_000 * d("0.15") + 1_000 * d("0.60")) / M * d("0.90"),
        "genai-prices+discount",
        id="global-discount",
    ),
    pytest.param(
        # the tenant's own discount is more specific than the global one
        call("openai", "gpt-4o-mini", tenant="globex", input=10_000, output=1_000),
        (10_000 * d("0.15") + 1_000 * d("0.60")) / M * d("0.75"),
        "genai-prices+discount",
        id="tenant-discount",
    ),
    pytest.param(
        call("vllm", "acme-llama-70b", input=5_000, output=5_000),
        (5_000 * d("0.40") + 5_000 * d("0.40")) / M,
        "override",
        id="self-hosted",
    ),
    pytest.param(
        # an Azure deployment name mapped to its model (no response model reported)
        call("azure.ai.openai", "", request_model="prod-chat", input=1_000, output=100),
        (1_000 * d("2.50") + 100 * d("10")) / M,
        "genai-prices",
        id="azure-deployment-mapping",
    ),
]


@pytest.mark.parametrize(("record", "expected", "source"), OVERRIDDEN)
def test_overrides(pricer: Pricer, record: CallRecord, expected: Decimal, source: str) -> None:
    priced = pricer.price(record)
    assert priced.unpriced_reason == ""
    assert priced.cost_usd == expected
    assert priced.price_source == source
    if source != "genai-prices":
        assert priced.price_data_version.split(";")[-1].startswith("prices-file@")


def test_self_hosted_without_an_entry_is_unpriced_never_zero() -> None:
    priced = Pricer().price(call("vllm", "acme-llama-70b", input=5_000, output=5_000))
    assert priced.cost_usd is None
    assert "vllm/acme-llama-70b" in priced.unpriced_reason
    assert "provider not in genai-prices==0.2.3" in priced.unpriced_reason


def test_unknown_model_of_a_known_provider_is_unpriced_with_a_reason() -> None:
    priced = Pricer().price(call("openai", "gpt-acme-9000", input=5, output=5))
    assert priced.cost_usd is None
    assert "model not in genai-prices==0.2.3" in priced.unpriced_reason


def test_request_model_prices_the_call_when_the_response_model_is_unknown() -> None:
    # a proxy rewrote the response model to something no price list knows
    record = call("openai", "proxy-internal-name", request_model="gpt-4o-mini", input=1_000, output=1_000)
    priced = Pricer().price(record)
    assert priced.cost_usd == (1_000 * d("0.15") + 1_000 * d("0.60")) / M


def test_client_cost_is_kept_apart_and_reconciled() -> None:
    record = call("openai", "gpt-4o-mini", input=1_000, output=1_000)
    record.client_cost_usd = d("0.001")
    priced = Pricer().price(record)
    ours = (1_000 * d("0.15") + 1_000 * d("0.60")) / M
    assert priced.cost_usd == ours
    assert priced.client_cost_usd == d("0.001")
    assert priced.cost_delta_vs_client_usd == ours - d("0.001")


def test_price_of_the_day_is_cached_per_day_not_frozen() -> None:
    pricer = Pricer()
    before = pricer.price(call("openai", "o3", when=datetime(2025, 6, 9, 23, 59, tzinfo=UTC), input=1_000, output=0))
    after = pricer.price(call("openai", "o3", when=datetime(2025, 6, 10, 0, 1, tzinfo=UTC), input=1_000, output=0))
    assert before.cost_usd == 1_000 * d("10") / M
    assert after.cost_usd == 1_000 * d("2") / M


def test_stats_count_sources_and_name_the_unpriced_models(pricer: Pricer) -> None:
    pricer.price(call("openai", "gpt-4o-mini", input=1, output=1))
    pricer.price(call("vllm", "acme-llama-70b", input=1, output=1))
    pricer.price(call("openai", "gpt-acme-9000", input=1, output=1))
    pricer.price(call("openai", "gpt-acme-9000", input=1, output=1))
    stats = pricer.stats.to_json()
    assert stats["priced"] == 2
    assert stats["by_source"] == {"genai-prices+discount": 1, "override": 1}
    assert stats["unpriced"] == 2
    (key,) = stats["unpriced_models"]  # type: ignore[attr-defined]
    assert key.startswith("openai/gpt-acme-9000: no price for openai/gpt-acme-9000")
    assert stats["unpriced_models"] == {key: 2}


def test_tenant_layer_beats_global_layer_whatever_the_spelling() -> None:
    pricer = Pricer(
        Overrides.parse(
            """
prices:
  - {model: gpt-4o-2024-08-06, input_mtok: "2.20", output_mtok: "9.00"}   # global, exact snapshot
  - {model: gpt-4o, tenant: acme, input_mtok: "2.00", output_mtok: "8.00"} # tenant, undated name
  - {model: gpt-4o, tenant: globex, discount: "0.50"}                      # tenant discount on the global price
"""
        )
    )
    acme = pricer.price(call("openai", "gpt-4o-2024-08-06", tenant="acme", input=1_000, output=1_000))
    assert acme.cost_usd == (1_000 * d("2.00") + 1_000 * d("8.00")) / M
    other = pricer.price(call("openai", "gpt-4o-2024-08-06", tenant="initech", input=1_000, output=1_000))
    assert other.cost_usd == (1_000 * d("2.20") + 1_000 * d("9.00")) / M
    globex = pricer.price(call("openai", "gpt-4o-2024-08-06", tenant="globex", input=1_000, output=1_000))
    assert globex.cost_usd == (1_000 * d("2.20") + 1_000 * d("9.00")) / M * d("0.50")
    assert globex.price_source == "override+discount"
    assert "50% off" in globex.price_entry
