"""The real mistralai SDK, over real HTTP, against the Mistral API stand-in."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mistralai.client.chat
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.extra.observability import configure_telemetry
from opentelemetry.trace import StatusCode

import featurecost
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.mistral import MistralStandIn

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: cached on repeat


@pytest.fixture
def mistral() -> Iterator[tuple[str, MistralStandIn]]:
    stand_in = MistralStandIn()
    with serve_in_thread(stand_in.app()) as url:
        yield url, stand_in


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    MistralAIInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    MistralAIInstrumentor().uninstrument()


def _messages(text: str = "Where is my invoice?") -> list[Any]:
    return [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": text}]


def test_chat_complete_with_cache_and_attribution(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, stand_in = mistral
    client = Mistral(api_key="test-key", server_url=url)
    # the SDK's own tracing switched on: it must not add a second billable span
    configure_telemetry(client, provider=instrumented.provider)
    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-3"):
        for _ in range(2):
            client.chat.complete(model="mistral-small-latest", messages=_messages(), max_tokens=40)
    llm = instrumented.llm()
    assert len(llm) == 2, [s.instrumentation_scope for s in llm]
    assert "prompt_tokens_details" not in stand_in.served[0]["usage"]
    assert stand_in.served[1]["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    for span, served in zip(llm, stand_in.served, strict=True):
        a = span.attributes or {}
        usage = served["usage"]
        assert span.name == "chat mistral-small-latest"
        assert a["gen_ai.provider.name"] == "mistral_ai"
        assert a["gen_ai.request.max_tokens"] == 40
        assert a["gen_ai.response.model"] == served["model"]
        assert a["gen_ai.response.id"] == served["id"]
        assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
        assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
        assert a["gen_ai.usage.cache_read.input_tokens"] == usage.get("prompt_tokens_details", {}).get(
            "cached_tokens", 0
        )
        assert a["server.address"] == "127.0.0.1"
        assert a["featurecost.feature"] == "support-bot"
        assert a["featurecost.tenant"] == "acme"
        assert a["user.id"] == "u-3"
        assert "gen_ai.input.messages" not in a


def test_stream_to_the_end(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, stand_in = mistral
    client = Mistral(api_key="test-key", server_url=url)
    with featurecost.attribute(feature="live-reply"):
        stream = client.chat.stream(model="mistral-large-latest", messages=_messages("stream please"))
    with stream as events:
        texts = [e.data.choices[0].delta.content for e in events]
    assert len(texts) == 4
    (span,) = instrumented.llm()
    a = span.attributes or {}
    served = stand_in.served[0]
    assert a["featurecost.feature"] == "live-reply"
    assert "featurecost.usage.partial" not in a
    assert a["gen_ai.usage.input_tokens"] == served["usage"]["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == served["usage"]["completion_tokens"]
    assert a["gen_ai.response.finish_reasons"] == (served["finish_reason"],)


def test_stream_left_early_by_with_block(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, _ = mistral
    client = Mistral(api_key="test-key", server_url=url)
    with client.chat.stream(model="mistral-small-latest", messages=_messages("x")) as events:
        for _ in events:
            break
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "missing"  # usage only arrives on the last chunk


def test_stream_dropped_is_ended_by_gc(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, _ = mistral
    client = Mistral(api_key="test-key", server_url=url)
    stream = client.chat.stream(model="mistral-small-latest", messages=_messages("y"))
    next(stream)
    del stream
    gc.collect()
    (span,) = instrumented.llm()
    assert (span.attributes or {})["featurecost.usage.partial"] is True


def test_unknown_model_error(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, _ = mistral
    client = Mistral(api_key="test-key", server_url=url)
    with pytest.raises(SDKError) as raised:
        client.chat.complete(model="mistral-gigantic", messages=_messages())
    assert raised.value.status_code == 400
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "SDKError"
    assert a["featurecost.usage.source"] == "missing"


def test_embeddings(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, stand_in = mistral
    client = Mistral(api_key="test-key", server_url=url)
    with featurecost.attribute(feature="kb-index"):
        client.embeddings.create(model="mistral-embed", inputs=["one doc", "another document"])
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == stand_in.served[0]["usage"]["prompt_tokens"]
    assert a["featurecost.feature"] == "kb-index"


def test_async_complete_stream_and_embed(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, stand_in = mistral

    async def run() -> None:
        async with Mistral(api_key="test-key", server_url=url) as client:
            with featurecost.attribute(feature="async-m"):
                await client.chat.complete_async(model="mistral-small-latest", messages=_messages("a"))
                stream = await client.chat.stream_async(model="mistral-small-latest", messages=_messages("b"))
                async for _ in stream:
                    pass
                await client.embeddings.create_async(model="mistral-embed", inputs="c")

    asyncio.run(run())
    spans = sorted(instrumented.llm(), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["featurecost.feature"] for s in spans] == ["async-m"] * 3
    for span, served in zip(spans, stand_in.served, strict=True):
        assert (span.attributes or {})["gen_ai.usage.input_tokens"] == served["usage"]["prompt_tokens"]
    assert "featurecost.usage.partial" not in (spans[1].attributes or {})


def test_threads_keep_their_own_attribution(mistral: tuple[str, MistralStandIn], instrumented: Spans) -> None:
    url, _ = mistral
    client = Mistral(api_key="test-key", server_url=url)

    def call(tenant: str) -> None:
        with featurecost.attribute(feature="bulk", tenant=tenant):
            client.chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": tenant}])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: contextvars.copy_context().run(call, t), [f"t-{i}" for i in range(6)]))
    assert sorted((s.attributes or {})["featurecost.tenant"] for s in instrumented.llm()) == [
        f"t-{i}" for i in range(6)
    ]


def test_uninstrument_restores_the_sdk(mistral: tuple[str, MistralStandIn], spans: Spans) -> None:
    url, _ = mistral
    original = mistralai.client.chat.Chat.complete
    MistralAIInstrumentor().instrument(tracer_provider=spans.provider)
    assert mistralai.client.chat.Chat.complete is not original
    MistralAIInstrumentor().uninstrument()
    assert mistralai.client.chat.Chat.complete is original
    client = Mistral(api_key="test-key", server_url=url)
    client.chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": "hi"}])
    assert spans.llm() == []
