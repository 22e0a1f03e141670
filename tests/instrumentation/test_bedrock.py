"""Real boto3/botocore, over real HTTP, against the Bedrock Runtime stand-in."""

from __future__ import annotations

import contextvars
import gc
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError, EventStreamError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import featurecost
from featurecost.collector.pipeline.normalize import is_llm_span
from featurecost.instrumentation.bedrock import BedrockInstrumentor
from tests.conftest import Spans, serve_in_thread
from testsupport.stand_ins.bedrock import BedrockStandIn

LONG_SYSTEM = "Policy text for the assistant. " * 200  # > 1024 tokens: cacheable
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, BedrockStandIn]]:
    stand_in = BedrockStandIn()
    with serve_in_thread(stand_in.app()) as url:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            config=botocore.client.Config(retries={"max_attempts": 1}),
        )
        yield client, stand_in


@pytest.fixture
def instrumented(spans: Spans) -> Iterator[Spans]:
    BedrockInstrumentor().instrument(tracer_provider=spans.provider)
    yield spans
    BedrockInstrumentor().uninstrument()


def _assert_converse_usage(span: ReadableSpan, usage: dict[str, int]) -> None:
    a = span.attributes or {}
    read, write = usage.get("cacheReadInputTokens", 0), usage.get("cacheWriteInputTokens", 0)
    assert a["gen_ai.usage.input_tokens"] == usage["inputTokens"] + read + write
    assert a["gen_ai.usage.output_tokens"] == usage["outputTokens"]
    assert a["gen_ai.usage.cache_read.input_tokens"] == read
    assert a["gen_ai.usage.cache_creation.input_tokens"] == write


def _converse_args(text: str = "Summarize this ticket.") -> dict[str, Any]:
    return {
        "modelId": HAIKU,
        "system": [{"text": LONG_SYSTEM}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": 50},
    }


def test_converse_totals_include_cache_writes_and_reads(
    bedrock: tuple[Any, BedrockStandIn], instrumented: Spans
) -> None:
    client, stand_in = bedrock
    with featurecost.attribute(feature="ticket-summary", tenant="acme", user="u-1"):
        client.converse(**_converse_args())
        client.converse(**_converse_args())
    write, read = (served["usage"] for served in stand_in.served)
    assert write["cacheWriteInputTokens"] > 0
    assert read["cacheReadInputTokens"] > 0
    for span, usage in zip(instrumented.llm(), (write, read), strict=True):
        a = span.attributes or {}
        assert span.name == f"chat {HAIKU}"
        assert a["gen_ai.provider.name"] == "aws.bedrock"
        assert a["gen_ai.request.model"] == HAIKU
        assert a["gen_ai.request.max_tokens"] == 50
        assert a["server.address"] == "127.0.0.1"
        assert a["featurecost.usage.source"] == "reported"
        assert a["featurecost.feature"] == "ticket-summary"
        assert a["featurecost.tenant"] == "acme"
        assert a["user.id"] == "u-1"
        assert a["gen_ai.response.finish_reasons"] in (("end_turn",), ("max_tokens",))
        _assert_converse_usage(span, usage)


def test_converse_stream_to_the_end(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, stand_in = bedrock
    with featurecost.attribute(feature="live-chat"):
        response = client.converse_stream(**_converse_args())
    events = list(response["stream"])  # consumed outside the attribution block
    assert [next(iter(e)) for e in events][-1] == "metadata"
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert a["featurecost.feature"] == "live-chat"
    assert "featurecost.usage.partial" not in a
    assert a["gen_ai.response.finish_reasons"] == (stand_in.served[0]["stopReason"],)
    _assert_converse_usage(span, stand_in.served[0]["usage"])


def test_converse_stream_error_midway_is_recorded(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, stand_in = bedrock
    stand_in.fail_streams_after = 2
    response = client.converse_stream(**_converse_args())
    with pytest.raises(EventStreamError):
        for _ in response["stream"]:
            pass
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "EventStreamError"
    assert a["featurecost.usage.partial"] is True
    assert a["featurecost.usage.source"] == "missing"  # usage comes last, in the metadata event


def test_converse_stream_abandoned_is_ended_by_gc(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, _ = bedrock
    response = client.converse_stream(**_converse_args())
    for _ in response["stream"]:
        break
    assert instrumented.llm() == []  # still open: the application may resume
    del response
    gc.collect()
    (span,) = instrumented.llm()
    assert (span.attributes or {})["featurecost.usage.partial"] is True


def test_converse_stream_closed_early(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, _ = bedrock
    response = client.converse_stream(**_converse_args())
    stream = response["stream"]
    next(iter(stream))
    stream.close()
    (span,) = instrumented.llm()
    assert (span.attributes or {})["featurecost.usage.partial"] is True


def test_service_error_is_recorded(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, _ = bedrock
    with pytest.raises(ClientError) as raised:
        client.converse(modelId="acme.unknown-v1", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    (span,) = instrumented.llm()
    a = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert a["error.type"] == "ValidationException"  # botocore's modeled exception class
    assert a["featurecost.usage.source"] == "missing"


def test_invoke_model_anthropic_body(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, stand_in = bedrock
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 80,
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Draft a reply."}],
    }
    results = [client.invoke_model(modelId=HAIKU, body=json.dumps(body)) for _ in range(2)]
    # the application still reads the whole body
    assert [json.loads(r["body"].read()) for r in results] == [s["body"] for s in stand_in.served]
    for span, served in zip(instrumented.llm(), stand_in.served, strict=True):
        a = span.attributes or {}
        usage = served["body"]["usage"]
        read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        assert a["gen_ai.usage.input_tokens"] == usage["input_tokens"] + read + write
        assert a["gen_ai.usage.cache_read.input_tokens"] == read
        assert a["gen_ai.usage.cache_creation.input_tokens"] == write
        assert a["gen_ai.usage.output_tokens"] == usage["output_tokens"]
        assert a["gen_ai.response.model"] == served["body"]["model"]
        assert a["gen_ai.response.id"] == served["body"]["id"]
        assert a["gen_ai.request.max_tokens"] == 80
    assert stand_in.served[0]["body"]["usage"]["cache_creation_input_tokens"] > 0
    assert stand_in.served[1]["body"]["usage"]["cache_read_input_tokens"] > 0


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        ("meta.llama3-1-8b-instruct-v1:0", {"prompt": "Hello there, how are you?", "max_gen_len": 40}),
        ("amazon.titan-embed-text-v2:0", {"inputText": "index this sentence please"}),
        ("mistral.mistral-large-2402-v1:0", {"prompt": "<s>[INST] hi [/INST]", "max_tokens": 30}),  # headers only
    ],
)
def test_invoke_model_other_families(
    bedrock: tuple[Any, BedrockStandIn], instrumented: Spans, model_id: str, body: dict[str, Any]
) -> None:
    client, stand_in = bedrock
    result = client.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json")
    assert json.loads(result["body"].read()) == stand_in.served[0]["body"]
    (span,) = instrumented.llm()
    a = span.attributes or {}
    headers = stand_in.served[0]["headers"]
    assert a["featurecost.usage.source"] == "reported"
    assert a["gen_ai.usage.input_tokens"] == int(headers["X-Amzn-Bedrock-Input-Token-Count"])
    assert a["gen_ai.usage.output_tokens"] == int(headers["X-Amzn-Bedrock-Output-Token-Count"])


def test_invoke_model_with_response_stream(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, stand_in = bedrock
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 60,
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Stream a reply."}],
    }
    with featurecost.attribute(feature="stream-invoke"):
        response = client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert chunks[-1]["type"] == "message_stop"
    (span,) = instrumented.llm()
    a = span.attributes or {}
    metrics = stand_in.served[0]["metrics"]
    read, write = metrics["cacheReadInputTokenCount"], metrics["cacheWriteInputTokenCount"]
    assert write > 0
    assert a["gen_ai.usage.input_tokens"] == metrics["inputTokenCount"] + read + write
    assert a["gen_ai.usage.output_tokens"] == metrics["outputTokenCount"]
    assert a["gen_ai.usage.cache_creation.input_tokens"] == write
    assert a["gen_ai.response.id"] == stand_in.served[0]["id"]
    assert a["featurecost.feature"] == "stream-invoke"


def test_threads_and_other_services_untouched(bedrock: tuple[Any, BedrockStandIn], instrumented: Spans) -> None:
    client, stand_in = bedrock

    def call(tenant: str) -> None:
        with featurecost.attribute(feature="bulk", tenant=tenant):
            client.converse(**_converse_args(f"ticket of {tenant}"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: contextvars.copy_context().run(call, t), [f"t-{i}" for i in range(6)]))
    llm = instrumented.llm()
    assert sorted((s.attributes or {})["featurecost.tenant"] for s in llm) == [f"t-{i}" for i in range(6)]
    total = sum(
        s["usage"]["inputTokens"] + s["usage"]["cacheReadInputTokens"] + s["usage"]["cacheWriteInputTokens"]
        for s in stand_in.served
    )
    assert sum((s.attributes or {})["gen_ai.usage.input_tokens"] for s in llm) == total  # type: ignore[misc]


def test_uninstrument_restores_botocore(bedrock: tuple[Any, BedrockStandIn], spans: Spans) -> None:
    client, _ = bedrock
    original = botocore.client.BaseClient._make_api_call
    BedrockInstrumentor().instrument(tracer_provider=spans.provider)
    assert botocore.client.BaseClient._make_api_call is not original
    BedrockInstrumentor().uninstrument()
    assert botocore.client.BaseClient._make_api_call is original
    client.converse(**_converse_args())
    assert spans.llm() == []


@pytest.mark.parametrize("ours", ["inside", "outside"])
def test_with_the_contrib_botocore_instrumentation_one_span_is_billed(
    bedrock: tuple[Any, BedrockStandIn], spans: Spans, ours: str
) -> None:
    """opentelemetry-instrumentation-botocore gives Bedrock calls GenAI spans of its own; with
    both installed (``opentelemetry-instrument`` enables every instrumentor it finds), the
    collector must still bill each call once — ours, which carries the attribution."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    # wrapt wrappers nest: the instrumentor applied last runs outside
    order = [BedrockInstrumentor(), BotocoreInstrumentor()]
    if ours == "outside":
        order.reverse()
    for instrumentor in order:
        instrumentor.instrument(tracer_provider=spans.provider)
    client, _ = bedrock
    try:
        with featurecost.attribute(feature="ticket-summary", tenant="acme"):
            client.converse(**_converse_args())
            list(client.converse_stream(**_converse_args())["stream"])
    finally:
        for instrumentor in order:
            instrumentor.uninstrument()
    exported = spans.finished()
    contrib = [s for s in exported if (s.attributes or {}).get("gen_ai.system") == "aws.bedrock"]
    assert len(contrib) == 2  # the contrib instrumentation really emitted its GenAI spans
    billed = [s for s in exported if is_llm_span(dict(s.attributes or {}))]
    assert len(billed) == 2
    assert all((s.attributes or {})["featurecost.feature"] == "ticket-summary" for s in billed)
