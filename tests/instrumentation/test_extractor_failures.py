"""Our code never raises into the user's call (issue #13): for every SDK, the request,
response and stream extractors are made to raise, and the user's call and stream still
return everything the provider sent; the call's span still ends, its usage recorded as
missing (never guessed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import botocore.client
import cohere
import openai
import pytest
from google import genai
from google.genai import types
from mistralai.client import Mistral

import featurecost
from featurecost.instrumentation import anthropic as fc_anthropic
from featurecost.instrumentation import bedrock as fc_bedrock
from featurecost.instrumentation import cohere as fc_cohere
from featurecost.instrumentation import google_genai as fc_genai
from featurecost.instrumentation import mistralai as fc_mistral
from featurecost.instrumentation import openai as fc_openai
from tests.conftest import RunningStandIn, Spans, serve_in_thread
from testsupport.stand_ins.bedrock import BedrockStandIn
from testsupport.stand_ins.cohere import CohereStandIn
from testsupport.stand_ins.gemini import GeminiStandIn
from testsupport.stand_ins.mistral import MistralStandIn

USER: Any = [{"role": "user", "content": "hi"}]


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("extractor bug")


class BoomAccumulator:
    """A stream extractor that fails at every step."""

    def __init__(self, *args: Any) -> None:
        pass

    on_item = usage = response_facts = saw_end = boom


@pytest.fixture
def instrument(spans: Spans) -> Iterator[Any]:
    done: list[Any] = []

    def instrument(instrumentor: Any) -> None:
        instrumentor.instrument(tracer_provider=spans.provider)
        done.append(instrumentor)

    yield instrument
    for instrumentor in done:
        instrumentor.uninstrument()


def _assert_spans_ended_without_usage(spans: Spans, calls: int) -> None:
    llm = spans.llm()
    assert len(llm) == calls
    for span in llm:
        assert span.end_time is not None
        assert (span.attributes or {})["featurecost.usage.source"] == "missing"


def test_openai(monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_openai, "completion_facts", boom)
    monkeypatch.setattr(fc_openai, "_chat_accumulator", BoomAccumulator)
    instrument(fc_openai.OpenAIInstrumentor())
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
    with featurecost.attribute(feature="f"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    assert reply.choices[0].message.content
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"
    _assert_spans_ended_without_usage(spans, 2)


def test_anthropic(monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, spans: Spans, instrument: Any) -> None:
    messages = dataclasses.replace(fc_anthropic.MESSAGES, response_facts=boom, new_accumulator=BoomAccumulator)
    monkeypatch.setattr(fc_anthropic, "MESSAGES", messages)
    monkeypatch.setattr(fc_anthropic, "MessageStreamAccumulator", BoomAccumulator)
    instrument(fc_anthropic.AnthropicInstrumentor())
    client = anthropic.Anthropic(base_url=stand_in.url, api_key="k", max_retries=0)
    model = "claude-3-5-haiku-20241022"
    with featurecost.attribute(feature="f"):
        reply = client.messages.create(model=model, max_tokens=20, messages=USER)
        events = list(client.messages.create(model=model, max_tokens=20, messages=USER, stream=True))
        with client.messages.stream(model=model, max_tokens=20, messages=USER) as stream:
            final = stream.get_final_message()
    assert reply.content
    assert events[-1].type == "message_stop"
    assert final.usage.output_tokens > 0
    _assert_spans_ended_without_usage(spans, 3)


def test_mistral(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_mistral, "_response_facts", boom)
    monkeypatch.setattr(fc_mistral, "_ResponseAccumulator", BoomAccumulator)
    instrument(fc_mistral.MistralAIInstrumentor())
    with serve_in_thread(MistralStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = Mistral(api_key="k", server_url=url)
        reply = client.chat.complete(model="mistral-small-latest", messages=USER)
        events = list(client.chat.stream(model="mistral-small-latest", messages=USER))
    assert reply.choices[0].message.content
    assert events
    _assert_spans_ended_without_usage(spans, 2)


def test_cohere(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_cohere, "_chat_facts", boom)
    monkeypatch.setattr(fc_cohere, "_ChatAccumulator", BoomAccumulator)
    instrument(fc_cohere.CohereInstrumentor())
    with serve_in_thread(CohereStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = cohere.ClientV2(api_key="k", base_url=url)
        reply = client.chat(model="command-a-03-2025", messages=USER)
        events = list(client.chat_stream(model="command-a-03-2025", messages=USER))
    assert reply.message.content
    assert events[-1].type == "message-end"
    _assert_spans_ended_without_usage(spans, 2)


def test_google_genai(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_genai, "_generation_facts", boom)
    monkeypatch.setattr(fc_genai, "_GenerationAccumulator", BoomAccumulator)
    instrument(fc_genai.GoogleGenAIInstrumentor())
    with serve_in_thread(GeminiStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert reply.text
    assert chunks
    _assert_spans_ended_without_usage(spans, 2)


def _bedrock_calls(url: str) -> tuple[Any, list[Any]]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=botocore.client.Config(retries={"max_attempts": 1}),
    )
    args = {
        "modelId": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 50},
    }
    return client.converse(**args), list(client.converse_stream(**args)["stream"])


def test_bedrock(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_bedrock, "_converse_facts", boom)
    monkeypatch.setitem(fc_bedrock._STREAMS, "ConverseStream", ("stream", BoomAccumulator))
    instrument(fc_bedrock.BedrockInstrumentor())
    with serve_in_thread(BedrockStandIn().app()) as url, featurecost.attribute(feature="f"):
        reply, events = _bedrock_calls(url)
    assert reply["output"]["message"]["content"]
    assert "metadata" in events[-1]
    _assert_spans_ended_without_usage(spans, 2)


def test_bedrock_request_extractor(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_bedrock, "_max_tokens_of", boom)
    instrument(fc_bedrock.BedrockInstrumentor())
    with serve_in_thread(BedrockStandIn().app()) as url, featurecost.attribute(feature="f"):
        reply, events = _bedrock_calls(url)
    assert reply["output"]["message"]["content"]
    assert "metadata" in events[-1]
    # the request could not be read: both calls went out untraced rather than not at all
    assert spans.llm() == []


# --- request extractors: a request we cannot read goes out untraced, never blocked ---


def test_openai_request_extractor(
    monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, spans: Spans, instrument: Any
) -> None:
    monkeypatch.setattr(fc_openai, "_chat_request", boom)
    instrument(fc_openai.OpenAIInstrumentor())
    client = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)
    with featurecost.attribute(feature="f"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    assert reply.choices[0].message.content
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"
    assert spans.llm() == []


def test_anthropic_request_extractor(
    monkeypatch: pytest.MonkeyPatch, stand_in: RunningStandIn, spans: Spans, instrument: Any
) -> None:
    monkeypatch.setattr(fc_anthropic, "MESSAGES", dataclasses.replace(fc_anthropic.MESSAGES, request_facts=boom))
    instrument(fc_anthropic.AnthropicInstrumentor())
    client = anthropic.Anthropic(base_url=stand_in.url, api_key="k", max_retries=0)
    model = "claude-3-5-haiku-20241022"
    with featurecost.attribute(feature="f"):
        reply = client.messages.create(model=model, max_tokens=20, messages=USER)
        events = list(client.messages.create(model=model, max_tokens=20, messages=USER, stream=True))
        with client.messages.stream(model=model, max_tokens=20, messages=USER) as stream:
            final = stream.get_final_message()
    assert reply.content
    assert events[-1].type == "message_stop"
    assert final.usage.output_tokens > 0
    assert spans.llm() == []


def test_mistral_request_extractor(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_mistral, "_request", boom)
    instrument(fc_mistral.MistralAIInstrumentor())
    with serve_in_thread(MistralStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = Mistral(api_key="k", server_url=url)
        reply = client.chat.complete(model="mistral-small-latest", messages=USER)
        events = list(client.chat.stream(model="mistral-small-latest", messages=USER))
    assert reply.choices[0].message.content
    assert events
    assert spans.llm() == []


def test_cohere_request_extractor(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_cohere, "_request", boom)
    instrument(fc_cohere.CohereInstrumentor())
    with serve_in_thread(CohereStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = cohere.ClientV2(api_key="k", base_url=url)
        reply = client.chat(model="command-a-03-2025", messages=USER)
        events = list(client.chat_stream(model="command-a-03-2025", messages=USER))
        with client.v2.with_raw_response.chat_stream(model="command-a-03-2025", messages=USER) as raw:
            raw_events = list(raw.data)
    assert reply.message.content
    assert events[-1].type == "message-end"
    assert raw_events[-1].type == "message-end"
    assert spans.llm() == []


def test_google_genai_request_extractor(monkeypatch: pytest.MonkeyPatch, spans: Spans, instrument: Any) -> None:
    monkeypatch.setattr(fc_genai, "_request", boom)
    instrument(fc_genai.GoogleGenAIInstrumentor())
    with serve_in_thread(GeminiStandIn().app()) as url, featurecost.attribute(feature="f"):
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert reply.text
    assert chunks
    assert spans.llm() == []
