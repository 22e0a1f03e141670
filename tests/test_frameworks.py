"""Frameworks over the provider SDKs, verified rather than assumed (issue #14).

LangChain (``langchain-openai``, ``langchain-anthropic``) and pydantic-ai call the real
openai/anthropic SDKs, which our instrumentors patch; each test runs the framework against
the demo stand-in over real HTTP inside an enclosing ``featurecost.attribute`` and checks
what the collector makes of the spans: one billed call per provider request (counted from
the requests the stand-in served), the attribution, and the usage the stand-in served —
for streaming too. pydantic-ai's own GenAI instrumentation is switched on in one test: its
spans repeat the usage and must not bill the call a second time.

The stand-in listens on loopback, which the collector takes for a self-hosted server; the
pricer is told, as a team does for a proxy, that it plays the providers the SDKs name
(``testsupport.harness.STAND_IN_ENDPOINTS``). llama-index needs ``openai<3`` and is verified in its
own venv (tests/llamaindex/).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import featurecost.instrumentation as featurecost
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans
from testsupport.harness import STAND_IN_ENDPOINTS

M = Decimal(1_000_000)
# GPT-4o mini $0.15 / $0.60; Claude Haiku 4.5 $1 / $5 per million tokens
PRICES = {"gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")), "claude-haiku-4-5": (Decimal(1), Decimal(5))}


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()


def _calls(spans: Spans) -> list[CallRecord]:
    request = ExportTraceServiceRequest.FromString(encode_spans(spans.finished()).SerializeToString())
    pricer = Pricer(Overrides.parse(STAND_IN_ENDPOINTS))
    return [pricer.price(call) for call in normalize_request(request)]


def _check(calls: list[CallRecord], stand_in: RunningStandIn, model: str, feature: str) -> None:
    """One billed call per request served, attributed, with the served usage at list price.

    Concurrent calls (``abatch``) finish in any order, so calls and served requests are
    compared as multisets of (input tokens, output tokens, cost), not pairwise in order.
    """
    served = stand_in.served
    assert len(calls) == len(served) > 0
    input_price, output_price = PRICES[model]
    expected = []
    for request in served:
        usage = request["usage"]
        input_tokens = usage.get("prompt_tokens", usage.get("input_tokens"))
        output_tokens = usage.get("completion_tokens", usage.get("output_tokens"))
        expected.append((input_tokens, output_tokens, (input_tokens * input_price + output_tokens * output_price) / M))
    for call in calls:
        assert (call.feature, call.tenant) == (feature, "acme")
        assert call.request_model == model
    assert sorted((c.input_tokens, c.output_tokens, c.cost_usd) for c in calls) == sorted(expected)


def test_langchain_openai_invoke_and_stream(stand_in: RunningStandIn, instrumented: Spans) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
    with featurecost.attribute(feature="lc-summary", tenant="acme"):
        answer = llm.invoke("Summarise the ticket")
        streamed = "".join(str(chunk.content) for chunk in llm.stream("Summarise it again, briefly"))
    assert answer.content
    assert streamed
    _check(_calls(instrumented), stand_in, "gpt-4o-mini", "lc-summary")


def test_langchain_openai_async_batch(stand_in: RunningStandIn, instrumented: Spans) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)

    async def run() -> list[Any]:
        with featurecost.attribute(feature="lc-batch", tenant="acme"):
            return await llm.abatch(["first question", "second question", "third question"])

    assert len(asyncio.run(run())) == 3
    _check(_calls(instrumented), stand_in, "gpt-4o-mini", "lc-batch")


def test_langchain_anthropic_invoke_and_stream(stand_in: RunningStandIn, instrumented: Spans) -> None:
    from langchain_anthropic import ChatAnthropic

    llm = ChatAnthropic(  # type: ignore[call-arg]
        model_name="claude-haiku-4-5", anthropic_api_url=stand_in.url, api_key="sk-test", max_retries=0
    )
    with featurecost.attribute(feature="lc-claude", tenant="acme"):
        assert llm.invoke("Draft a reply").content
        assert "".join(str(chunk.content) for chunk in llm.stream("And a shorter one"))
    _check(_calls(instrumented), stand_in, "claude-haiku-4-5", "lc-claude")


@pytest.mark.parametrize("own_instrumentation", [False, True], ids=["plain", "with-pydantic-ai-spans"])
def test_pydantic_ai_agents(stand_in: RunningStandIn, instrumented: Spans, own_instrumentation: bool) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models import Model
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.instrumented import InstrumentationSettings, InstrumentedModel
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    def instrumented_if_asked(model: Model) -> Model:
        if not own_instrumentation:
            return model
        return InstrumentedModel(model, InstrumentationSettings(tracer_provider=instrumented.provider))

    openai_agent = Agent(
        instrumented_if_asked(
            OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=f"{stand_in.url}/v1", api_key="sk-test"))
        )
    )
    claude_agent = Agent(
        instrumented_if_asked(
            AnthropicModel("claude-haiku-4-5", provider=AnthropicProvider(base_url=stand_in.url, api_key="sk-test"))
        )
    )

    async def run() -> None:
        with featurecost.attribute(feature="agent", tenant="acme"):
            assert (await openai_agent.run("Plan the migration")).output
            async with openai_agent.run_stream("Plan it again") as stream:
                assert await stream.get_output()
            assert (await claude_agent.run("Review the plan")).output

    asyncio.run(run())
    everything = _calls(instrumented)
    # pydantic-ai's Anthropic model first asks for a non-streaming message with a large max_tokens;
    # the SDK refuses it client-side ("Streaming is required for operations that may take longer
    # than 10 minutes", a ValueError, no request sent) and pydantic-ai retries streaming. That
    # attempt is kept as a failed call and billed nothing.
    failed = [c for c in everything if c.status == "error"]
    assert all((c.cost_usd, c.price_source) == (0, "not-billed") for c in failed)
    calls = [c for c in everything if c.status == "ok"]
    served = stand_in.served
    assert len(calls) == len(served) == 3
    for call, request in zip(calls, served, strict=True):
        model = "gpt-4o-mini" if call.provider == "openai" else "claude-haiku-4-5"
        _check([call], _Served(request), model, "agent")


class _Served:
    """One served request, shaped like ``RunningStandIn`` for ``_check``."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.served = [request]
