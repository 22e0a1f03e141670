"""The LiteLLM instrumentor with the real ``litellm`` package against the provider stand-in.

LiteLLM reaches Anthropic through its own HTTP code (no SDK span without us) and OpenAI
through the ``openai`` SDK (whose instrumentor is active here too: the call must still be
billed once). Each test runs inside ``featurecost.attribute``; what the collector makes of
the spans is compared with what the stand-in served, priced by hand at the published prices
(USD per million tokens): Claude Haiku 4.5 $1 input, $1.25 cache write, $0.10 cache read,
$5 output; GPT-4o mini $0.15 / $0.60; o4-mini $1.10 / $4.40; text-embedding-3-small $0.02;
gpt-3.5-turbo-instruct $1.50 / $2.00.

The stand-in listens on loopback: the pricer is told it plays the providers the calls name
(``testsupport.harness.STAND_IN_ENDPOINTS``), as a team does for a proxy.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import: the bundled cost map

import litellm
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import featurecost.instrumentation as featurecost
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.litellm import LiteLLMInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans
from testsupport.harness import STAND_IN_ENDPOINTS

M = Decimal(1_000_000)
LONG_SYSTEM = "Policy text for the assistant. " * 200  # above the minimum cacheable prefix
HAIKU = {"input": Decimal(1), "write": Decimal("1.25"), "read": Decimal("0.10"), "output": Decimal(5)}


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    instrumentors = (LiteLLMInstrumentor(), OpenAIInstrumentor(), AnthropicInstrumentor())
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=spans.provider)
    yield spans
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


def _calls(spans: Spans) -> list[CallRecord]:
    request = ExportTraceServiceRequest.FromString(encode_spans(spans.finished()).SerializeToString())
    pricer = Pricer(Overrides.parse(STAND_IN_ENDPOINTS))
    return [pricer.price(call) for call in normalize_request(request)]


def _anthropic_cost(usage: dict[str, Any]) -> Decimal:
    return (
        usage["input_tokens"] * HAIKU["input"]
        + usage["cache_creation_input_tokens"] * HAIKU["write"]
        + usage["cache_read_input_tokens"] * HAIKU["read"]
        + usage["output_tokens"] * HAIKU["output"]
    ) / M


def _openai_cost(usage: dict[str, Any], input_price: str, output_price: str) -> Decimal:
    return (
        usage["prompt_tokens"] * Decimal(input_price) + usage.get("completion_tokens", 0) * Decimal(output_price)
    ) / M


def _claude_messages() -> list[dict[str, Any]]:
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    return [{"role": "system", "content": system}, {"role": "user", "content": "hello"}]


def test_anthropic_through_litellms_own_http_with_cache(stand_in: RunningStandIn, instrumented: Spans) -> None:
    with featurecost.attribute(feature="support-reply", tenant="acme"):
        for _ in range(2):  # a cache write, then a read
            litellm.completion(
                model="anthropic/claude-haiku-4-5",
                messages=_claude_messages(),
                api_base=stand_in.url,
                api_key="sk-test",
                max_tokens=40,
            )
    calls = _calls(instrumented)
    served = [s["usage"] for s in stand_in.served]
    assert len(calls) == len(served) == 2
    assert served[0]["cache_creation_input_tokens"] > 0
    assert served[1]["cache_read_input_tokens"] > 0
    for call, usage in zip(calls, served, strict=True):
        assert (call.provider, call.request_model) == ("anthropic", "claude-haiku-4-5")
        assert call.response_model == stand_in.served[0]["model"]
        assert (call.feature, call.tenant) == ("support-reply", "acme")
        cache_read, cache_write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        assert call.input_tokens == usage["input_tokens"] + cache_read + cache_write
        assert (call.cache_read_tokens, call.cache_write_tokens) == (cache_read, cache_write)
        assert call.output_tokens == usage["output_tokens"]
        assert call.cost_usd == _anthropic_cost(usage)
        assert call.client_cost_usd is not None  # LiteLLM's own estimate, kept apart


def test_openai_through_litellm_is_billed_once(stand_in: RunningStandIn, instrumented: Spans) -> None:
    """LiteLLM calls OpenAI with the openai SDK, whose instrumentor is active: still one billed call."""
    with featurecost.attribute(feature="summary", tenant="acme"):
        litellm.completion(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            api_base=f"{stand_in.url}/v1",
            api_key="sk-test",
        )
        litellm.completion(
            model="o4-mini",
            messages=[{"role": "user", "content": "think first"}],
            api_base=f"{stand_in.url}/v1",
            api_key="sk-test",
        )
    llm_spans = [s for s in instrumented.finished() if s.attributes and "gen_ai.operation.name" in s.attributes]
    assert len(llm_spans) == 2
    assert {s.instrumentation_scope.name for s in llm_spans if s.instrumentation_scope} == {
        "featurecost.instrumentation.litellm"
    }
    mini, o4 = _calls(instrumented)
    mini_usage, o4_usage = (s["usage"] for s in stand_in.served)
    assert (mini.provider, mini.feature) == ("openai", "summary")
    assert mini.cost_usd == _openai_cost(mini_usage, "0.15", "0.60")
    reasoning = o4_usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    assert (o4.reasoning_tokens, o4.output_tokens) == (reasoning, o4_usage["completion_tokens"])
    assert o4.cost_usd == _openai_cost(o4_usage, "1.10", "4.40")


def test_acompletion_and_async_streams(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> list[Any]:
        with featurecost.attribute(feature="async-chat", tenant="acme"):
            await litellm.acompletion(
                model="anthropic/claude-haiku-4-5",
                messages=[{"role": "user", "content": "hello"}],
                api_base=stand_in.url,
                api_key="sk-test",
                max_tokens=40,
            )
            stream = await litellm.acompletion(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "stream it"}],
                api_base=f"{stand_in.url}/v1",
                api_key="sk-test",
                stream=True,
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    # the usage chunk we asked for is not the caller's
    assert all(chunk.choices for chunk in chunks)
    claude, mini = _calls(instrumented)
    claude_usage, mini_usage = (s["usage"] for s in stand_in.served)
    assert (claude.provider, claude.feature, claude.cost_usd) == (
        "anthropic",
        "async-chat",
        _anthropic_cost(claude_usage),
    )
    assert (mini.provider, mini.usage_source) == ("openai", "reported")
    assert (mini.input_tokens, mini.output_tokens) == (mini_usage["prompt_tokens"], mini_usage["completion_tokens"])
    assert mini.cost_usd == _openai_cost(mini_usage, "0.15", "0.60")


def test_sync_stream_keeps_the_usage_chunk_when_the_caller_asked(stand_in: RunningStandIn, instrumented: Spans) -> None:
    with featurecost.attribute(feature="stream", tenant="acme"):
        stream = litellm.completion(
            model="anthropic/claude-haiku-4-5",
            messages=[{"role": "user", "content": "hello"}],
            api_base=stand_in.url,
            api_key="sk-test",
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert any(not chunk.choices and chunk.usage for chunk in chunks)
    (call,) = _calls(instrumented)
    usage = stand_in.served[-1]["usage"]
    assert (call.input_tokens, call.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert call.cost_usd == _anthropic_cost(usage)


def test_embedding_and_text_completion(stand_in: RunningStandIn, instrumented: Spans) -> None:
    with featurecost.attribute(feature="index", tenant="acme"):
        litellm.embedding(
            model="text-embedding-3-small", input=["a", "b"], api_base=f"{stand_in.url}/v1", api_key="sk-test"
        )
        litellm.text_completion(
            model="gpt-3.5-turbo-instruct",
            prompt="Once upon a time",
            api_base=f"{stand_in.url}/v1",
            api_key="sk-test",
            max_tokens=20,
        )
    embedding, completion = _calls(instrumented)
    embedding_usage, completion_usage = (s["usage"] for s in stand_in.served)
    assert (embedding.operation, embedding.feature) == ("embeddings", "index")
    assert embedding.cost_usd == _openai_cost(embedding_usage, "0.02", "0")
    assert completion.operation == "text_completion"
    assert completion.cost_usd == _openai_cost(completion_usage, "1.50", "2.00")


def test_router_calls_are_billed_with_the_deployment_model(stand_in: RunningStandIn, instrumented: Spans) -> None:
    router = litellm.Router(
        model_list=[
            {
                "model_name": "fast",
                "litellm_params": {
                    "model": "anthropic/claude-haiku-4-5",
                    "api_base": stand_in.url,
                    "api_key": "sk-test",
                    "max_tokens": 40,
                },
            }
        ]
    )
    with featurecost.attribute(feature="routed", tenant="acme"):
        router.completion(model="fast", messages=[{"role": "user", "content": "hello"}])

        async def run() -> None:
            await router.acompletion(model="fast", messages=[{"role": "user", "content": "again"}])

        asyncio.run(run())
    calls = _calls(instrumented)
    served = [s["usage"] for s in stand_in.served]
    assert len(calls) == len(served) == 2
    for call, usage in zip(calls, served, strict=True):
        assert (call.provider, call.request_model, call.feature) == ("anthropic", "claude-haiku-4-5", "routed")
        assert call.cost_usd == _anthropic_cost(usage)


def test_failing_extractors_leave_the_calls_going(
    monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, instrumented: Spans
) -> None:
    """Our extractors raising (issue #13): the caller still gets the reply and every chunk; the
    span ends with the usage recorded missing, never guessed."""
    import featurecost.instrumentation.litellm as fc_litellm

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("extractor bug")

    class BoomAccumulator:
        def __init__(self, *args: Any) -> None:
            pass

        on_item = usage = response_facts = saw_end = boom

    monkeypatch.setattr(fc_litellm, "_call_facts", boom)
    monkeypatch.setattr(fc_litellm, "_Accumulator", BoomAccumulator)
    call: dict[str, Any] = {"model": "anthropic/claude-haiku-4-5", "api_base": stand_in.url, "api_key": "sk-test"}
    with featurecost.attribute(feature="f", tenant="acme"):
        reply = litellm.completion(messages=[{"role": "user", "content": "hello"}], max_tokens=40, **call)
        chunks = list(litellm.completion(messages=[{"role": "user", "content": "hi"}], stream=True, **call))
    assert reply.choices[0].message.content
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason
    llm = instrumented.llm()
    assert len(llm) == 2
    assert all(span.end_time is not None for span in llm)
    assert [(s.attributes or {})["featurecost.usage.source"] for s in llm] == ["missing", "missing"]


def test_a_litellm_we_cannot_patch_runs_uninstrumented(
    monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, spans: Spans
) -> None:
    """Patching runs inside the app's ``import litellm``: a function we expect and this LiteLLM
    lacks must neither raise there nor leave half of LiteLLM wrapped."""
    import featurecost.instrumentation.litellm as fc_litellm

    monkeypatch.setitem(fc_litellm._FUNCTIONS, "no_such_function", ("chat", False))
    instrumentor = LiteLLMInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        with featurecost.attribute(feature="f"):
            reply = litellm.completion(
                model="anthropic/claude-haiku-4-5",
                messages=[{"role": "user", "content": "hello"}],
                api_base=stand_in.url,
                api_key="sk-test",
                max_tokens=40,
            )
    finally:
        instrumentor.uninstrument()
    assert reply.choices[0].message.content
    assert spans.llm() == []
