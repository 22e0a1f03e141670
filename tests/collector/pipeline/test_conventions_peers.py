"""Every fact a peer instrumentation's span carries is read: the four gaps of issue #14.

Spans come from the real packages (OpenInference's openai instrumentor, the anthropic SDK's
own tracing) calling the demo stand-in over real HTTP with the SDKs' real base URLs
(``testsupport.stand_ins.routing``); the real OTLP encoder turns them into the collector's request.
Expected costs are hand arithmetic on what the stand-in served, at OpenAI's and Anthropic's
published prices (USD per million tokens):
- text-embedding-3-small $0.02; text-embedding-ada-002 $0.10.
- GPT-4o mini: standard $0.15 / $0.60; priority $0.25 / $1.00.
- davinci-002: $2.00 / $2.00.
- Claude Haiku 4.5: $1 input, $1.25 5-minute cache write, $2 1-hour cache write, $0.10 cache read, $5 output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer
from tests.conftest import RunningStandIn, Spans
from testsupport.stand_ins.routing import anthropic_http, routed_client

M = Decimal(1_000_000)
LONG_SYSTEM = "Policy text for the assistant. " * 200  # above the minimum cacheable prefix


def _priced(spans: Spans) -> list[CallRecord]:
    request = ExportTraceServiceRequest.FromString(encode_spans(spans.finished()).SerializeToString())
    pricer = Pricer()
    return [pricer.price(call) for call in normalize_request(request)]


@pytest.fixture
def openinference(spans: Spans, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[CallRecord]]]:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUTS", "true")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        yield lambda: _priced(spans)
    finally:
        instrumentor.uninstrument()


def _openai(stand_in: RunningStandIn) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", max_retries=0, http_client=routed_client(stand_in.url))


@pytest.mark.parametrize(
    ("model", "served_as", "price"),
    [("text-embedding-3-small", "text-embedding-3-small", "0.02"), ("text-embedding-ada-002", None, "0.10")],
)
def test_openinference_embeddings_are_priced(
    stand_in: RunningStandIn,
    openinference: Callable[[], list[CallRecord]],
    model: str,
    served_as: str | None,
    price: str,
) -> None:
    """The model of an OpenInference EMBEDDING span is only in ``embedding.model_name``."""
    _openai(stand_in).embeddings.create(model=model, input=["first document", "second document"])
    (call,) = openinference()
    (served,) = stand_in.served
    if served_as is not None:
        assert served["model"] == served_as
    assert call.operation == "embeddings"
    assert call.usage_convention == "openinference"
    assert call.model == served["model"]  # e.g. text-embedding-ada-002-v2, as OpenAI answers
    assert call.input_tokens == served["usage"]["prompt_tokens"]
    assert call.unpriced_reason == ""
    assert call.cost_usd == served["usage"]["prompt_tokens"] * Decimal(price) / M


def test_openinference_priority_tier_is_priced_at_the_priority_rate(
    stand_in: RunningStandIn, openinference: Callable[[], list[CallRecord]]
) -> None:
    """The tier (and the request model) are only inside ``llm.invocation_parameters``."""
    _openai(stand_in).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], service_tier="priority"
    )
    (call,) = openinference()
    usage = stand_in.served[-1]["usage"]
    assert (call.request_model, call.service_tier) == ("gpt-4o-mini", "priority")
    assert call.price_entry == "openai/gpt-4o-mini [priority]"
    expected = (usage["prompt_tokens"] * Decimal("0.25") + usage["completion_tokens"] * Decimal("1.00")) / M
    assert call.cost_usd == expected


def test_anthropic_sdk_spans_price_one_hour_cache_writes_at_the_one_hour_rate(
    stand_in: RunningStandIn, spans: Spans
) -> None:
    """The anthropic SDK's own tracing reports 1-hour writes as
    ``anthropic.usage.cache_creation.ephemeral_1h_input_tokens``."""
    client = anthropic.Anthropic(
        api_key="sk-test",
        max_retries=0,
        http_client=routed_client(stand_in.url, httpx_module=anthropic_http()),
        open_telemetry={"tracer_provider": spans.provider},
    )
    system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    for _ in range(2):  # a 1-hour cache write, then a read
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, system=system, messages=[{"role": "user", "content": "hi"}]
        )
    write, read = _priced(spans)
    write_usage, read_usage = (s["usage"] for s in stand_in.served)
    written = write_usage["cache_creation"]["ephemeral_1h_input_tokens"]
    assert written > 0
    assert write_usage["cache_creation_input_tokens"] == written
    assert (write.cache_write_tokens, write.cache_write_1h_tokens) == (written, written)
    expected_write = (
        write_usage["input_tokens"] * Decimal(1) + written * Decimal(2) + write_usage["output_tokens"] * Decimal(5)
    ) / M
    assert write.cost_usd == expected_write
    expected_read = (
        read_usage["input_tokens"] * Decimal(1)
        + read_usage["cache_read_input_tokens"] * Decimal("0.10")
        + read_usage["output_tokens"] * Decimal(5)
    ) / M
    assert read.cost_usd == expected_read


def test_openai_serving_names_resolve_without_the_request_model(
    stand_in: RunningStandIn, openinference: Callable[[], list[CallRecord]]
) -> None:
    """OpenAI answers davinci-002 as ``davinci:2023-07-21-v2`` and ada-002 as ``...-v2``."""
    client = _openai(stand_in)
    client.completions.create(model="davinci-002", prompt="Once upon a time", max_tokens=20)
    client.embeddings.create(model="text-embedding-ada-002", input="a document")
    completion, embedding = openinference()
    pricer = Pricer()
    for call, served, entry, input_price, output_price in (
        (completion, stand_in.served[0], "openai/davinci-002", "2", "2"),
        (embedding, stand_in.served[1], "openai/text-embedding-ada-002", "0.10", "0"),
    ):
        assert call.response_model == served["model"]
        alone = pricer.price(replace(call, request_model=""))  # only the name OpenAI answered with
        assert alone.price_entry == entry
        usage = served["usage"]
        expected = (
            usage["prompt_tokens"] * Decimal(input_price) + usage.get("completion_tokens", 0) * Decimal(output_price)
        ) / M
        assert alone.cost_usd == expected


def test_logfire_openai_spans_are_read_and_its_cost_reconciled(stand_in: RunningStandIn) -> None:
    """Logfire's OpenAI integration: GenAI semconv names, its own genai-prices estimate in ``operation.cost``."""
    import logfire
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    # local: a Logfire instance of its own, the global tracer provider untouched
    instance = logfire.configure(
        local=True, send_to_logfire=False, console=False, additional_span_processors=[SimpleSpanProcessor(exporter)]
    )
    client = _openai(stand_in)
    instance.instrument_openai(client)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    request = ExportTraceServiceRequest.FromString(encode_spans(exporter.get_finished_spans()).SerializeToString())
    (call,) = [Pricer().price(c) for c in normalize_request(request)]
    usage = stand_in.served[-1]["usage"]
    assert call.usage_convention == "genai-semconv"
    assert (call.provider, call.model) == ("openai", stand_in.served[-1]["model"])
    expected = (usage["prompt_tokens"] * Decimal("0.15") + usage["completion_tokens"] * Decimal("0.60")) / M
    assert call.cost_usd == expected
    assert call.client_cost_usd is not None
    assert call.cost_delta_vs_client_usd is not None
    assert abs(call.cost_delta_vs_client_usd) < Decimal("1e-12")  # its float of the same genai-prices price
