"""OpenAI-compatible providers called through the real ``openai`` SDK are placed and priced right.

The client keeps each provider's real base URL (what a team writes); its requests reach
``CompatibleStandIn`` over real HTTP, which answers with that provider's response shape. Our
openai instrumentor records the span, the real OTLP encoder turns it into the request the
collector receives, and the collector's normalizer and pricer place and price it.

Expected costs are hand arithmetic on the usage the stand-in served, with each provider's
published prices (USD per million tokens; genai-prices 0.2.3 carries the same numbers):
- DeepSeek ``deepseek-chat``: $0.27 input (cache miss), $0.07 cache hit, $1.10 output from
  00:30 to 16:30 UTC; half that off-peak ($0.135 / $0.035 / $0.55).
- Groq ``llama-3.3-70b-versatile``: $0.59 / $0.79.
- Together ``meta-llama/Llama-3.3-70B-Instruct-Turbo``: $0.88 / $0.88.
- Fireworks ``deepseek-v3-0324``: $0.90 / $0.90.
- xAI ``grok-3-mini``: $0.30 input, $0.50 output (reasoning billed as output).
- Mistral ``mistral-small-latest``: $0.15 / $0.60.
- Cerebras ``llama3.1-8b``: $0.10 / $0.10.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import featurecost.instrumentation as featurecost
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.collector.pricing.test_instrumentations import _sdk_methods
from tests.conftest import Spans
from testsupport.servers import serve_in_thread
from testsupport.stand_ins.compatible import CompatibleStandIn
from testsupport.stand_ins.routing import routed_client

M = Decimal(1_000_000)
PROMPT = [{"role": "user", "content": "Summarise the quarterly numbers for the board in three bullet points."}]
LONG_PROMPT = [{"role": "system", "content": "House style guide. " * 120}, *PROMPT]


@dataclass
class Providers:
    url: str
    stand_in: CompatibleStandIn
    spans: Spans

    def client(self, base_url: str) -> openai.OpenAI:
        """An openai client as a team writes it for this provider; requests reach the stand-in."""
        http_client = routed_client(self.url, by_host=True)
        return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, http_client=http_client)

    def calls(self, pricer: Pricer | None = None) -> list[CallRecord]:
        request = ExportTraceServiceRequest.FromString(encode_spans(self.spans.finished()).SerializeToString())
        pricer = pricer or Pricer()
        return [pricer.price(call) for call in normalize_request(request)]

    def usage(self, index: int = -1) -> dict[str, Any]:
        return dict(self.stand_in.served[index]["usage"])


@pytest.fixture
def providers(spans: Spans) -> Iterator[Providers]:
    stand_in = CompatibleStandIn()
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(stand_in.app()) as url:
            yield Providers(url, stand_in, spans)
    finally:
        OpenAIInstrumentor().uninstrument()


def _chat(client: openai.OpenAI, model: str, messages: Any = PROMPT, **kwargs: Any) -> None:
    with featurecost.attribute(feature="board-summary", tenant="acme"):
        client.chat.completions.create(model=model, messages=messages, **kwargs)


def _peak(when: datetime) -> bool:
    """DeepSeek's standard-price window, 00:30 to 16:30 UTC."""
    minutes = when.hour * 60 + when.minute
    return 30 <= minutes < 16 * 60 + 30


def _deepseek_cost(usage: dict[str, Any], when: datetime) -> Decimal:
    miss, hit, out = usage["prompt_cache_miss_tokens"], usage["prompt_cache_hit_tokens"], usage["completion_tokens"]
    if _peak(when):
        return (miss * Decimal("0.27") + hit * Decimal("0.07") + out * Decimal("1.10")) / M
    return (miss * Decimal("0.135") + hit * Decimal("0.035") + out * Decimal("0.55")) / M


def test_deepseek_through_the_openai_sdk_with_cache_hits(providers: Providers) -> None:
    client = providers.client("https://api.deepseek.com")
    _chat(client, "deepseek-chat", LONG_PROMPT)
    _chat(client, "deepseek-chat", LONG_PROMPT)  # the same prefix again: a cache hit
    first, second = providers.calls()
    miss_usage, hit_usage = providers.usage(0), providers.usage(1)
    assert hit_usage["prompt_cache_hit_tokens"] > 0
    assert miss_usage["prompt_cache_hit_tokens"] == 0
    for call, usage in ((first, miss_usage), (second, hit_usage)):
        assert (call.provider, call.model, call.endpoint) == ("deepseek", "deepseek-chat", "api.deepseek.com")
        assert (call.feature, call.tenant) == ("board-summary", "acme")
        assert call.input_tokens == usage["prompt_tokens"]
        assert call.cache_read_tokens == usage["prompt_cache_hit_tokens"]
        assert call.price_source == "genai-prices"
        assert call.price_entry == "deepseek/deepseek-chat"
        assert call.cost_usd == _deepseek_cost(usage, call.start_time)


def test_deepseek_time_of_day_prices(providers: Providers) -> None:
    """The same call costs half off-peak (16:30 to 00:30 UTC): priced at the span's own minute."""
    _chat(providers.client("https://api.deepseek.com"), "deepseek-chat")
    (call,) = providers.calls()
    usage = providers.usage()
    pricer = Pricer()
    for when in (datetime(2026, 12, 4, 9, 0, tzinfo=UTC), datetime(2026, 12, 4, 20, 0, tzinfo=UTC)):
        priced = pricer.price(replace(call, start_time=when, end_time=when))
        assert priced.cost_usd == _deepseek_cost(usage, when), when
    peak = pricer.price(replace(call, start_time=datetime(2026, 12, 4, 16, 29, tzinfo=UTC))).cost_usd
    off_peak = pricer.price(replace(call, start_time=datetime(2026, 12, 4, 16, 30, tzinfo=UTC))).cost_usd
    assert peak is not None
    assert off_peak is not None
    assert peak == 2 * off_peak


def test_deepseek_streaming_usage(providers: Providers) -> None:
    with featurecost.attribute(feature="board-summary"):
        stream = providers.client("https://api.deepseek.com").chat.completions.create(
            model="deepseek-chat", messages=PROMPT, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    (call,) = providers.calls()
    usage = providers.usage()
    assert (call.provider, call.input_tokens, call.output_tokens) == (
        "deepseek",
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert call.cost_usd == _deepseek_cost(usage, call.start_time)


@pytest.mark.parametrize(
    ("base_url", "model", "provider", "entry", "input_price", "output_price"),
    [
        pytest.param(
            "https://api.groq.com/openai/v1",
            "llama-3.3-70b-versatile",
            "groq",
            "groq/llama-3.3-70b-versatile",
            "0.59",
            "0.79",
            id="groq",
        ),
        pytest.param(
            "https://api.together.xyz/v1",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together",
            "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "0.88",
            "0.88",
            id="together",
        ),
        pytest.param(
            "https://api.fireworks.ai/inference/v1",
            "accounts/fireworks/models/deepseek-v3-0324",
            "fireworks",
            "fireworks/deepseek-v3-0324",
            "0.90",
            "0.90",
            id="fireworks",
        ),
        pytest.param(
            "https://api.mistral.ai/v1",
            "mistral-small-latest",
            "mistral_ai",
            "mistral/mistral-small-latest",
            "0.15",
            "0.60",
            id="mistral",
        ),
        pytest.param(
            "https://api.cerebras.ai/v1",
            "llama3.1-8b",
            "cerebras",
            "cerebras/llama3.1-8b",
            "0.10",
            "0.10",
            id="cerebras",
        ),
    ],
)
def test_provider_placed_from_its_endpoint(
    providers: Providers,
    base_url: str,
    model: str,
    provider: str,
    entry: str,
    input_price: str,
    output_price: str,
) -> None:
    _chat(providers.client(base_url), model)
    (call,) = providers.calls()
    usage = providers.usage()
    assert (call.provider, call.model) == (provider, model)
    assert (call.input_tokens, call.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert (call.price_source, call.price_entry, call.unpriced_reason) == ("genai-prices", entry, "")
    expected = (usage["prompt_tokens"] * Decimal(input_price) + usage["completion_tokens"] * Decimal(output_price)) / M
    assert call.cost_usd == expected


def test_xai_reasoning_is_billed_on_top_of_completion_tokens(providers: Providers) -> None:
    """xAI's completion_tokens leave the reasoning out; both are billed at the output price."""
    _chat(providers.client("https://api.x.ai/v1"), "grok-3-mini")
    (call,) = providers.calls()
    usage = providers.usage()
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + reasoning
    assert (call.provider, call.reasoning_tokens) == ("x_ai", reasoning)
    assert call.output_tokens == usage["completion_tokens"] + reasoning
    expected = (usage["prompt_tokens"] * Decimal("0.30") + call.output_tokens * Decimal("0.50")) / M
    assert call.cost_usd == expected


def test_openrouter_priced_from_the_cost_it_reports(providers: Providers) -> None:
    _chat(providers.client("https://openrouter.ai/api/v1"), "openai/gpt-4o-mini")
    (call,) = providers.calls()
    usage = providers.usage()
    reported = Decimal(repr(usage["cost"]))
    hand = (usage["prompt_tokens"] * Decimal("0.15") + usage["completion_tokens"] * Decimal("0.60")) / M
    assert abs(reported - hand) < Decimal("1e-15")  # the stand-in billed OpenRouter's list price
    assert (call.provider, call.model) == ("openrouter", "openai/gpt-4o-mini")
    assert call.gateway_cost_usd == reported
    assert call.cost_usd == reported
    assert call.price_source == "gateway-reported"
    assert call.input_cost_usd is not None
    assert call.output_cost_usd is not None
    assert call.input_cost_usd + call.output_cost_usd == reported
    assert call.attributes["featurecost.gateway.upstream_provider"] == "OpenAI"


def test_openrouter_streaming_reports_cost_on_the_usage_chunk(providers: Providers) -> None:
    client = providers.client("https://openrouter.ai/api/v1")
    with featurecost.attribute(feature="board-summary"):
        for _ in client.chat.completions.create(model="openai/gpt-4o-mini", messages=PROMPT, stream=True):
            pass
    (call,) = providers.calls()
    assert call.cost_usd == Decimal(repr(providers.usage()["cost"]))
    assert call.price_source == "gateway-reported"


def test_perplexity_priced_from_its_reported_total_cost(providers: Providers) -> None:
    """Sonar's request fee depends on the search context size: only Perplexity's own total knows it."""
    _chat(providers.client("https://api.perplexity.ai"), "sonar")
    (call,) = providers.calls()
    usage = providers.usage()
    hand = (usage["prompt_tokens"] + usage["completion_tokens"]) * Decimal(1) / M + Decimal("0.005")
    assert abs(Decimal(repr(usage["cost"]["total_cost"])) - hand) < Decimal("1e-15")
    assert (call.provider, call.model, call.price_source) == ("perplexity", "sonar", "gateway-reported")
    assert call.cost_usd == Decimal(repr(usage["cost"]["total_cost"]))


@pytest.mark.parametrize(("server", "model"), [("vllm", "meta-llama/Llama-3.1-8B-Instruct"), ("ollama", "gpt-4o-mini")])
def test_self_hosted_endpoint_is_never_list_priced(providers: Providers, server: str, model: str) -> None:
    """A vLLM/Ollama server on loopback: NULL with the reason, even for a model named like OpenAI's."""
    client = openai.OpenAI(base_url=f"{providers.url}/{server}/v1", api_key="sk-local", max_retries=0)
    _chat(client, model)
    (call,) = providers.calls()
    port = providers.url.rsplit(":", 1)[1]
    assert call.provider == "self-hosted"
    assert call.endpoint == f"127.0.0.1:{port}"
    assert call.cost_usd is None
    assert call.unpriced_reason.startswith("self-hosted endpoint: add a prices-file entry")
    assert f"127.0.0.1:{port}" in call.unpriced_reason
    assert model in call.unpriced_reason


def test_self_hosted_endpoint_priced_from_the_prices_file(providers: Providers) -> None:
    client = openai.OpenAI(base_url=f"{providers.url}/vllm/v1", api_key="sk-local", max_retries=0)
    _chat(client, "meta-llama/Llama-3.1-8B-Instruct")
    overrides = Overrides.parse(
        'prices:\n  - model: "meta-llama/llama-3.1-8b-instruct"\n    provider: self-hosted\n'
        '    input_mtok: "0.04"\n    output_mtok: "0.04"\n    id: gpu-cost\n'
    )
    (call,) = providers.calls(Pricer(overrides))
    usage = providers.usage()
    assert (call.price_source, call.price_entry) == ("override", "gpu-cost")
    assert call.cost_usd == (usage["prompt_tokens"] + usage["completion_tokens"]) * Decimal("0.04") / M


def test_private_gateway_listed_in_the_prices_file_is_priced_as_its_provider(providers: Providers) -> None:
    """A proxy on a private address that forwards to a public provider: ``price_as`` says which."""
    client = openai.OpenAI(base_url=f"{providers.url}/vllm/v1", api_key="sk-local", max_retries=0)
    _chat(client, "gpt-4o-mini")
    port = providers.url.rsplit(":", 1)[1]
    overrides = Overrides.parse(f"endpoints:\n  - address: 127.0.0.1:{port}\n    price_as: openai\n")
    (call,) = providers.calls(Pricer(overrides))
    usage = providers.usage()
    assert (call.provider, call.price_source, call.price_entry) == ("openai", "genai-prices", "openai/gpt-4o-mini")
    assert (
        call.cost_usd == (usage["prompt_tokens"] * Decimal("0.15") + usage["completion_tokens"] * Decimal("0.60")) / M
    )


def test_unknown_public_endpoint_names_endpoint_and_model(spans: Spans) -> None:
    """A host genai-prices does not know and the prices file does not list: NULL, saying which."""
    stand_in = CompatibleStandIn()
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(stand_in.app()) as url:
            providers = Providers(url, stand_in, spans)
            # routed to the Mistral-shaped answer, under a host nobody lists
            http_client = routed_client(f"{url}/api.mistral.ai", by_host=False)
            client = openai.OpenAI(
                base_url="https://llm.example.net/v1", api_key="sk", max_retries=0, http_client=http_client
            )
            _chat(client, "gpt-4o-mini")
            (call,) = providers.calls()
    finally:
        OpenAIInstrumentor().uninstrument()
    assert call.cost_usd is None
    assert call.endpoint == "llm.example.net"
    assert "unknown endpoint llm.example.net" in call.unpriced_reason
    assert "gpt-4o-mini" in call.unpriced_reason


def _peer(module: str) -> Any:
    import importlib

    return importlib.import_module(module).OpenAIInstrumentor()


@pytest.mark.parametrize(
    ("module", "placed"),
    [
        # OpenInference names the provider itself (llm.provider = deepseek, from the base URL)
        pytest.param("openinference.instrumentation.openai", True, id="openinference"),
        # OpenLLMetry records the base URL (gen_ai.openai.api_base): placed from it
        pytest.param("opentelemetry.instrumentation.openai", True, id="openllmetry"),
        # the official openai-v2 2.4b0 records neither endpoint nor provider: NULL, naming both
        pytest.param("opentelemetry.instrumentation.openai_v2", False, id="openai-v2"),
    ],
)
def test_peer_instrumentations_of_a_deepseek_call(
    spans: Spans, monkeypatch: pytest.MonkeyPatch, module: str, placed: bool
) -> None:
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUTS", "true")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "false")
    stand_in = CompatibleStandIn()
    before = _sdk_methods()  # OpenLLMetry's uninstrument() leaves a wrapper behind: restore the SDK
    instrumentor = _peer(module)
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(stand_in.app()) as url:
            providers = Providers(url, stand_in, spans)
            _chat(providers.client("https://api.deepseek.com"), "deepseek-chat")
            (call,) = providers.calls()
    finally:
        instrumentor.uninstrument()
        for (cls, attribute), member in before.items():
            if vars(cls).get(attribute) is not member:
                setattr(cls, attribute, member)
    usage = dict(stand_in.served[-1]["usage"])
    if placed:
        assert (call.provider, call.price_entry) == ("deepseek", "deepseek/deepseek-chat")
        assert call.cost_usd == _deepseek_cost(usage, call.start_time)
    else:
        assert call.cost_usd is None
        assert "openai/deepseek-chat" in call.unpriced_reason


def test_self_hosted_span_that_names_its_server_keeps_the_name(providers: Providers) -> None:
    """A span saying ``vllm`` (no public price list knows it) keeps that provider name, so an
    existing ``provider: vllm`` prices-file entry still prices it; a span saying ``openai`` at a
    private address becomes ``self-hosted`` and is not priced by the ``vllm`` entry."""
    client = openai.OpenAI(base_url=f"{providers.url}/vllm/v1", api_key="sk-local", max_retries=0)
    _chat(client, "acme-llama-70b")
    (call,) = providers.calls()
    usage = providers.usage()
    overrides = Overrides.parse(
        'prices:\n  - model: acme-llama-70b\n    provider: vllm\n    input_mtok: "0.40"\n    output_mtok: "0.40"\n'
    )
    as_openai = Pricer(overrides).price(replace(call))
    assert (as_openai.provider, as_openai.cost_usd) == ("self-hosted", None)
    as_vllm = Pricer(overrides).price(replace(call, provider="vllm"))
    assert as_vllm.provider == "vllm"
    assert as_vllm.cost_usd == (usage["prompt_tokens"] + usage["completion_tokens"]) * Decimal("0.40") / M
