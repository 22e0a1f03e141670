"""The shipped OTel Collector filter forwards every span featurecost bills, whatever produced it.

The condition in deploy/otel-collector/config.yaml is generated from the collector's alias
table; these tests read the *committed* file, evaluate its OTTL condition (it is only
``attributes["k"] == nil`` terms joined by ``and``: the span is dropped when every key is
absent) against real spans from each convention's real package, and check it drops no span
the collector would bill and keeps out plain HTTP spans.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from featurecost.collector.pipeline.normalize import is_llm_span, normalize_request, read_attributes
from featurecost.collector.pipeline.otel_filter import rewrite
from tests.collector.pricing.test_instrumentations import _sdk_methods
from tests.conftest import RunningStandIn, Spans
from testsupport.stand_ins.routing import anthropic_http, routed_client

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector" / "config.yaml"
_TERM = re.compile(r'^attributes\["(?P<key>[^"]+)"\] == nil$')


def _drop_keys() -> list[str]:
    """The keys of the committed drop condition (which must be of the one supported form)."""
    config = yaml.safe_load(CONFIG.read_text())
    (condition,) = config["processors"]["filter/llm-only"]["traces"]["span"]
    keys = []
    for term in condition.split(" and "):
        match = _TERM.match(term.strip())
        assert match is not None, f"unexpected OTTL term {term!r}"
        keys.append(match["key"])
    return keys


def _dropped(span: ReadableSpan, keys: list[str]) -> bool:
    attributes = span.attributes or {}
    return all(key not in attributes for key in keys)


def test_committed_filter_is_the_generated_one() -> None:
    text = CONFIG.read_text()
    assert rewrite(text) == text, "regenerate: make generated"


def _openllmetry() -> BaseInstrumentor:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openinference() -> BaseInstrumentor:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _official() -> BaseInstrumentor:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _ours() -> BaseInstrumentor:
    from featurecost.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


@pytest.fixture(autouse=True)
def _no_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "false")
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUTS", "true")


def _billed_span_ids(spans: Spans) -> set[str]:
    request = ExportTraceServiceRequest.FromString(encode_spans(spans.finished()).SerializeToString())
    return {call.span_id for call in normalize_request(request)}


@pytest.mark.parametrize("make", [_openllmetry, _openinference, _official, _ours], ids=lambda f: f.__name__[1:])
def test_filter_keeps_every_billed_span_of_each_openai_convention(
    stand_in: RunningStandIn, spans: Spans, make: Callable[[], BaseInstrumentor]
) -> None:
    keys = _drop_keys()
    before = _sdk_methods()  # OpenLLMetry's uninstrument() leaves a wrapper behind: restore the SDK
    instrumentor = make()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=routed_client(stand_in.url))
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        client.embeddings.create(model="text-embedding-3-small", input="a document")
    finally:
        instrumentor.uninstrument()
        for (cls, attribute), member in before.items():
            if vars(cls).get(attribute) is not member:
                setattr(cls, attribute, member)
    billed = _billed_span_ids(spans)
    assert len(billed) == 2
    for span in spans.finished():
        if format(span.context.span_id, "016x") in billed:
            assert not _dropped(span, keys), dict(span.attributes or {})


def test_filter_keeps_the_anthropic_sdks_own_spans(stand_in: RunningStandIn, spans: Spans) -> None:
    keys = _drop_keys()
    client = anthropic.Anthropic(
        api_key="sk-test",
        max_retries=0,
        http_client=routed_client(stand_in.url, httpx_module=anthropic_http()),
        open_telemetry={"tracer_provider": spans.provider},
    )
    client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    (billed,) = _billed_span_ids(spans)
    (span,) = [s for s in spans.finished() if format(s.context.span_id, "016x") == billed]
    assert not _dropped(span, keys)


# Documented span attributes where no installable Python package emits the convention:
# the Vercel AI SDK (ai-sdk.dev/docs/ai-sdk-core/telemetry, a doGenerate span), OpenLIT and
# Logfire (GenAI semconv names, their docs' examples).
SPEC_EXAMPLES: dict[str, dict[str, Any]] = {
    "vercel-ai-sdk": {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.provider": "openai.chat",
        "ai.model.id": "gpt-4o-mini",
        "ai.usage.promptTokens": 10,
        "ai.usage.completionTokens": 20,
    },
    "openlit": {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cost": 0.0000135,
    },
    "logfire": {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
    },
}


@pytest.mark.parametrize("name", sorted(SPEC_EXAMPLES))
def test_filter_keeps_documented_spans_of_other_conventions(name: str, spans: Spans) -> None:
    keys = _drop_keys()
    tracer = spans.provider.get_tracer("spec-example")
    with tracer.start_as_current_span("call", attributes=SPEC_EXAMPLES[name]):
        pass
    (span,) = spans.finished()
    request = ExportTraceServiceRequest.FromString(encode_spans([span]).SerializeToString())
    (proto_span,) = request.resource_spans[0].scope_spans[0].spans
    assert is_llm_span(read_attributes(proto_span.attributes))
    assert not _dropped(span, keys)


def test_filter_drops_plain_http_spans(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("http")
    with tracer.start_as_current_span(
        "GET /api/orders", attributes={"http.request.method": "GET", "url.path": "/api/orders"}
    ):
        pass
    (span,) = spans.finished()
    assert _dropped(span, _drop_keys())
