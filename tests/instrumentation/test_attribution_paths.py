"""Attribution that survives threads, tasks, streams consumed elsewhere and service hops,
and that never reaches an LLM provider."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import featurecost
from featurecost.instrumentation.attribution import ContextThreadPoolExecutor, UnattributedCallError, bind_context
from featurecost.instrumentation.web import AttributionMiddleware, WSGIAttributionMiddleware
from tests.conftest import RunningStandIn, Spans, serve_in_thread

USER = [{"role": "user", "content": "Draft the renewal email for ACME-SECRET-PROMPT."}]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def client_for(stand_in: RunningStandIn, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0, **kwargs)


def test_thread_pool_helpers_carry_attribution(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)

    def ask(i: int) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])

    with featurecost.attribute(feature="batch-summary", tenant="acme"), ContextThreadPoolExecutor(4) as pool:
        list(pool.map(ask, range(4)))
    with featurecost.attribute(feature="bound"):
        worker = threading.Thread(target=bind_context(ask), args=(9,))
    worker.start()
    worker.join()
    # a plain thread has no attribution: that is what the helpers are for
    plain = threading.Thread(target=ask, args=(10,))
    plain.start()
    plain.join()
    spans = instrumented.llm()
    features = sorted(str(attributes(s).get("featurecost.feature")) for s in spans)
    assert features == ["None", "batch-summary", "batch-summary", "batch-summary", "batch-summary", "bound"]
    roots = {attributes(s)["featurecost.root_id"] for s in spans if attributes(s).get("featurecost.tenant") == "acme"}
    assert len(roots) == 1


def test_stream_consumed_in_another_thread_keeps_call_time_attribution(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    client = client_for(stand_in)
    with featurecost.attribute(feature="created-here", tenant="acme"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[call-overload]

    def consume() -> None:
        with featurecost.attribute(feature="consumer", user="u-9"):
            for _ in stream:
                pass

    consumer = threading.Thread(target=consume)
    consumer.start()
    consumer.join()
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["featurecost.feature"] == "created-here"
    assert a["featurecost.tenant"] == "acme"
    # a key the call did not have is filled in from where the stream ended, never overriding
    assert a["user.id"] == "u-9"
    assert a["featurecost.usage.source"] == "reported"


def test_asyncio_tasks_and_gather(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0) as client:

            async def ask(feature: str) -> None:
                with featurecost.attribute(feature=feature):
                    await client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]

            with featurecost.attribute(tenant="globex"):
                await asyncio.gather(*(asyncio.create_task(ask(f"f{i}")) for i in range(3)))

    asyncio.run(main())
    spans = instrumented.llm()
    assert sorted(attributes(s)["featurecost.feature"] for s in spans) == ["f0", "f1", "f2"]
    assert {attributes(s)["featurecost.tenant"] for s in spans} == {"globex"}


def test_one_attribution_object_entered_in_many_threads() -> None:
    shared = featurecost.attribute(feature="shared")
    barrier = threading.Barrier(4)
    seen: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with shared:
                barrier.wait(5)
                seen.append(baggage.get_baggage("featurecost.feature"))
                barrier.wait(5)
            seen.append(baggage.get_baggage("featurecost.feature"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(map(str, seen)) == ["None"] * 4 + ["shared"] * 4


def test_entering_attributions_leaves_no_trace_in_a_long_lived_context() -> None:
    def handle_requests() -> int:
        before = len(contextvars.copy_context())
        for i in range(50):
            with featurecost.attribute(feature=f"f{i}"), featurecost.attribute(tenant="t"):
                pass
        return len(contextvars.copy_context()) - before

    assert contextvars.copy_context().run(handle_requests) == 0


def test_decorated_generator_forwards_throw_and_close() -> None:
    log: list[object] = []

    @featurecost.attribute(feature="gen")
    def gen() -> Iterator[int]:
        try:
            yield 1
        except ValueError:
            log.append(("caught", baggage.get_baggage("featurecost.feature")))
            yield 2
        finally:
            log.append(("closed", baggage.get_baggage("featurecost.feature")))

    g = gen()
    assert next(g) == 1
    assert g.throw(ValueError("x")) == 2
    assert baggage.get_baggage("featurecost.feature") is None
    g.close()
    assert log == [("caught", "gen"), ("closed", "gen")]


def test_allow_list_and_size_caps() -> None:
    featurecost.configure(extra_keys=["experiment"], max_value_length=8, max_extra_keys=1)
    with featurecost.attribute(feature="a-very-long-feature-name", experiment="arm-b", secret="x"):
        seen = featurecost.current_attribution()
    assert seen["featurecost.feature"] == "a-very-l"
    assert seen["featurecost.experiment"] == "arm-b"
    assert "featurecost.secret" not in seen
    # baggage from elsewhere is held to the same rules
    ctx = baggage.set_baggage("featurecost.injected", "y")
    ctx = baggage.set_baggage("featurecost.experiment", "z" * 50, context=ctx)
    assert featurecost.current_attribution(ctx) == {"featurecost.experiment": "z" * 8}
    featurecost.configure(allow_any_extra_key=True, max_extra_keys=4)
    with featurecost.attribute(**{"k" * 80: "too long a key", "fine": "kept"}):
        assert set(featurecost.current_attribution()) == {"featurecost.fine", "featurecost.root_id"}


def test_baggage_cannot_set_what_the_instrumentor_measures(stand_in: RunningStandIn, instrumented: Spans) -> None:
    """Incoming baggage is attacker-controlled: it must not be able to inflate the bill."""
    client = client_for(stand_in)
    ctx = baggage.set_baggage("featurecost.usage.input_tokens", "999999")
    ctx = baggage.set_baggage("featurecost.superseded", "true", context=ctx)
    ctx = baggage.set_baggage("featurecost.feature", "from-upstream", context=ctx)
    token = otel_context.attach(ctx)
    try:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": False},
        )
    finally:
        otel_context.detach(token)
    (span,) = instrumented.llm()
    a = attributes(span)
    assert a["featurecost.feature"] == "from-upstream"
    assert "featurecost.usage.input_tokens" not in a
    assert "featurecost.superseded" not in a


def test_strict_mode_flags_and_rejects(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    featurecost.configure(strict="flag")
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    with featurecost.attribute(feature="tagged"):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    featurecost.configure(strict="reject")
    with pytest.raises(UnattributedCallError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(UnattributedCallError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[call-overload]
    assert len(stand_in.stand_in.requests) == 2  # rejected calls never reach the provider
    flagged, tagged = instrumented.llm()
    assert attributes(flagged)["featurecost.request.unattributed"] is True
    assert "featurecost.request.unattributed" not in attributes(tagged)


def _propagating_http_client(**kwargs: Any) -> httpx2.Client:
    """What HTTP client instrumentation does: write the current context's headers into every request."""

    def inject(request: httpx2.Request) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        request.headers.update(carrier)

    return httpx2.Client(event_hooks={"request": [inject]}, **kwargs)


def _sent_baggage(stand_in: RunningStandIn) -> list[str]:
    return [r["headers"].get("baggage", "") for r in stand_in.stand_in.requests]


def test_attribution_baggage_is_never_sent_to_the_provider(stand_in: RunningStandIn, spans: Spans) -> None:
    # control: uninstrumented, a propagating HTTP client sends the attribution along
    oai = client_for(stand_in, http_client=_propagating_http_client())
    ctx = baggage.set_baggage("app.region", "eu")
    token = otel_context.attach(ctx)
    try:
        with featurecost.attribute(feature="support-bot", tenant="acme", user="u-1"):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
        assert "featurecost.tenant=acme" in _sent_baggage(stand_in)[-1]

        from featurecost.instrumentation.anthropic import AnthropicInstrumentor
        from featurecost.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
        AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
        try:
            claude = anthropic.Anthropic(
                base_url=stand_in.url,
                api_key="k",
                max_retries=0,
                open_telemetry={"tracer_provider": spans.provider},  # type: ignore[typeddict-item]
            )
            with featurecost.attribute(feature="support-bot", tenant="acme", user="u-1"):
                oai.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
                list(oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
                claude.messages.create(model="claude-haiku-4-5", max_tokens=32, messages=USER)  # type: ignore[arg-type]
                with claude.messages.stream(model="claude-haiku-4-5", max_tokens=32, messages=USER) as s:  # type: ignore[arg-type]
                    s.until_done()
        finally:
            OpenAIInstrumentor().uninstrument()
            AnthropicInstrumentor().uninstrument()
    finally:
        otel_context.detach(token)
    for sent in _sent_baggage(stand_in)[1:]:
        assert "featurecost" not in sent
        assert "user.id" not in sent
    # the application's own baggage is not ours to drop
    assert all("app.region=eu" in sent for sent in _sent_baggage(stand_in)[1:3])
    # while the spans carry the full attribution
    for span in spans.llm():
        assert attributes(span)["featurecost.tenant"] == "acme"
        assert attributes(span)["user.id"] == "u-1"


def test_no_prompt_or_completion_text_on_spans(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[call-overload]
    answer = reply.choices[0].message.content or ""
    assert answer
    for span in instrumented.finished():
        for value in attributes(span).values():
            assert "ACME-SECRET-PROMPT" not in str(value)
            assert answer[:30] not in str(value)
        assert not span.events


def test_asgi_middleware_maps_headers_and_baggage(stand_in: RunningStandIn, instrumented: Spans) -> None:
    featurecost.configure(extra_keys=["experiment"])
    llm = openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)

    async def endpoint(request: Request) -> Response:
        await llm.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
        return JSONResponse(featurecost.current_attribution())

    app = AttributionMiddleware(Starlette(routes=[Route("/draft", endpoint, methods=["POST"])]))
    with serve_in_thread(app) as url:
        response = httpx.post(
            f"{url}/draft",
            headers={
                "X-Feature-Name": "draft-email",
                "X-Tenant-ID": "acme",
                "baggage": "featurecost.experiment=arm-b,featurecost.not_allowed=1,featurecost.tenant=ignored",
            },
        )
        untagged = httpx.post(f"{url}/draft")
    assert response.status_code == 200
    assert untagged.status_code == 200
    seen = response.json()
    assert seen["featurecost.feature"] == "draft-email"
    assert seen["featurecost.tenant"] == "acme"  # the explicit header wins over incoming baggage
    assert seen["featurecost.experiment"] == "arm-b"
    assert "featurecost.not_allowed" not in seen
    tagged_span, untagged_span = instrumented.llm()
    assert attributes(tagged_span)["featurecost.feature"] == "draft-email"
    assert "featurecost.feature" not in attributes(untagged_span)
    assert attributes(untagged_span)["featurecost.root_id"] != attributes(tagged_span)["featurecost.root_id"]


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_wsgi_middleware_covers_the_streamed_body(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = client_for(stand_in)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        # an LLM call made while the body streams, after the app function returned
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):  # type: ignore[call-overload]
            yield (chunk.choices[0].delta.content or "").encode()

    middleware = WSGIAttributionMiddleware(wsgi_app, headers={"X-Product-Area": "feature", "X-Account": "tenant"})
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, middleware, handler_class=_QuietHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        port = server.server_address[1]
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Product-Area": "search", "X-Account": "initech"})
    finally:
        server.shutdown()
        server.server_close()
        serving.join(5)
    assert response.status_code == 200
    assert response.text
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.feature"] == "search"
    assert attributes(span)["featurecost.tenant"] == "initech"


def test_concurrent_streams_in_threads_each_keep_their_own_attribution(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    client = client_for(stand_in)
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        with featurecost.attribute(feature=f"feature-{i}", tenant=f"tenant-{i}"):
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"question {i}"}],
                stream=True,
            )
            barrier.wait(10)  # all streams open at once, then read interleaved
            for _ in stream:
                pass

    with ContextThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(6)))
    spans = instrumented.llm()
    assert len(spans) == 6
    served_by_prompt = {served["prompt"]: served["usage"] for served in stand_in.served}
    for span in spans:
        a = attributes(span)
        i = a["featurecost.feature"].removeprefix("feature-")  # type: ignore[union-attr]
        assert a["featurecost.tenant"] == f"tenant-{i}"
        assert a["gen_ai.usage.output_tokens"] == served_by_prompt[f"question {i}"]["completion_tokens"]


def test_async_stream_closed_after_break_is_ended(stand_in: RunningStandIn, instrumented: Spans) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[call-overload]
            async for _ in stream:
                break
            await stream.close()

    asyncio.run(run())
    (span,) = instrumented.llm()
    assert attributes(span)["featurecost.usage.partial"] is True
