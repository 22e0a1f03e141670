"""LlamaIndex (``llama-index-llms-openai``) over the openai SDK, verified against the stand-in.

Runs in .venv-llamaindex (openai 2.x: llama-index-llms-openai requires openai<3). Same checks
as tests/test_frameworks.py: one billed call per request the stand-in served, the enclosing
``featurecost.attribute``, the served usage at GPT-4o mini's list price ($0.15 / $0.60 per
million tokens) — for chat, streaming chat and completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import featurecost.instrumentation as featurecost
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans
from testsupport.harness import STAND_IN_ENDPOINTS

M = Decimal(1_000_000)


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    OpenAIInstrumentor().uninstrument()


def test_llamaindex_openai_chat_stream_and_complete(stand_in: RunningStandIn, instrumented: Spans) -> None:
    llm = OpenAI(model="gpt-4o-mini", api_base=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
    with featurecost.attribute(feature="rag-answer", tenant="acme"):
        assert llm.chat([ChatMessage(role="user", content="What does the policy say?")]).message.content
        streamed = "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content="Again?")]))
        assert streamed
        assert llm.complete("Summarise the policy").text

        async def achat() -> None:
            assert (await llm.achat([ChatMessage(role="user", content="And async?")])).message.content

        asyncio.run(achat())

    request = ExportTraceServiceRequest.FromString(encode_spans(instrumented.finished()).SerializeToString())
    pricer = Pricer(Overrides.parse(STAND_IN_ENDPOINTS))
    calls = [pricer.price(call) for call in normalize_request(request)]
    served = stand_in.served
    assert len(calls) == len(served) == 4
    for call, request_served in zip(calls, served, strict=True):
        usage = request_served["usage"]
        assert (call.feature, call.tenant, call.request_model) == ("rag-answer", "acme", "gpt-4o-mini")
        assert (call.input_tokens, call.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
        expected = (usage["prompt_tokens"] * Decimal("0.15") + usage["completion_tokens"] * Decimal("0.60")) / M
        assert call.cost_usd == expected
