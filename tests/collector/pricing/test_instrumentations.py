"""Spans from other projects' real instrumentations, normalized and priced.

The real openai/anthropic SDKs call the provider stand-in over real HTTP while the
third-party instrumentor records spans (OpenLLMetry, OpenInference, the official
OpenTelemetry ``openai-v2``); the real OTLP encoder turns them into the request the
collector receives. Expected costs are hand arithmetic on the usage the stand-in served and
the providers' published prices:
- GPT-4o mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
- Claude Haiku 4.5: $1 input, $1.25 cache write (5 min), $0.10 cache read, $5 output.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer
from tests.conftest import RunningStandIn, Spans
from testsupport.stand_ins.routing import anthropic_http, routed_client

M = Decimal(1_000_000)
LONG_SYSTEM = "Policy text for the assistant. " * 200  # above both providers' minimum cacheable prefix


def _openllmetry_openai() -> BaseInstrumentor:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openinference_openai() -> BaseInstrumentor:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _official_openai_v2() -> BaseInstrumentor:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry_anthropic() -> BaseInstrumentor:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


def _openinference_anthropic() -> BaseInstrumentor:
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


def _priced_calls(spans: Spans) -> list[CallRecord]:
    request = ExportTraceServiceRequest.FromString(encode_spans(spans.finished()).SerializeToString())
    pricer = Pricer()
    return [pricer.price(call) for call in normalize_request(request)]


def _sdk_methods() -> dict[tuple[type, str], Any]:
    """Every method of every class the SDKs define, as (class, name) → the attribute itself."""
    for package in (openai.resources, anthropic.resources):
        # the SDKs import their resource modules lazily; load them all so none is missed
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    methods: dict[tuple[type, str], Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("openai.", "anthropic.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                for attribute, member in vars(value).items():
                    if callable(member):
                        methods[(value, attribute)] = member
    return methods


def _run(make: Callable[[], BaseInstrumentor], spans: Spans, action: Callable[[], None]) -> list[CallRecord]:
    # opentelemetry-instrumentation-openai 0.62.4 leaves Completions.create wrapped after
    # uninstrument(); put the SDKs back exactly as they were so later tests see the real SDK.
    before = _sdk_methods()
    instrumentor = make()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        action()
    finally:
        instrumentor.uninstrument()
        for (cls, attribute), member in before.items():
            if vars(cls).get(attribute) is not member:
                setattr(cls, attribute, member)
    return _priced_calls(spans)


@pytest.fixture(autouse=True)
def _no_content_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    # these instrumentations record prompts by default; nothing in these tests needs them
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "false")
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUTS", "true")


@pytest.mark.parametrize(
    ("make", "convention", "reports_cache"),
    [
        pytest.param(_openllmetry_openai, "genai-semconv", True, id="openllmetry"),
        pytest.param(_openinference_openai, "openinference", True, id="openinference"),
        # opentelemetry-instrumentation-openai-v2 2.4b0 does not record cached tokens at all
        pytest.param(_official_openai_v2, "genai-semconv", False, id="official-openai-v2"),
    ],
)
def test_openai_chat(
    stand_in: RunningStandIn,
    spans: Spans,
    make: Callable[[], BaseInstrumentor],
    convention: str,
    reports_cache: bool,
) -> None:
    # the real base URL (the collector places the provider from it); requests reach the stand-in
    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=routed_client(stand_in.url))
    messages: Any = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "hello"}]

    def action() -> None:
        for _ in range(2):  # the second identical prompt is a cache hit
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)

    calls = _run(make, spans, action)
    assert len(calls) == 2
    served = [s["usage"] for s in stand_in.served]
    assert served[1]["prompt_tokens_details"]["cached_tokens"] > 0
    for call, usage in zip(calls, served, strict=True):
        cached = usage["prompt_tokens_details"]["cached_tokens"] if reports_cache else 0
        assert call.usage_convention == convention
        assert (call.provider, call.response_model) == ("openai", "gpt-4o-mini-2024-07-18")
        assert (call.input_tokens, call.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
        assert call.cache_read_tokens == cached
        expected = (
            (usage["prompt_tokens"] - cached) * Decimal("0.15")
            + cached * Decimal("0.075")
            + usage["completion_tokens"] * Decimal("0.60")
        ) / M
        assert call.cost_usd == expected
        assert call.usage_issues == []


@pytest.mark.parametrize(
    ("make", "convention"),
    [
        pytest.param(_openllmetry_anthropic, "genai-semconv", id="openllmetry"),
        pytest.param(_openinference_anthropic, "openinference", id="openinference"),
    ],
)
def test_anthropic_messages_with_prompt_caching(
    stand_in: RunningStandIn, spans: Spans, make: Callable[[], BaseInstrumentor], convention: str
) -> None:
    http_client = routed_client(stand_in.url, httpx_module=anthropic_http())
    client = anthropic.Anthropic(api_key="sk-test", max_retries=0, http_client=http_client)
    system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]

    def action() -> None:
        for _ in range(2):  # the first writes the cache, the second reads it
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=60, system=system, messages=[{"role": "user", "content": "hi"}]
            )

    calls = _run(make, spans, action)
    assert len(calls) == 2
    served = [s["usage"] for s in stand_in.served]
    assert served[0]["cache_creation_input_tokens"] > 0
    assert served[1]["cache_read_input_tokens"] > 0
    for call, usage in zip(calls, served, strict=True):
        # Anthropic counts cache outside input_tokens; both instrumentations add it back in
        write, read = usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]
        assert call.usage_convention == convention
        assert call.provider == "anthropic"
        assert call.input_tokens == usage["input_tokens"] + write + read
        assert (call.cache_write_tokens, call.cache_read_tokens) == (write, read)
        expected = (
            usage["input_tokens"] * Decimal(1)
            + write * Decimal("1.25")
            + read * Decimal("0.10")
            + usage["output_tokens"] * Decimal(5)
        ) / M
        assert call.cost_usd == expected
        assert call.usage_issues == []
