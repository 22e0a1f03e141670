"""Streamed calls of the SDKs whose streams send (or read) on iteration are held to the
same rules as every other call: our attribution baggage never reaches the provider, and
strict mode refuses an unattributed call before anything is sent.

The provider stand-ins are wrapped in an ASGI layer that records the ``baggage`` header
each request arrived with; the SDKs get HTTP clients that inject the current context
into every request, as HTTP client instrumentation does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import cohere
import httpx
import pytest
from mistralai.client import Mistral
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context

import featurecost
from featurecost.instrumentation.attribution import UnattributedCallError
from featurecost.instrumentation.cohere import CohereInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.cohere import CohereStandIn
from testsupport.stand_ins.mistral import MistralStandIn

MESSAGES: Any = [{"role": "user", "content": "Renew ACME's contract."}]


def _recording(app: Any, seen: list[str]) -> Any:
    """``app`` behind a layer that notes the baggage header of every HTTP request."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(dict(scope["headers"]).get(b"baggage", b"").decode())
        await app(scope, receive, send)

    return asgi


def _inject(request: httpx.Request) -> None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    request.headers.update(carrier)


async def _inject_async(request: httpx.Request) -> None:
    _inject(request)


@pytest.fixture
def app_baggage() -> Iterator[None]:
    """The application's own baggage, which is not ours to drop."""
    token = otel_context.attach(baggage.set_baggage("app.region", "eu"))
    yield
    otel_context.detach(token)


def _assert_not_sent(seen: list[str], spans: Spans) -> None:
    assert seen, "no request reached the stand-in"
    for sent in seen:
        assert "featurecost" not in sent, sent
        assert "user.id" not in sent
        assert "app.region=eu" in sent
    assert spans.llm(), "no LLM span"
    for span in spans.llm():
        a = span.attributes or {}
        assert (a["featurecost.tenant"], a["user.id"]) == ("acme", "u-1")
        assert "featurecost.usage.partial" not in a


def test_cohere_streams_do_not_send_attribution(spans: Spans, app_baggage: None) -> None:
    stand_in, seen = CohereStandIn(), list[str]()
    with serve_in_thread(_recording(stand_in.app(), seen)) as url:

        def client() -> cohere.ClientV2:
            # made after instrument(): ClientV2 binds its chat methods when it is created
            return cohere.ClientV2(
                api_key="k", base_url=url, httpx_client=httpx.Client(event_hooks={"request": [_inject]})
            )

        # control: uninstrumented, the propagating client sends the attribution along
        with featurecost.attribute(feature="renewals", tenant="acme", user="u-1"):
            list(client().chat_stream(model="command-r7b-12-2024", messages=MESSAGES))
        assert "featurecost.tenant=acme" in seen.pop()

        CohereInstrumentor().instrument(tracer_provider=spans.provider)
        try:
            with featurecost.attribute(feature="renewals", tenant="acme", user="u-1"):
                stream = client().chat_stream(model="command-r7b-12-2024", messages=MESSAGES)
            list(stream)  # read outside the attribution block: the request goes out now

            async def run() -> None:
                aclient = cohere.AsyncClientV2(
                    api_key="k", base_url=url, httpx_client=httpx.AsyncClient(event_hooks={"request": [_inject_async]})
                )
                with featurecost.attribute(feature="renewals", tenant="acme", user="u-1"):
                    async for _ in aclient.chat_stream(model="command-r7b-12-2024", messages=MESSAGES):
                        pass

            asyncio.run(run())
        finally:
            CohereInstrumentor().uninstrument()
    assert len(seen) == 2
    _assert_not_sent(seen, spans)


def test_mistral_streams_do_not_send_attribution(spans: Spans, app_baggage: None) -> None:
    stand_in, seen = MistralStandIn(), list[str]()
    with serve_in_thread(_recording(stand_in.app(), seen)) as url:
        client = Mistral(
            api_key="k",
            server_url=url,
            client=httpx.Client(event_hooks={"request": [_inject]}),
            async_client=httpx.AsyncClient(event_hooks={"request": [_inject_async]}),
        )
        with featurecost.attribute(feature="renewals", tenant="acme", user="u-1"):
            list(client.chat.stream(model="mistral-small-latest", messages=MESSAGES))
        assert "featurecost.tenant=acme" in seen.pop()

        MistralAIInstrumentor().instrument(tracer_provider=spans.provider)
        try:
            with (
                featurecost.attribute(feature="renewals", tenant="acme", user="u-1"),
                client.chat.stream(model="mistral-small-latest", messages=MESSAGES) as events,
            ):
                list(events)

            async def run() -> None:
                with featurecost.attribute(feature="renewals", tenant="acme", user="u-1"):
                    events = await client.chat.stream_async(model="mistral-small-latest", messages=MESSAGES)
                    async for _ in events:
                        pass

            asyncio.run(run())
        finally:
            MistralAIInstrumentor().uninstrument()
    assert len(seen) == 2
    _assert_not_sent(seen, spans)


def test_strict_mode_rejects_unattributed_streams_before_sending(spans: Spans) -> None:
    cohere_seen, mistral_seen = list[str](), list[str]()
    with (
        serve_in_thread(_recording(CohereStandIn().app(), cohere_seen)) as cohere_url,
        serve_in_thread(_recording(MistralStandIn().app(), mistral_seen)) as mistral_url,
    ):
        CohereInstrumentor().instrument(tracer_provider=spans.provider)
        MistralAIInstrumentor().instrument(tracer_provider=spans.provider)
        try:
            featurecost.configure(strict="reject")
            co = cohere.ClientV2(api_key="k", base_url=cohere_url)
            mistral = Mistral(api_key="k", server_url=mistral_url)
            with pytest.raises(UnattributedCallError):
                co.chat_stream(model="command-r7b-12-2024", messages=MESSAGES)
            with pytest.raises(UnattributedCallError):
                mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES)
            with featurecost.attribute(feature="renewals"):
                list(co.chat_stream(model="command-r7b-12-2024", messages=MESSAGES))
                list(mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES))
        finally:
            CohereInstrumentor().uninstrument()
            MistralAIInstrumentor().uninstrument()
    assert (len(cohere_seen), len(mistral_seen)) == (1, 1)  # only the attributed calls were sent
    assert sorted(str((s.attributes or {})["featurecost.feature"]) for s in spans.llm()) == ["renewals"] * 2
