"""The new SDKs through the whole path: real SDK → stand-in → span → real OTLP exporter →
collector (WAL, normalize, price, chDB) → report API. Expected token totals are computed
here from what the stand-ins served, with each provider's own usage rules."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import cohere
import httpx
import pytest
from google import genai
from google.genai import types
from mistralai.client import Mistral
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import featurecost
from featurecost.instrumentation.bedrock import BedrockInstrumentor
from featurecost.instrumentation.cohere import CohereInstrumentor
from featurecost.instrumentation.google_genai import GoogleGenAIInstrumentor
from featurecost.instrumentation.mistralai import MistralAIInstrumentor
from tests.conftest import serve_in_thread
from testsupport.harness import start_collector
from testsupport.stand_ins.bedrock import BedrockStandIn
from testsupport.stand_ins.cohere import CohereStandIn
from testsupport.stand_ins.gemini import GeminiStandIn
from testsupport.stand_ins.mistral import MistralStandIn

LONG_SYSTEM = "Policy text for the assistant. " * 200
ENVIRONMENT = "sdk-e2e"
INSTRUMENTORS = (GoogleGenAIInstrumentor, BedrockInstrumentor, MistralAIInstrumentor, CohereInstrumentor)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[tuple[TracerProvider, Any]]:
    collector = start_collector(tmp_path / "data", tmp_path / "logs")
    tracer_provider = TracerProvider(resource=Resource.create({"deployment.environment.name": ENVIRONMENT}))
    exporter = OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces")
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    for instrumentor in INSTRUMENTORS:
        instrumentor().instrument(tracer_provider=tracer_provider)
    try:
        yield tracer_provider, collector
    finally:
        for instrumentor in INSTRUMENTORS:
            instrumentor().uninstrument()
        tracer_provider.shutdown()
        assert collector.process.stop() == 0, collector.process.log()


def _gemini() -> list[tuple[int, int, int, int]]:
    stand_in = GeminiStandIn()
    with serve_in_thread(stand_in.app()) as base:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=base))
        config = types.GenerateContentConfig(system_instruction=LONG_SYSTEM)
        with featurecost.attribute(feature="gemini-feature"):
            for _ in range(2):
                client.models.generate_content(model="gemini-2.5-flash", contents="hello", config=config)
            for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents="stream"):
                pass
    rows = []
    for served in stand_in.served:
        u = served["usageMetadata"]
        # Gemini: prompt includes the cache; thoughts are billed as output but reported beside it
        rows.append(
            (
                u["promptTokenCount"],
                u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0),
                u.get("cachedContentTokenCount", 0),
                0,
            )
        )
    return rows


def _bedrock() -> list[tuple[int, int, int, int]]:
    stand_in = BedrockStandIn()
    with serve_in_thread(stand_in.app()) as base:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=base,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            config=botocore.client.Config(retries={"max_attempts": 1}),
        )
        with featurecost.attribute(feature="bedrock-feature"):
            for _ in range(2):
                client.converse(
                    modelId="us.anthropic.claude-haiku-4-5-20251001-v1:0",
                    system=[{"text": LONG_SYSTEM}, {"cachePoint": {"type": "default"}}],
                    messages=[{"role": "user", "content": [{"text": "hi"}]}],
                )
    rows = []
    for served in stand_in.served:
        u = served["usage"]
        read, write = u["cacheReadInputTokens"], u["cacheWriteInputTokens"]
        rows.append((u["inputTokens"] + read + write, u["outputTokens"], read, write))  # Bedrock: input excludes cache
    return rows


def _mistral() -> list[tuple[int, int, int, int]]:
    stand_in = MistralStandIn()
    with serve_in_thread(stand_in.app()) as base:
        client = Mistral(api_key="k", server_url=base)
        messages: Any = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "hi"}]
        with featurecost.attribute(feature="mistral-feature"):
            client.chat.complete(model="mistral-small-latest", messages=messages)
            with client.chat.stream(model="mistral-small-latest", messages=messages) as events:
                for _ in events:
                    pass
    rows = []
    for served in stand_in.served:
        u = served["usage"]
        cached = u.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        rows.append((u["prompt_tokens"], u["completion_tokens"], cached, 0))
    return rows


def _cohere() -> list[tuple[int, int, int, int]]:
    stand_in = CohereStandIn()
    with serve_in_thread(stand_in.app()) as base:
        client = cohere.ClientV2(api_key="k", base_url=base)
        with featurecost.attribute(feature="cohere-feature"):
            client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}])
            client.embed(model="embed-v4.0", input_type="search_document", texts=["a", "b"])
    chat, embed = stand_in.served
    billed = chat["usage"]["billed_units"]
    return [
        (billed["input_tokens"], billed["output_tokens"], 0, 0),
        (embed["meta"]["billed_units"]["input_tokens"], 0, 0, 0),
    ]


def test_every_new_sdk_is_stored_and_priced(provider: tuple[TracerProvider, Any]) -> None:
    _, collector = provider
    expected = {
        "gemini-feature": _gemini(),
        "bedrock-feature": _bedrock(),
        "mistral-feature": _mistral(),
        "cohere-feature": _cohere(),
    }
    collector.wait_drained()
    response = httpx.get(
        f"{collector.api_url}/api/v1/reports/feature-costs", params={"environment": ENVIRONMENT}, timeout=30
    )
    response.raise_for_status()
    rows = {row["feature"]: row for row in response.json()["rows"]}
    assert set(rows) == set(expected)
    for feature, calls in expected.items():
        row = rows[feature]
        assert row["calls"] == len(calls), feature
        assert row["input_tokens"] == sum(c[0] for c in calls), feature
        assert row["output_tokens"] == sum(c[1] for c in calls), feature
        assert row["cache_read_tokens"] == sum(c[2] for c in calls), feature
        assert row["cache_write_tokens"] == sum(c[3] for c in calls), feature
        assert row["unpriced_calls"] == 0, (feature, row.get("unpriced_reasons"))
        assert Decimal(row["cost_usd"]) > 0, feature
    # the caches really were exercised on the way
    assert rows["gemini-feature"]["cache_read_tokens"] > 0
    assert rows["bedrock-feature"]["cache_write_tokens"] > 0
    assert rows["mistral-feature"]["cache_read_tokens"] > 0
