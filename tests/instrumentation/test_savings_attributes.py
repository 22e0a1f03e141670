"""What the savings finder needs from the instrumentation, through the real ``openai`` and
``anthropic`` SDKs against the stand-in: the keyed prompt-prefix fingerprint (never the
text), the declared ``latency``, and ``background`` inferred for calls outside any traced
request."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types
from mistralai.client import Mistral
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

import featurecost
from featurecost.instrumentation import _nested, _prefix
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from tests.conftest import RunningStandIn, Spans, serve_in_thread
from testsupport.stand_ins.gemini import GeminiStandIn
from testsupport.stand_ins.mistral import MistralStandIn

HASH, CLASS, LATENCY = "featurecost.prompt.prefix_hash", "featurecost.prompt.prefix_class", "featurecost.latency"
SYSTEM = "You are ACME's support bot. Never reveal internal notes. " * 40  # 2,280 characters
KEY = "replica-shared-secret"


def fingerprint(block: str) -> str:
    return hmac.new(KEY.encode(), block.encode(), hashlib.sha256).hexdigest()[:16]


@pytest.fixture(autouse=True)
def known_key() -> Iterator[None]:
    enabled, key = _prefix._state.enabled, _prefix._state.key
    featurecost.configure_prefix_fingerprint(enabled=True, key=KEY)
    try:
        yield
    finally:
        _prefix._state.enabled, _prefix._state.key = enabled, key


@pytest.fixture
def no_server_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_nested, "_server_spans_seen", False)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def openai_client(stand_in: RunningStandIn) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)


def test_openai_chat_and_responses_carry_the_fingerprint_not_the_text(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    client = openai_client(stand_in)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "developer", "content": [{"type": "text", "text": "Use the tools."}]},
        {"role": "user", "content": "Where is my invoice?"},
    ]
    with featurecost.attribute(feature="support-bot"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        client.chat.completions.create(model="gpt-4o-mini", messages=[*messages[:2], {"role": "user", "content": "x"}])
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "no system"}])
        client.responses.create(model="gpt-4o-mini", instructions=SYSTEM, input="Where is my invoice?")
    first, second, bare, responses = (attributes(s) for s in instrumented.llm())
    assert first[HASH] == fingerprint(SYSTEM + "\nUse the tools.")
    assert first[CLASS] == 2048
    assert second[HASH] == first[HASH]  # another question after the same instructions: a repeat
    assert HASH not in bare
    assert CLASS not in bare
    assert responses[HASH] == fingerprint(SYSTEM)
    for span in instrumented.finished():
        assert not any("ACME" in str(v) or "invoice" in str(v) for v in (span.attributes or {}).values())


def test_anthropic_system_blocks_and_opt_out(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = anthropic.Anthropic(base_url=stand_in.url, api_key="sk-ant-test", max_retries=0)
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    user = [{"role": "user", "content": "hi"}]
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, system=system, messages=user)  # type: ignore[arg-type]
    featurecost.configure_prefix_fingerprint(enabled=False)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, system=SYSTEM, messages=user)  # type: ignore[arg-type]
    on, off = (attributes(s) for s in instrumented.llm())
    assert (on[HASH], on[CLASS]) == (fingerprint(SYSTEM), 2048)
    assert HASH not in off
    assert CLASS not in off


def test_declared_latency(stand_in: RunningStandIn, instrumented: Spans) -> None:
    client = openai_client(stand_in)
    with featurecost.attribute(feature="nightly-digest", latency="batch"):
        client.embeddings.create(model="text-embedding-3-small", input="a")
    (span,) = instrumented.llm()
    assert attributes(span)[LATENCY] == "batch"
    with pytest.raises(ValueError, match="latency"):
        featurecost.attribute(feature="x", latency="later")


def test_background_is_inferred_only_where_requests_are_traced(
    stand_in: RunningStandIn, instrumented: Spans, no_server_seen: None
) -> None:
    client = openai_client(stand_in)
    chat: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.chat.completions.create(**chat)  # no traced request seen yet: nothing to infer
    tracer = instrumented.provider.get_tracer("app")
    with tracer.start_as_current_span("GET /tickets", kind=SpanKind.SERVER):
        client.chat.completions.create(**chat)  # inside a request
    client.chat.completions.create(**chat)  # outside any request, now that requests are traced
    with featurecost.attribute(feature="chat", latency="interactive"):
        client.chat.completions.create(**chat)  # declared: the app knows better
    before, in_request, outside, declared = (attributes(s).get(LATENCY) for s in instrumented.llm())
    assert (before, in_request, outside, declared) == (None, None, "background", "interactive")


def test_mistral_and_gemini_system_prompts_carry_the_fingerprint(spans: Spans) -> None:
    MistralAIInstrumentor().instrument(tracer_provider=spans.provider)
    GoogleGenAIInstrumentor().instrument(tracer_provider=spans.provider)
    try:
        with serve_in_thread(MistralStandIn().app()) as url:
            Mistral(api_key="test-key", server_url=url).chat.complete(
                model="mistral-small-latest",
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
            )
        with serve_in_thread(GeminiStandIn().app()) as url:
            client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))
            for instruction in (SYSTEM, types.Content(parts=[types.Part(text=SYSTEM)])):
                client.models.generate_content(
                    model="gemini-2.5-flash", contents="hi",
                    config=types.GenerateContentConfig(system_instruction=instruction),
                )  # fmt: skip
    finally:
        MistralAIInstrumentor().uninstrument()
        GoogleGenAIInstrumentor().uninstrument()
    found = [(attributes(s).get(HASH), attributes(s).get(CLASS)) for s in spans.llm()]
    assert found == [(fingerprint(SYSTEM), 2048)] * 3
