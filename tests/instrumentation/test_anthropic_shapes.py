"""Anthropic shapes through the real ``anthropic`` SDK over real HTTP and SSE: streams
(``stream=True`` and the ``messages.stream()`` helper), cumulative ``message_delta``
usage, gateways that report cache tokens late, 1-hour cache writes, Vertex, and the
SDK's native tracing kept from producing a second billable span."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import featurecost
from tests.conftest import RunningStandIn, Spans

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: cacheable
MESSAGES = [{"role": "user", "content": "Summarize this thread."}]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def client_for(stand_in: RunningStandIn, spans: Spans | None = None) -> anthropic.Anthropic:
    options: dict[str, Any] = {}
    if spans is not None:
        # the SDK's own tracing, on: it must not add a second billable span
        options["open_telemetry"] = {"tracer_provider": spans.provider}
    return anthropic.Anthropic(base_url=stand_in.url, api_key="sk-ant-test", max_retries=0, **options)


def assert_usage(span: ReadableSpan, usage: dict[str, Any]) -> None:
    a = attributes(span)
    total = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    assert a["featurecost.usage.source"] == "reported"
    assert a["gen_ai.usage.input_tokens"] == total
    assert a["gen_ai.usage.cache_read.input_tokens"] == usage["cache_read_input_tokens"]
    assert a["gen_ai.usage.cache_creation.input_tokens"] == usage["cache_creation_input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert a["featurecost.usage.cache_creation.5m_input_tokens"] == usage["cache_creation"]["ephemeral_5m_input_tokens"]
    assert a["featurecost.usage.cache_creation.1h_input_tokens"] == usage["cache_creation"]["ephemeral_1h_input_tokens"]
    assert "featurecost.usage.partial" not in a


def cached_system(ttl: str | None = None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return [{"type": "text", "text": LONG_SYSTEM, "cache_control": control}]


def test_stream_true_takes_cumulative_usage_once(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)
    with featurecost.attribute(feature="summarize", tenant="globex"):
        for _ in range(2):  # write the cache, then read it
            events = list(
                client.messages.create(
                    model="claude-haiku-4-5",
                    max_tokens=300,
                    system=cached_system(),  # type: ignore[arg-type]
                    messages=MESSAGES,  # type: ignore[arg-type]
                    stream=True,
                )
            )
            assert events[0].type == "message_start"
            assert events[-1].type == "message_stop"
    write, read = stand_in.served
    assert write["usage"]["cache_creation_input_tokens"] > 0
    assert read["usage"]["cache_read_input_tokens"] > 0
    spans = instrumented.llm()
    assert len(spans) == 2, [s.instrumentation_scope for s in spans]
    for span, served in zip(spans, (write, read), strict=True):
        # message_start said output_tokens=1; message_delta's count is the total, not an increment
        assert_usage(span, served["usage"])
        a = attributes(span)
        assert a["featurecost.request.stream"] is True
        assert a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
        assert a["gen_ai.response.finish_reasons"] == ("end_turn",) or a["gen_ai.response.finish_reasons"] == (
            "max_tokens",
        )
        assert a["featurecost.feature"] == "summarize"
        assert a["featurecost.response.service_tier"] == "standard"


def test_gateway_reporting_cache_tokens_in_message_delta(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    list(
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            system=cached_system("1h"),  # type: ignore[arg-type]
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-stand-in-usage-style": "gateway"},
        )
    )
    usage = stand_in.served[0]["usage"]
    assert usage["cache_creation"]["ephemeral_1h_input_tokens"] > 0
    (span,) = instrumented.llm()
    assert_usage(span, usage)


def test_messages_stream_helper_sync_and_async(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)
    with (
        featurecost.attribute(feature="helper"),
        client.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=200,
            messages=MESSAGES,  # type: ignore[arg-type]
        ) as stream,
    ):
        text = stream.get_final_text()
    assert text

    async def run() -> None:
        async_client = anthropic.AsyncAnthropic(
            base_url=stand_in.url,
            api_key="sk-ant-test",
            max_retries=0,
            open_telemetry={"tracer_provider": instrumented.provider},  # type: ignore[typeddict-item]
        )
        with featurecost.attribute(feature="helper-async"):
            async with async_client.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=200,
                messages=MESSAGES,  # type: ignore[arg-type]
            ) as astream:
                await astream.get_final_message()
            events = await async_client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=50,
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
            )
            async for _ in events:
                pass
        await async_client.close()

    asyncio.run(run())
    spans = instrumented.llm()
    assert len(spans) == 3, [s.instrumentation_scope for s in spans]
    for span, served in zip(spans, stand_in.served, strict=True):
        assert_usage(span, served["usage"])
    assert [attributes(s)["featurecost.feature"] for s in spans] == ["helper", "helper-async", "helper-async"]


def test_vertex_client(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = anthropic.AnthropicVertex(
        base_url=f"{stand_in.url}/v1", region="us-east5", project_id="proj", access_token="tok", max_retries=0
    )
    client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    list(client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    paths = [r["path"] for r in stand_in.stand_in.requests]
    assert paths[0].endswith("/models/claude-haiku-4-5:rawPredict")
    assert paths[1].endswith("/models/claude-haiku-4-5:streamRawPredict")
    for span, served in zip(instrumented.llm(), stand_in.served, strict=True):
        assert attributes(span)["gen_ai.provider.name"] == "gcp.vertex_ai"
        assert attributes(span)["gen_ai.request.model"] == "claude-haiku-4-5"
        assert_usage(span, served["usage"])


def test_raw_response(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["request-id"].startswith("req_standin")
    assert raw.parse().usage.output_tokens == stand_in.served[0]["usage"]["output_tokens"]
    (span,) = instrumented.llm()
    assert_usage(span, stand_in.served[0]["usage"])


def test_stream_error_keeps_the_usage_reported_so_far(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        for _ in client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-stand-in-stream-error-after": "1"},
        ):
            pass
    (span,) = instrumented.llm()
    a = attributes(span)
    assert span.status.status_code is StatusCode.ERROR
    assert a["featurecost.usage.partial"] is True
    # message_start reported the input side; that much is billable and is kept
    assert a["featurecost.usage.source"] == "reported"
    assert a["gen_ai.usage.input_tokens"] == stand_in.served[0]["usage"]["input_tokens"]


def test_stream_abandoned_is_ended_by_garbage_collection(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)

    def read_start() -> None:
        stream = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        next(iter(stream))

    read_start()
    gc.collect()
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["featurecost.usage.partial"] is True
    assert a["gen_ai.usage.output_tokens"] == 1  # what message_start reported; nothing more is guessed


def test_stream_helper_closed_early(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        next(iter(stream))
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.usage.partial"] is True


def test_parse_structured_output_sync_and_async(stand_in: RunningStandIn, instrumented: Spans) -> None:
    from pydantic import BaseModel

    class Summary(BaseModel):
        headline: str

    client = client_for(stand_in, instrumented)
    parsed = client.messages.parse(
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=MESSAGES,  # type: ignore[arg-type]
        output_format=Summary,
    )
    assert isinstance(parsed.parsed_output, Summary)

    async def run() -> None:
        async_client = anthropic.AsyncAnthropic(base_url=stand_in.url, api_key="k", max_retries=0)
        await async_client.messages.parse(
            model="claude-haiku-4-5",
            max_tokens=200,
            messages=MESSAGES,  # type: ignore[arg-type]
            output_format=Summary,
        )
        raw = await async_client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
        assert (await raw.parse()).id.startswith("msg_standin")
        await async_client.close()

    asyncio.run(run())
    spans = instrumented.llm()
    assert len(spans) == 3, [s.instrumentation_scope for s in spans]
    for span, served in zip(spans, stand_in.served, strict=True):
        assert_usage(span, served["usage"])


def test_raw_response_of_a_stream_async(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> int:
        client = anthropic.AsyncAnthropic(base_url=stand_in.url, api_key="k", max_retries=0)
        raw = await client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        events = [event async for event in await raw.parse()]
        await client.close()
        return len(events)

    assert asyncio.run(run()) > 4
    (span,) = instrumented.llm()
    assert_usage(span, stand_in.served[0]["usage"])


def test_bedrock_client(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = anthropic.AnthropicBedrock(
        base_url=f"{stand_in.url}/anthropic-bedrock", aws_region="us-east-1", api_key="bedrock-key", max_retries=0
    )
    with featurecost.attribute(feature="bedrock"):
        client.messages.create(
            model="anthropic.claude-haiku-4-5-20251001-v1:0",
            max_tokens=64,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert (
        stand_in.stand_in.requests[0]["path"]
        == "/anthropic-bedrock/model/anthropic.claude-haiku-4-5-20251001-v1:0/invoke"
    )
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.model"] == "anthropic.claude-haiku-4-5-20251001-v1:0"
    assert a["featurecost.feature"] == "bedrock"
    assert_usage(span, stand_in.served[0]["usage"])


def test_beta_messages(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in, instrumented)
    client.beta.messages.create(model="claude-haiku-4-5", max_tokens=32, messages=MESSAGES)  # type: ignore[arg-type]
    with client.beta.messages.stream(model="claude-haiku-4-5", max_tokens=32, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        stream.until_done()
    spans = instrumented.llm()
    assert len(spans) == 2, [s.instrumentation_scope for s in spans]
    for span, served in zip(spans, stand_in.served, strict=True):
        assert_usage(span, served["usage"])
