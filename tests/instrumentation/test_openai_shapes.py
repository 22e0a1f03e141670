"""Every OpenAI API shape, through the real ``openai`` SDK over real HTTP and SSE, against
the stand-in. Expected usage is read from what the stand-in served, never computed here."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

import featurecost
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans

USER = [{"role": "user", "content": "Where is my invoice?"}]


def client_for(stand_in: RunningStandIn) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_chat_usage(span: ReadableSpan, usage: dict[str, Any]) -> None:
    a = attributes(span)
    assert a["featurecost.usage.source"] == "reported"
    assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert a["gen_ai.usage.cache_read.input_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert "featurecost.usage.partial" not in a


def test_chat_stream_gets_usage_injected_and_the_caller_sees_its_own_stream(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    client = client_for(stand_in)
    with featurecost.attribute(feature="chat-stream", tenant="acme"):
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
    sent = stand_in.stand_in.requests[-1]["body"]
    assert sent["stream_options"] == {"include_usage": True}
    # the usage-only chunk we asked for is not handed to a caller who did not ask for it
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    (span,) = instrumented.llm()
    assert_chat_usage(span, stand_in.served[-1]["usage"])
    a = attributes(span)
    assert a["featurecost.request.stream"] is True
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["featurecost.feature"] == "chat-stream"
    assert a["featurecost.tenant"] == "acme"


def test_caller_stream_options_are_merged_never_overridden(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    # caller asked for usage itself: it gets the usage chunk
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].choices == []
    # other options are kept and include_usage is added next to them
    list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_obfuscation": False},
        )
    )
    assert stand_in.stand_in.requests[-1]["body"]["stream_options"] == {
        "include_obfuscation": False,
        "include_usage": True,
    }
    # an explicit False is the caller's decision: no usage, recorded as missing, not guessed
    list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": False},
        )
    )
    assert stand_in.stand_in.requests[-1]["body"]["stream_options"] == {"include_usage": False}
    first, second, third = instrumented.llm()
    assert_chat_usage(first, stand_in.served[0]["usage"])
    assert_chat_usage(second, stand_in.served[1]["usage"])
    assert attributes(third)["featurecost.usage.source"] == "missing"
    assert "gen_ai.usage.input_tokens" not in attributes(third)


def test_injection_can_be_switched_off(stand_in: RunningStandIn, spans: Spans) -> None:
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider, inject_stream_usage=False)
    try:
        list(client_for(stand_in).chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
    finally:
        OpenAIInstrumentor().uninstrument()
    assert "stream_options" not in stand_in.stand_in.requests[-1]["body"]
    (span,) = spans.llm()
    assert attributes(span)["featurecost.usage.source"] == "missing"


def test_stream_helper_and_parse(stand_in: RunningStandIn, instrumented: Spans) -> None:
    class Answer(BaseModel):
        text: str

    client = client_for(stand_in)
    with client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    completion = client.chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=Answer)  # type: ignore[arg-type]
    assert isinstance(completion.choices[0].message.parsed, Answer)
    helper, parsed = instrumented.llm()
    assert_chat_usage(helper, stand_in.served[0]["usage"])
    assert_chat_usage(parsed, stand_in.served[1]["usage"])


def test_responses_api_whole_and_streamed(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    with featurecost.attribute(feature="agent"):
        response = client.responses.create(model="o4-mini", input="Plan the migration.", instructions="Be brief.")
        events = list(client.responses.create(model="gpt-4o-mini", input="Plan the migration.", stream=True))
        with client.responses.stream(model="gpt-4o-mini", input="Again, streamed by the helper.") as stream:
            helper_final = stream.get_final_response()
    assert response.output_text
    assert events[-1].type == "response.completed"
    assert helper_final.usage is not None
    spans = instrumented.llm()
    assert len(spans) == 3
    for span, served in zip(spans, stand_in.served, strict=True):
        a = attributes(span)
        usage = served["usage"]
        assert a["gen_ai.usage.input_tokens"] == usage["input_tokens"]
        assert a["gen_ai.usage.output_tokens"] == usage["output_tokens"]
        assert a["gen_ai.usage.cache_read.input_tokens"] == usage["input_tokens_details"]["cached_tokens"]
        assert a["gen_ai.response.model"] == served["model"]
        assert a["featurecost.feature"] == "agent"
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
    # reasoning is a subset of output, reported as such
    assert stand_in.served[0]["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    assert (
        attributes(spans[0])["featurecost.usage.reasoning_tokens"]
        == (stand_in.served[0]["usage"]["output_tokens_details"]["reasoning_tokens"])
    )


def test_embeddings_and_legacy_completions(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    embedded = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta gamma"])
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=30)
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True))
    assert len(embedded.data) == 2
    assert len(embedded.data[0].embedding) == 8
    assert completion.choices[0].text
    assert all(chunk.choices for chunk in chunks)
    embed_span, completion_span, stream_span = instrumented.llm()
    embed_usage = stand_in.served[0]["usage"]
    a = attributes(embed_span)
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == embed_usage["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == 0
    for span, served in ((completion_span, stand_in.served[1]), (stream_span, stand_in.served[2])):
        assert attributes(span)["gen_ai.operation.name"] == "text_completion"
        assert_chat_usage(span, served["usage"])


def test_with_raw_response_whole_and_streamed(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert raw.headers["x-request-id"].startswith("req_standin")
    assert raw.parse().choices[0].message.content
    raw_stream = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    chunks = list(raw_stream.parse())
    assert all(chunk.choices for chunk in chunks)
    whole, streamed = instrumented.llm()
    assert_chat_usage(whole, stand_in.served[0]["usage"])
    assert_chat_usage(streamed, stand_in.served[1]["usage"])


def test_azure_client(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = openai.AzureOpenAI(azure_endpoint=stand_in.url, api_key="k", api_version="2024-10-21", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
    assert stand_in.stand_in.requests[0]["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    for span, served in zip(instrumented.llm(), stand_in.served, strict=True):
        assert attributes(span)["gen_ai.provider.name"] == "azure.ai.openai"
        assert attributes(span)["server.address"] == "127.0.0.1"
        assert_chat_usage(span, served["usage"])


def test_old_azure_api_versions_are_not_sent_stream_options(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = openai.AzureOpenAI(azure_endpoint=stand_in.url, api_key="k", api_version="2024-06-01", max_retries=0)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
    assert "stream_options" not in stand_in.stand_in.requests[0]["body"]
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.usage.source"] == "missing"


def test_async_client_streams(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> int:
        async with openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0) as client:
            with featurecost.attribute(feature="async-stream"):
                stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[call-overload]
                n = 0
                async for _ in stream:
                    n += 1
                async with client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as helper:  # type: ignore[arg-type]
                    await helper.get_final_completion()
                events = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
                async for _ in events:
                    pass
                await client.embeddings.create(model="text-embedding-3-small", input="x")
                return n

    assert asyncio.run(run()) > 0
    chat, helper, responses, embeddings = instrumented.llm()
    assert_chat_usage(chat, stand_in.served[0]["usage"])
    assert_chat_usage(helper, stand_in.served[1]["usage"])
    assert attributes(responses)["gen_ai.usage.output_tokens"] == stand_in.served[2]["usage"]["output_tokens"]
    assert attributes(embeddings)["gen_ai.usage.input_tokens"] == stand_in.served[3]["usage"]["prompt_tokens"]
    assert all(attributes(s)["featurecost.feature"] == "async-stream" for s in (chat, helper, responses, embeddings))


def test_stream_closed_early_is_ended_and_marked_partial(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    with client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as stream:  # type: ignore[call-overload]
        next(iter(stream))
        assert instrumented.llm() == []  # still open while the caller reads
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["featurecost.usage.partial"] is True
    # the final usage chunk never arrived: nothing to bill from, and nothing guessed
    assert a["featurecost.usage.source"] == "missing"


def test_stream_abandoned_after_break_is_ended_by_garbage_collection(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    client = client_for(stand_in)

    def read_one() -> None:
        for _chunk in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):  # type: ignore[call-overload]
            break

    read_one()
    gc.collect()
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.usage.partial"] is True


def test_stream_helper_closed_early_ends_the_span(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    with client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:  # type: ignore[arg-type]
        next(iter(stream))
    # the helper closes the HTTP response, not our stream: that ends the span too
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.usage.partial"] is True
    del stream


def test_error_in_the_middle_of_a_stream(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-stand-in-stream-error-after": "2"},
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        for _ in stream:
            pass
    (span,) = instrumented.llm()
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "APIError"
    assert attributes(span)["featurecost.usage.source"] == "missing"


def test_responses_stream_error_event_marks_the_span(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    events = list(
        client.responses.create(
            model="gpt-4o-mini", input="hi", stream=True, extra_headers={"x-stand-in-stream-error-after": "1"}
        )
    )
    # the SDK yields the provider's error event rather than raising it
    assert events[-1].type == "error"
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["error.type"] == "server_error"
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "missing"


def test_audio_output_is_a_subset_of_output(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
    )
    assert reply.choices[0].message.audio is not None
    usage = stand_in.served[0]["usage"]
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert a["featurecost.usage.output_audio_tokens"] == usage["completion_tokens_details"]["audio_tokens"] > 0


def test_async_parse_legacy_and_raw_shapes(stand_in: RunningStandIn, instrumented: Spans) -> None:
    class Answer(BaseModel):
        text: str

    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0) as client:
            with featurecost.attribute(feature="async-shapes"):
                parsed = await client.chat.completions.parse(
                    model="gpt-4o-mini",
                    messages=USER,  # type: ignore[arg-type]
                    response_format=Answer,
                )
                assert isinstance(parsed.choices[0].message.parsed, Answer)
                await client.responses.parse(model="gpt-4o-mini", input="hi")
                async for _ in await client.completions.create(
                    model="gpt-3.5-turbo-instruct", prompt="hi", stream=True
                ):
                    pass
                raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
                assert raw.parse().usage is not None

    asyncio.run(run())
    spans = instrumented.llm()
    assert [attributes(s)["gen_ai.operation.name"] for s in spans] == ["chat", "chat", "text_completion", "chat"]
    for span, served in zip(spans, stand_in.served, strict=True):
        a = attributes(span)
        usage = served["usage"]
        assert a["featurecost.feature"] == "async-shapes"
        assert a["gen_ai.usage.input_tokens"] == usage.get("prompt_tokens", usage.get("input_tokens"))
        assert a["gen_ai.usage.output_tokens"] == usage.get("completion_tokens", usage.get("output_tokens"))
        assert "featurecost.usage.partial" not in a


def test_with_streaming_response_body_is_left_to_the_caller(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=USER) as response:  # type: ignore[arg-type]
        body = b"".join(response.iter_bytes())
    assert b'"usage"' in body  # the caller got the whole body: we read none of it
    (span,) = instrumented.llm()
    # usage was in a body we must not consume: recorded as missing, not guessed
    assert attributes(span)["featurecost.usage.source"] == "missing"


def test_responses_stream_helper_closed_early(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        next(iter(stream))
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "missing"
