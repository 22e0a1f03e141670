"""The real openai and anthropic SDKs, over real HTTP, against the provider stand-in."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest
from opentelemetry.trace import StatusCode

import featurecost
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: cacheable


def test_openai_chat_span_carries_usage_and_attribution(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
    messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "hello"}]
    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-7", session="conv-1"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)  # type: ignore[arg-type]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)  # type: ignore[arg-type]
    first, second = instrumented.llm()
    served = stand_in.served
    for span, response in zip((first, second), served, strict=True):
        a = span.attributes or {}
        usage = response["usage"]
        assert span.name == "chat gpt-4o-mini"
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert a["gen_ai.response.model"] == response["model"] == "gpt-4o-mini-2024-07-18"
        assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
        assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
        assert a["gen_ai.usage.cache_read.input_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
        assert a["featurecost.usage.source"] == "reported"
        assert a["featurecost.feature"] == "support-bot"
        assert a["featurecost.tenant"] == "acme"
        assert a["user.id"] == "u-7"
        assert a["session.id"] == "conv-1"
    # the second identical prompt hits the provider's cache
    assert served[1]["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert first.attributes["featurecost.root_id"] == second.attributes["featurecost.root_id"]  # type: ignore[index]


def test_openai_async_client(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0) as client:
            with featurecost.attribute(feature="draft-email"):
                await client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])

    asyncio.run(run())
    (span,) = instrumented.llm()
    assert span.attributes is not None
    assert span.attributes["featurecost.feature"] == "draft-email"
    assert span.attributes["gen_ai.usage.output_tokens"] == stand_in.served[0]["usage"]["completion_tokens"]


def test_openai_error_is_recorded_without_usage(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    (span,) = instrumented.llm()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "BadRequestError"
    assert span.attributes["featurecost.usage.source"] == "missing"
    assert "gen_ai.usage.input_tokens" not in span.attributes


def test_anthropic_usage_is_normalized_to_semconv_totals(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = anthropic.Anthropic(
        base_url=stand_in.url,
        api_key="sk-ant-test",
        max_retries=0,
        # the SDK's own tracing, on: it must not add a second billable span
        open_telemetry={"tracer_provider": instrumented.provider},  # type: ignore[typeddict-item]
    )
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    with featurecost.attribute(feature="summarize-thread", tenant="globex"):
        for _ in range(2):
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=100,
                system=system,  # type: ignore[arg-type]
                messages=[{"role": "user", "content": "Summarize this thread."}],
            )
    llm_spans = instrumented.llm()
    assert len(llm_spans) == 2, [s.instrumentation_scope for s in llm_spans]
    write, read = (response["usage"] for response in stand_in.served)
    assert write["cache_creation_input_tokens"] > 0
    assert read["cache_read_input_tokens"] > 0
    for span, usage in zip(llm_spans, (write, read), strict=True):
        a = span.attributes or {}
        total = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
        assert a["gen_ai.usage.input_tokens"] == total
        assert a["gen_ai.usage.cache_read.input_tokens"] == usage["cache_read_input_tokens"]
        assert a["gen_ai.usage.cache_creation.input_tokens"] == usage["cache_creation_input_tokens"]
        assert a["gen_ai.usage.output_tokens"] == usage["output_tokens"]
        assert a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
        assert a["featurecost.feature"] == "summarize-thread"


def test_anthropic_async_client(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> None:
        client = anthropic.AsyncAnthropic(base_url=stand_in.url, api_key="sk-ant-test", max_retries=0)
        with featurecost.attribute(feature="f-async"):
            await client.messages.create(
                model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            )
        await client.close()

    asyncio.run(run())
    (span,) = instrumented.llm()
    assert span.attributes is not None
    assert span.attributes["featurecost.feature"] == "f-async"
    assert span.attributes["gen_ai.usage.output_tokens"] == stand_in.served[0]["usage"]["output_tokens"]


def test_uninstrument_restores_the_sdks(stand_in: RunningStandIn, spans: Spans) -> None:
    originals = (
        openai.resources.chat.completions.completions.Completions.create,
        anthropic.resources.messages.messages.Messages.create,
    )
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
    assert openai.resources.chat.completions.completions.Completions.create is not originals[0]
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    assert openai.resources.chat.completions.completions.Completions.create is originals[0]
    assert anthropic.resources.messages.messages.Messages.create is originals[1]
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert spans.llm() == []
