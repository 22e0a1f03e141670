"""The real google-genai SDK, over real HTTP, against the Gemini API stand-in."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import featurecost
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.gemini import GeminiStandIn

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: implicit cache


@pytest.fixture
def gemini() -> Iterator[tuple[str, GeminiStandIn]]:
    stand_in = GeminiStandIn()
    with serve_in_thread(stand_in.app()) as url:
        yield url, stand_in


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    GoogleGenAIInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    GoogleGenAIInstrumentor().uninstrument()


def _client(url: str) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))


def _assert_usage(span: ReadableSpan, usage: dict[str, Any]) -> None:
    a = span.attributes or {}
    thoughts = usage.get("thoughtsTokenCount", 0)
    assert a["gen_ai.usage.input_tokens"] == usage["promptTokenCount"] + usage.get("toolUsePromptTokenCount", 0)
    assert a["gen_ai.usage.output_tokens"] == usage["candidatesTokenCount"] + thoughts
    assert a["gen_ai.usage.cache_read.input_tokens"] == usage.get("cachedContentTokenCount", 0)
    assert a.get("featurecost.usage.reasoning_tokens", 0) == thoughts


def test_generate_content_normalizes_thoughts_and_implicit_cache(
    gemini: tuple[str, GeminiStandIn], instrumented: Spans
) -> None:
    url, stand_in = gemini
    client = _client(url)
    config = types.GenerateContentConfig(system_instruction=LONG_SYSTEM, max_output_tokens=64)
    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-7"):
        for _ in range(2):
            client.models.generate_content(model="gemini-2.5-flash", contents="Where is my invoice?", config=config)
    first, second = instrumented.llm()
    miss, hit = (served["usageMetadata"] for served in stand_in.served)
    assert "cachedContentTokenCount" not in miss
    assert hit["cachedContentTokenCount"] > 0
    assert hit["thoughtsTokenCount"] > 0
    for span, usage in ((first, miss), (second, hit)):
        a = span.attributes or {}
        assert span.name == "generate_content gemini-2.5-flash"
        assert a["gen_ai.provider.name"] == "gcp.gemini"
        assert a["gen_ai.operation.name"] == "generate_content"
        assert a["gen_ai.request.model"] == "gemini-2.5-flash"
        assert a["gen_ai.request.max_tokens"] == 64
        assert a["gen_ai.response.model"] == "gemini-2.5-flash"
        assert a["server.address"] == "127.0.0.1"
        assert a["featurecost.usage.source"] == "reported"
        assert a["featurecost.feature"] == "support-bot"
        assert a["featurecost.tenant"] == "acme"
        assert a["user.id"] == "u-7"
        assert "featurecost.usage.partial" not in a
        _assert_usage(span, usage)
    assert first.attributes["gen_ai.response.finish_reasons"] in (("STOP",), ("MAX_TOKENS",))  # type: ignore[index]


def test_tool_use_prompt_tokens_count_as_input(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    config = types.GenerateContentConfig(
        tools=[types.Tool(google_search=types.GoogleSearch())],
        thinking_config=types.ThinkingConfig(thinking_budget=0),
    )
    client = _client(url)
    client.models.generate_content(model="gemini-2.5-flash", contents="news today?", config=config)
    (span,) = instrumented.llm()
    usage = stand_in.served[0]["usageMetadata"]
    assert usage["toolUsePromptTokenCount"] > 0
    assert "thoughtsTokenCount" not in usage
    _assert_usage(span, usage)
    assert "featurecost.usage.reasoning_tokens" not in (span.attributes or {})


def get_weather(city: str) -> str:
    """Weather of a city (a tool the SDK calls by itself: automatic function calling)."""
    return f"sunny in {city}"


def test_automatic_function_calling_bills_every_request(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    client = _client(url)
    config = types.GenerateContentConfig(tools=[get_weather])
    with featurecost.attribute(feature="weather-bot"):
        response = client.models.generate_content(model="gemini-2.0-flash", contents="weather?", config=config)
    # the SDK made two requests but returns only the last one's usage
    assert len(stand_in.served) == 2
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == stand_in.served[1]["usageMetadata"]["promptTokenCount"]
    first, second = instrumented.llm()
    for span, served in zip((first, second), stand_in.served, strict=True):
        assert (span.attributes or {})["featurecost.feature"] == "weather-bot"
        _assert_usage(span, served["usageMetadata"])


def test_stream_to_the_end_reports_final_usage(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    client = _client(url)
    with featurecost.attribute(feature="live-draft"):
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="write a reply")
    # iterated outside the attribution block: the span keeps the attribution of the call
    texts = [chunk.text for chunk in stream]
    assert len(texts) == 3
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["featurecost.feature"] == "live-draft"
    assert a["featurecost.usage.source"] == "reported"
    assert "featurecost.usage.partial" not in a
    assert a["gen_ai.response.id"] == stand_in.served[0]["stream"][-1]["responseId"]
    _assert_usage(span, stand_in.served[0]["usageMetadata"])


def test_stream_left_early_ends_the_span_with_partial_usage(
    gemini: tuple[str, GeminiStandIn], instrumented: Spans
) -> None:
    url, stand_in = gemini
    client = _client(url)
    for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="tell me more"):
        assert chunk.text
        break
    gc.collect()  # the abandoned generator chain is collected: its span must end
    (span,) = instrumented.llm()
    a = span.attributes or {}
    first_chunk_usage = stand_in.served[0]["stream"][0]["usageMetadata"]
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "reported"
    assert a["gen_ai.usage.output_tokens"] == first_chunk_usage["candidatesTokenCount"]
    assert a["gen_ai.usage.output_tokens"] < stand_in.served[0]["usageMetadata"]["candidatesTokenCount"]


def test_error_is_recorded_without_usage(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, _ = gemini
    client = _client(url)
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="gemini-9-ultra", contents="hi")
    assert raised.value.code == 404
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "ClientError"
    assert a["featurecost.usage.source"] == "missing"
    assert "gen_ai.usage.input_tokens" not in a


def test_embeddings(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    client = _client(url)
    with featurecost.attribute(feature="search-index"):
        client.models.embed_content(model="gemini-embedding-001", contents=["first doc", "second document"])
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == stand_in.served[0]["usageMetadata"]["promptTokenCount"]
    assert a["gen_ai.usage.output_tokens"] == 0
    assert a["featurecost.feature"] == "search-index"


def test_async_client_plain_stream_and_embed(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini

    async def run() -> None:
        sync_client = _client(url)
        client = sync_client.aio
        with featurecost.attribute(feature="async-a"):
            await client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        with featurecost.attribute(feature="async-b"):
            stream = await client.models.generate_content_stream(model="gemini-2.5-flash", contents="stream it")
            async for _ in stream:
                pass
            await client.models.embed_content(model="gemini-embedding-001", contents="one")
        await client.aclose()

    asyncio.run(run())
    plain, streamed, embedded = sorted(instrumented.llm(), key=lambda s: s.start_time or 0)
    assert (plain.attributes or {})["featurecost.feature"] == "async-a"
    _assert_usage(plain, stand_in.served[0]["usageMetadata"])
    assert (streamed.attributes or {})["featurecost.feature"] == "async-b"
    assert "featurecost.usage.partial" not in (streamed.attributes or {})
    _assert_usage(streamed, stand_in.served[1]["usageMetadata"])
    assert (embedded.attributes or {})["gen_ai.usage.input_tokens"] == stand_in.served[2]["usageMetadata"][
        "promptTokenCount"
    ]


def test_async_stream_abandoned_mid_way(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, _ = gemini

    async def run() -> None:
        sync_client = _client(url)
        client = sync_client.aio
        stream = await client.models.generate_content_stream(model="gemini-2.5-flash", contents="stream it")
        async for _ in stream:
            break
        await stream.aclose()
        await client.aclose()

    asyncio.run(run())
    (span,) = instrumented.llm()
    assert (span.attributes or {})["featurecost.usage.partial"] is True


def test_threads_keep_their_own_attribution(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    client = _client(url)

    def call(tenant: str) -> None:
        with featurecost.attribute(feature="batch-summaries", tenant=tenant):
            client.models.generate_content(model="gemini-2.0-flash", contents=f"summary for {tenant}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: contextvars.copy_context().run(call, t), [f"t-{i}" for i in range(8)]))
    llm = instrumented.llm()
    assert sorted((s.attributes or {})["featurecost.tenant"] for s in llm) == [f"t-{i}" for i in range(8)]
    assert sum((s.attributes or {})["gen_ai.usage.input_tokens"] for s in llm) == sum(  # type: ignore[misc]
        r["usageMetadata"]["promptTokenCount"] for r in stand_in.served
    )


def test_vertex_ai_provider_and_embedding_statistics(gemini: tuple[str, GeminiStandIn], instrumented: Spans) -> None:
    url, stand_in = gemini
    client = genai.Client(vertexai=True, api_key="test-key", http_options=types.HttpOptions(base_url=url))
    client.models.generate_content(model="gemini-2.5-flash", contents="hello vertex")
    client.models.embed_content(model="text-embedding-005", contents=["first doc", "a second, longer document"])
    generated, embedded = instrumented.llm()
    assert (generated.attributes or {})["gen_ai.provider.name"] == "gcp.vertex_ai"
    _assert_usage(generated, stand_in.served[0]["usageMetadata"])
    a = embedded.attributes or {}
    assert a["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert a["gen_ai.operation.name"] == "embeddings"
    predictions = stand_in.served[1]["predictions"]
    assert a["gen_ai.usage.input_tokens"] == sum(p["embeddings"]["statistics"]["token_count"] for p in predictions)


def test_uninstrument_restores_the_sdk(gemini: tuple[str, GeminiStandIn], spans: Spans) -> None:
    url, _ = gemini
    original = genai.models.Models._generate_content
    GoogleGenAIInstrumentor().instrument(tracer_provider=spans.provider)
    assert genai.models.Models._generate_content is not original
    GoogleGenAIInstrumentor().uninstrument()
    assert genai.models.Models._generate_content is original
    assert genai.models.AsyncModels._generate_content_stream.__qualname__ == "AsyncModels._generate_content_stream"
    client = _client(url)
    client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert spans.llm() == []
