"""One billable span per call, whatever else instruments the SDK; ``uninstrument`` restores everything."""

from __future__ import annotations

import importlib
from typing import Any

import anthropic
import anthropic._base_client as anthropic_base_client
import openai
import pytest
from opentelemetry import context as otel_context

import featurecost
from featurecost.collector.pipeline.normalize import is_llm_span
from featurecost.instrumentation._spans import _SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn, Spans

USER = [{"role": "user", "content": "hi"}]

OPENAI_TARGETS = [
    ("openai.resources.chat.completions.completions", "Completions", "create"),
    ("openai.resources.chat.completions.completions", "Completions", "parse"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions", "create"),
    ("openai.resources.chat.completions.completions", "AsyncCompletions", "parse"),
    ("openai.resources.responses.responses", "Responses", "create"),
    ("openai.resources.responses.responses", "AsyncResponses", "parse"),
    ("openai.resources.embeddings", "Embeddings", "create"),
    ("openai.resources.embeddings", "AsyncEmbeddings", "create"),
    ("openai.resources.completions", "Completions", "create"),
    ("openai.resources.completions", "AsyncCompletions", "create"),
]
ANTHROPIC_TARGETS = [
    ("anthropic.resources.messages.messages", cls, method)
    for cls in ("Messages", "AsyncMessages")
    for method in ("create", "parse", "stream")
] + [("anthropic.resources.beta.messages.messages", "Messages", "stream")]


def _lookup(module: str, cls: str, method: str) -> Any:
    return vars(getattr(importlib.import_module(module), cls))[method]


def test_uninstrument_restores_every_wrapped_function(spans: Spans) -> None:
    targets = OPENAI_TARGETS + ANTHROPIC_TARGETS
    originals = [_lookup(*t) for t in targets]
    native = anthropic_base_client.start_api_call_span
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    AnthropicInstrumentor().instrument(tracer_provider=spans.provider)
    assert all(_lookup(*t) is not o for t, o in zip(targets, originals, strict=True))
    assert anthropic_base_client.start_api_call_span is not native
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    assert [_lookup(*t) for t in targets] == originals
    assert anthropic_base_client.start_api_call_span is native


def test_enclosing_llm_span_of_another_instrumentation_is_marked_superseded(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    # A framework (or a second LLM instrumentor wrapping outside us) with its own LLM span.
    framework = instrumented.provider.get_tracer("some.framework")
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
    with (
        featurecost.attribute(feature="agent"),
        framework.start_as_current_span("chat gpt-4o-mini", attributes={"gen_ai.operation.name": "chat"}),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    with framework.start_as_current_span("agent run", attributes={"agent.name": "planner"}):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    by_scope = {
        (s.instrumentation_scope.name if s.instrumentation_scope else "", s.name): s for s in instrumented.finished()
    }
    outer = by_scope[("some.framework", "chat gpt-4o-mini")]
    plain = by_scope[("some.framework", "agent run")]
    assert (outer.attributes or {})["featurecost.superseded"] is True
    assert "featurecost.superseded" not in (plain.attributes or {})  # not an LLM span: left alone
    ours = [
        s
        for s in instrumented.llm()
        if s.instrumentation_scope and s.instrumentation_scope.name.startswith("featurecost")
    ]
    assert len(ours) == 2
    assert all("featurecost.superseded" not in (s.attributes or {}) for s in ours)


def test_inner_llm_instrumentations_see_suppression(stand_in: RunningStandIn, instrumented: Spans) -> None:
    """What an OpenLLMetry instrumentor wrapping inside us checks before starting its span."""
    seen: list[object] = []
    client = anthropic.Anthropic(base_url=stand_in.url, api_key="k", max_retries=0)

    def observe(request: Any) -> None:
        seen.append(otel_context.get_value(_SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY))

    client._client.event_hooks["request"].append(observe)
    client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=USER)  # type: ignore[arg-type]
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=16, messages=USER) as s:  # type: ignore[arg-type]
        s.until_done()
    assert seen == [True, True]
    assert otel_context.get_value(_SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY) is None


def _official_openai() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Official

    return Official()


def _openinference_openai() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

    return OpenInference()


@pytest.mark.parametrize("other", [_official_openai, _openinference_openai], ids=["openai-v2", "openinference"])
@pytest.mark.parametrize("ours", ["inside", "outside"])
def test_with_another_openai_instrumentation_one_span_is_billed(
    stand_in: RunningStandIn, spans: Spans, ours: str, other: Any
) -> None:
    """The official openai-v2 and OpenInference instrumentors wrap the same methods and check no
    GenAI suppression key: whichever order ``opentelemetry-instrument`` loads them in, the
    collector must bill each call once — ours, which carries the attribution."""
    order = [OpenAIInstrumentor(), other()]  # the last applied runs outside
    if ours == "outside":
        order.reverse()
    for instrumentor in order:
        instrumentor.instrument(tracer_provider=spans.provider)
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
    try:
        with featurecost.attribute(feature="agent", tenant="acme"):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
            chunks = list(stream)
    finally:
        for instrumentor in order:
            instrumentor.uninstrument()
    assert chunks
    exported = spans.finished()
    scopes = {s.instrumentation_scope.name.split(".")[0] for s in exported if s.instrumentation_scope}
    assert {"featurecost", "opentelemetry" if other is _official_openai else "openinference"} <= scopes
    billed = [s for s in exported if is_llm_span(dict(s.attributes or {}))]
    assert len(billed) == 2  # the stream's span too: it ends when the stream does, not at GC
    assert all((s.attributes or {})["featurecost.feature"] == "agent" for s in billed)


def test_nested_spans_are_still_marked_once_the_marker_rests_between_calls(
    stand_in: RunningStandIn, spans: Spans
) -> None:
    """Between featurecost calls, once the app's first SERVER span was seen, the nested-span
    marker costs ordinary spans no Python code (issue #15): it must wake for each call all the
    same — the official openai-v2 span nested inside ours is still marked superseded, and the
    app's own spans outside our calls are not."""
    from opentelemetry.trace import SpanKind

    official = _official_openai()
    official.instrument(tracer_provider=spans.provider)  # applied first: it runs inside ours
    OpenAIInstrumentor().instrument(tracer_provider=spans.provider)
    app = spans.provider.get_tracer("app")
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
    try:
        with app.start_as_current_span("POST /answer", kind=SpanKind.SERVER):
            with featurecost.attribute(feature="agent"):
                client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
            with app.start_as_current_span("db query"):
                pass
            with featurecost.attribute(feature="agent"):
                client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    finally:
        OpenAIInstrumentor().uninstrument()
        official.uninstrument()
    exported = spans.finished()
    peers = [
        s for s in exported if s.instrumentation_scope and s.instrumentation_scope.name.startswith("opentelemetry.")
    ]
    assert len(peers) == 2
    assert all((s.attributes or {}).get("featurecost.superseded") is True for s in peers)
    app_spans = [s for s in exported if s.name in ("POST /answer", "db query")]
    assert len(app_spans) == 2
    assert not any((s.attributes or {}).get("featurecost.superseded") for s in app_spans)
    billed = [s for s in exported if is_llm_span(dict(s.attributes or {}))]
    assert len(billed) == 2
