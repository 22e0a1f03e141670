"""The real cohere SDK (v2 API), over real HTTP, against the Cohere stand-in."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cohere
import cohere.v2.client
import cohere.v2.raw_client
import pytest
from opentelemetry.trace import StatusCode

import featurecost
from featurecost.instrumentation.cohere import CohereInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.cohere import CohereStandIn

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: cached on repeat


@pytest.fixture
def co() -> Iterator[tuple[str, CohereStandIn]]:
    stand_in = CohereStandIn()
    with serve_in_thread(stand_in.app()) as url:
        yield url, stand_in


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    CohereInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    CohereInstrumentor().uninstrument()


def _messages(text: str = "Where is my invoice?") -> list[Any]:
    return [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": text}]


def test_chat_records_billed_units_and_cache(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, stand_in = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-9"):
        for _ in range(2):
            client.chat(model="command-a-03-2025", messages=_messages(), max_tokens=60)
    llm = instrumented.llm()
    assert stand_in.served[1]["usage"]["cached_tokens"] > 0
    for span, served in zip(llm, stand_in.served, strict=True):
        a = span.attributes or {}
        billed, processed = served["usage"]["billed_units"], served["usage"]["tokens"]
        assert processed["input_tokens"] > billed["input_tokens"]  # the template is not billed
        assert span.name == "chat command-a-03-2025"
        assert a["gen_ai.provider.name"] == "cohere"
        assert a["gen_ai.request.max_tokens"] == 60
        assert a["gen_ai.response.id"] == served["id"]
        assert a["gen_ai.response.finish_reasons"] == (served["finish_reason"],)
        assert a["gen_ai.usage.input_tokens"] == billed["input_tokens"]
        assert a["gen_ai.usage.output_tokens"] == billed["output_tokens"]
        assert a["gen_ai.usage.cache_read.input_tokens"] == served["usage"]["cached_tokens"]
        assert a["server.address"] == "127.0.0.1"
        assert a["featurecost.feature"] == "support-bot"
        assert a["featurecost.tenant"] == "acme"
        assert a["user.id"] == "u-9"


def test_chat_stream_to_the_end(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, stand_in = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    with featurecost.attribute(feature="live"):
        stream = client.chat_stream(model="command-r7b-12-2024", messages=[{"role": "user", "content": "go"}])
    kinds = [event.type for event in stream]  # iterated outside the attribution block
    assert kinds[0] == "message-start"
    assert kinds[-1] == "message-end"
    (span,) = instrumented.llm()
    a = span.attributes or {}
    served = stand_in.served[0]
    assert a["featurecost.feature"] == "live"
    assert "featurecost.usage.partial" not in a
    assert a["gen_ai.response.id"] == served["id"]
    assert a["gen_ai.usage.input_tokens"] == served["usage"]["billed_units"]["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == served["usage"]["billed_units"]["output_tokens"]


def test_chat_stream_left_early(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, _ = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    for _ in client.chat_stream(model="command-r7b-12-2024", messages=[{"role": "user", "content": "go"}]):
        break
    gc.collect()
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "missing"
    assert span.status.status_code is not StatusCode.ERROR


def test_unknown_model(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, _ = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    with pytest.raises(cohere.NotFoundError):
        client.chat(model="command-z", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(cohere.NotFoundError):
        list(client.chat_stream(model="command-z", messages=[{"role": "user", "content": "hi"}]))
    plain, streamed = instrumented.llm()
    for span in (plain, streamed):
        a = span.attributes or {}
        assert span.status.status_code is StatusCode.ERROR
        assert a["error.type"] == "NotFoundError"
        assert a["featurecost.usage.source"] == "missing"


def test_embed(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, stand_in = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    with featurecost.attribute(feature="kb-index"):
        client.embed(model="embed-v4.0", input_type="search_document", texts=["a doc", "another doc"])
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == stand_in.served[0]["meta"]["billed_units"]["input_tokens"]
    assert a["featurecost.feature"] == "kb-index"


def test_async_chat_stream_and_embed(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, stand_in = co

    async def run() -> None:
        client = cohere.AsyncClientV2(api_key="test-key", base_url=url)
        with featurecost.attribute(feature="async-c"):
            await client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": "a"}])
            async for _ in client.chat_stream(model="command-a-03-2025", messages=[{"role": "user", "content": "b"}]):
                pass
            await client.embed(model="embed-v4.0", input_type="search_query", texts=["c"])

    asyncio.run(run())
    spans = sorted(instrumented.llm(), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["featurecost.feature"] for s in spans] == ["async-c"] * 3
    chat, streamed, embedded = spans
    assert (chat.attributes or {})["gen_ai.usage.input_tokens"] == stand_in.served[0]["usage"]["billed_units"][
        "input_tokens"
    ]
    assert (streamed.attributes or {})["gen_ai.usage.output_tokens"] == stand_in.served[1]["usage"]["billed_units"][
        "output_tokens"
    ]
    assert "featurecost.usage.partial" not in (streamed.attributes or {})
    assert (embedded.attributes or {})["gen_ai.usage.input_tokens"] == stand_in.served[2]["meta"]["billed_units"][
        "input_tokens"
    ]


def test_async_stream_closed_early(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, _ = co

    async def run() -> None:
        client = cohere.AsyncClientV2(api_key="test-key", base_url=url)
        stream = client.chat_stream(model="command-a-03-2025", messages=[{"role": "user", "content": "a"}])
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(run())
    (span,) = instrumented.llm()
    assert (span.attributes or {})["featurecost.usage.partial"] is True


def test_threads_keep_their_own_attribution(co: tuple[str, CohereStandIn], instrumented: Spans) -> None:
    url, _ = co
    client = cohere.ClientV2(api_key="test-key", base_url=url)

    def call(tenant: str) -> None:
        with featurecost.attribute(feature="bulk", tenant=tenant):
            client.chat(model="command-r7b-12-2024", messages=[{"role": "user", "content": tenant}])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: contextvars.copy_context().run(call, t), [f"t-{i}" for i in range(6)]))
    assert sorted((s.attributes or {})["featurecost.tenant"] for s in instrumented.llm()) == [
        f"t-{i}" for i in range(6)
    ]


def test_uninstrument_restores_the_sdk(co: tuple[str, CohereStandIn], spans: Spans) -> None:
    url, _ = co
    raw = cohere.v2.raw_client
    targets = [(cls, m) for cls in (cohere.v2.client.V2Client, cohere.v2.client.AsyncV2Client, raw.RawV2Client,
               raw.AsyncRawV2Client) for m in ("chat", "chat_stream", "embed")]  # fmt: skip
    originals = [vars(cls)[m] for cls, m in targets]
    CohereInstrumentor().instrument(tracer_provider=spans.provider)
    assert all(vars(cls)[m] is not o for (cls, m), o in zip(targets, originals, strict=True))
    CohereInstrumentor().uninstrument()
    assert [vars(cls)[m] for cls, m in targets] == originals
    client = cohere.ClientV2(api_key="test-key", base_url=url)
    client.chat(model="command-r7b-12-2024", messages=[{"role": "user", "content": "hi"}])
    assert spans.llm() == []


@pytest.mark.parametrize("built", ["before", "after"])
def test_clients_built_before_instrument_are_traced_once(
    co: tuple[str, CohereStandIn], spans: Spans, built: str
) -> None:
    """``ClientV2`` binds chat/chat_stream on the instance when built; one built before
    ``instrument()`` (a module-level client, instrumented later) is traced through its raw
    client — and one built after is not traced twice."""
    url, stand_in = co
    clients: dict[str, Any] = {}

    def build() -> None:
        clients["sync"] = cohere.ClientV2(api_key="test-key", base_url=url)
        clients["async"] = cohere.AsyncClientV2(api_key="test-key", base_url=url)

    if built == "before":
        build()
    CohereInstrumentor().instrument(tracer_provider=spans.provider)
    if built == "after":
        build()
    sync_client, async_client = clients["sync"], clients["async"]
    messages: Any = [{"role": "user", "content": "a"}]

    async def run_async() -> None:
        await async_client.chat(model="command-a-03-2025", messages=messages)
        async for _ in async_client.chat_stream(model="command-a-03-2025", messages=messages):
            pass

    try:
        with featurecost.attribute(feature="early-client"):
            sync_client.chat(model="command-a-03-2025", messages=messages)
            for _ in sync_client.chat_stream(model="command-a-03-2025", messages=messages):
                pass
            left_early = sync_client.chat_stream(model="command-a-03-2025", messages=messages)
            next(left_early)
            left_early.close()
            sync_client.embed(model="embed-v4.0", input_type="search_query", texts=["c"])
            asyncio.run(run_async())
    finally:
        CohereInstrumentor().uninstrument()
    llm = sorted(spans.llm(), key=lambda s: s.start_time or 0)
    assert len(llm) == len(stand_in.served) == 6  # one span per request the provider served
    assert all((s.attributes or {})["featurecost.feature"] == "early-client" for s in llm)
    chat, streamed, partial, embedded, async_chat, async_streamed = llm
    billed = [served.get("usage", served.get("meta", {})).get("billed_units", {}) for served in stand_in.served]
    assert (chat.attributes or {})["gen_ai.usage.input_tokens"] == billed[0]["input_tokens"]
    assert (streamed.attributes or {})["gen_ai.usage.output_tokens"] == billed[1]["output_tokens"]
    assert "featurecost.usage.partial" not in (streamed.attributes or {})
    assert (partial.attributes or {})["featurecost.usage.partial"] is True
    assert (embedded.attributes or {})["gen_ai.operation.name"] == "embeddings"
    assert (async_chat.attributes or {})["gen_ai.usage.input_tokens"] == billed[4]["input_tokens"]
    assert (async_streamed.attributes or {})["gen_ai.usage.output_tokens"] == billed[5]["output_tokens"]
