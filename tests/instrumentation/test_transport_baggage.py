"""Our attribution never reaches a provider, whoever sends the request (issue #13).

Whatever injects the current context into a request as it is sent — an HTTP client
instrumentation, a request hook, an SDK's own tracing — each instrumented SDK's requests
must reach the provider (a stand-in; we read the raw headers it received) without any
featurecost baggage entry, and with the application's own entries untouched; a request to
the app's own service keeps the attribution (that is how it propagates).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import anthropic
import cohere
import httpx
import httpx2
import openai
import pytest
from google import genai
from google.genai import types
from mistralai.client import Mistral
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as OpenLLMetryAnthropic

import featurecost
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.attribution import is_attribution_key
from featurecost.instrumentation.cohere import CohereInstrumentor
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.cohere import CohereStandIn
from testsupport.stand_ins.gemini import GeminiStandIn
from testsupport.stand_ins.mistral import MistralStandIn
from testsupport.stand_ins.openai_anthropic import StandIn

USER = [{"role": "user", "content": "hi"}]


class Recorder:
    """ASGI middleware keeping the raw request headers a stand-in received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[list[tuple[str, str]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append([(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]])
        await self.app(scope, receive, send)

    def baggage_keys(self) -> list[set[str]]:
        """Per request, the keys of every ``baggage`` header it carried."""
        found = []
        for headers in self.requests:
            keys = set()
            for name, value in headers:
                if name == "baggage":
                    keys |= {unquote(member.split("=", 1)[0].strip()) for member in value.split(",")}
            found.append(keys)
        return found


def _inject(request: Any) -> None:
    # What an HTTP client instrumentation does as the request is sent: the current
    # context's trace context and baggage into its headers.
    propagate.inject(request.headers)


def _injecting_client(http: Any = httpx) -> Any:
    """An ``httpx`` (or ``httpx2``: recent anthropic) client that injects as it sends."""
    return http.Client(event_hooks={"request": [_inject]})


@pytest.fixture
def app_baggage() -> Iterator[None]:
    """The application's own baggage entry, next to ours."""
    token = otel_context.attach(baggage.set_baggage("app.flag", "on"))
    yield
    otel_context.detach(token)


def _assert_none_of_ours(recorder: Recorder, calls: int) -> None:
    keys = recorder.baggage_keys()
    assert len(keys) == calls
    for request_keys in keys:
        assert "app.flag" in request_keys  # the injection happened and kept the app's entry
        assert not [key for key in request_keys if is_attribution_key(key)]


def _attributed() -> Any:
    return featurecost.attribute(feature="summarize", tenant="acme", user="u-1")


def test_openai_and_anthropic_requests_carry_none_of_our_baggage(spans: Spans, app_baggage: None) -> None:
    recorder = Recorder(StandIn().app())
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(recorder) as url, _attributed():
            oa = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, http_client=_injecting_client())
            oa.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
            for _ in oa.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):  # type: ignore[arg-type]
                pass
            oa.embeddings.create(model="text-embedding-3-small", input="hi")
            an = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0, http_client=_injecting_client(httpx2))
            an.messages.create(model="claude-3-5-haiku-20241022", max_tokens=20, messages=USER)  # type: ignore[arg-type]
            with an.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=20, messages=USER) as stream:  # type: ignore[arg-type]
                stream.until_done()
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
    _assert_none_of_ours(recorder, 5)


@pytest.mark.parametrize("order", ["openllmetry first", "ours first"])
def test_anthropic_stream_under_openllmetry_carries_none_of_our_baggage(
    spans: Spans, app_baggage: None, order: str
) -> None:
    # The case: OpenLLMetry's stream manager, anthropic's own tracing injecting headers.
    recorder = Recorder(StandIn().app())
    instrumentors: list[Any] = [OpenLLMetryAnthropic(), AnthropicInstrumentor()]
    if order == "ours first":
        instrumentors.reverse()
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(recorder) as url, _attributed():
            client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
            with client.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=20, messages=USER) as stream:  # type: ignore[arg-type]
                stream.until_done()
            client.messages.create(model="claude-3-5-haiku-20241022", max_tokens=20, messages=USER)  # type: ignore[arg-type]
    finally:
        for instrumentor in reversed(instrumentors):
            instrumentor.uninstrument()
    for request_keys in recorder.baggage_keys():
        assert not [key for key in request_keys if is_attribution_key(key)]
    assert len(recorder.requests) == 2


def test_mistral_cohere_and_gemini_requests_carry_none_of_our_baggage(spans: Spans, app_baggage: None) -> None:
    mistral, co, gemini = (
        Recorder(MistralStandIn().app()),
        Recorder(CohereStandIn().app()),
        Recorder(GeminiStandIn().app()),
    )
    instrumentors = [MistralAIInstrumentor(), CohereInstrumentor(), GoogleGenAIInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=spans.provider)
    try:
        with (
            serve_in_thread(mistral) as m_url,
            serve_in_thread(co) as c_url,
            serve_in_thread(gemini) as g_url,
            _attributed(),
        ):
            messages: Any = USER
            Mistral(api_key="k", server_url=m_url, client=_injecting_client()).chat.complete(
                model="mistral-small-latest", messages=messages
            )
            cohere.ClientV2(api_key="k", base_url=c_url, httpx_client=_injecting_client()).chat(
                model="command-a-03-2025", messages=messages
            )
            options = types.HttpOptions(base_url=g_url, httpx_client=_injecting_client())
            genai.Client(api_key="k", http_options=options).models.generate_content(
                model="gemini-2.5-flash", contents="hi"
            )
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    for recorder in (mistral, co, gemini):
        _assert_none_of_ours(recorder, 1)


def test_the_apps_own_service_still_receives_the_attribution(spans: Spans, app_baggage: None) -> None:
    recorder = Recorder(StandIn().app())
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(recorder) as url, _attributed(), _injecting_client() as client:
            client.get(f"{url}/_stand_in/requests")
    finally:
        OpenAIInstrumentor().uninstrument()
    (keys,) = recorder.baggage_keys()
    assert {"featurecost.feature", "featurecost.tenant", "user.id", "app.flag"} <= keys
