"""``instrument()`` never raises into the app, whatever tracer provider another tool
installed (issue #13): Logfire's proxy provider is unhashable (a dataclass with eq), and
a broken provider must leave the SDK working, uninstrumented."""

from __future__ import annotations

from typing import Any

import logfire
import openai
import pytest
from logfire._internal.tracer import ProxyTracerProvider

import featurecost
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.bedrock import BedrockInstrumentor
from featurecost.instrumentation.cohere import CohereInstrumentor
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans

USER: Any = [{"role": "user", "content": "hi"}]
INSTRUMENTORS = [
    OpenAIInstrumentor,
    AnthropicInstrumentor,
    MistralAIInstrumentor,
    CohereInstrumentor,
    GoogleGenAIInstrumentor,
    BedrockInstrumentor,
]


class BrokenProvider:
    """A tracer provider that fails at everything (a half-configured third-party tool)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this provider is broken")

    def add_span_processor(self, processor: Any) -> None:
        raise RuntimeError("this provider is broken")


def test_logfires_unhashable_proxy_provider_is_instrumented(stand_in: RunningStandIn, spans: Spans) -> None:
    proxy = ProxyTracerProvider(provider=spans.provider, config=logfire.DEFAULT_LOGFIRE_INSTANCE.config)
    with pytest.raises(TypeError):
        hash(proxy)  # what made instrument() raise before
    OpenAIInstrumentor().instrument(tracer_provider=proxy)
    try:
        client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
        with featurecost.attribute(feature="summarize"):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    finally:
        OpenAIInstrumentor().uninstrument()
    (span,) = spans.llm()
    assert (span.attributes or {})["featurecost.feature"] == "summarize"


@pytest.mark.parametrize("instrumentor", INSTRUMENTORS, ids=lambda c: c.__name__)
def test_instrument_with_a_broken_provider_neither_raises_nor_breaks_the_sdk(
    instrumentor: Any, stand_in: RunningStandIn
) -> None:
    instrumentor().instrument(tracer_provider=BrokenProvider())
    try:
        assert not instrumentor().is_instrumented_by_opentelemetry
        if instrumentor is OpenAIInstrumentor:
            client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
            with featurecost.attribute(feature="summarize"):
                reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            assert reply.usage is not None
        # and a later instrument() with a working provider still works
        instrumentor().instrument()
        assert instrumentor().is_instrumented_by_opentelemetry
    finally:
        instrumentor().uninstrument()
