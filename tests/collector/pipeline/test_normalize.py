"""The normalizer on spans from conventions we cannot run here, made with the real OTel SDK.

The Vercel AI SDK (TypeScript), OpenLIT and older OpenLLMetry releases are not installable
next to the pinned SDKs, so these spans are recorded with the real OpenTelemetry SDK and
encoded by the real OTLP encoder, using exactly the attribute names those projects emit:
- Vercel AI SDK: ai-sdk.dev/docs/ai-sdk-core/telemetry ("Collected data": ``ai.operationId``,
  ``ai.model.id``, ``ai.model.provider``, ``ai.response.model``, ``ai.usage.*``,
  ``ai.telemetry.metadata.*``, ``ai.response.providerMetadata``).
- OpenLIT: openlit/openlit ``sdk/python/src/openlit/semcov/__init__.py`` (GenAI semconv
  names plus ``gen_ai.usage.cost``).
- OpenLLMetry before the semconv rename: traceloop/openllmetry
  ``packages/opentelemetry-semantic-conventions-ai`` (``gen_ai.usage.prompt_tokens``,
  ``gen_ai.usage.cache_read_input_tokens``, ``llm.request.type``,
  ``traceloop.association.properties.*``).
- OpenInference: Arize-ai/openinference ``spec/semantic_conventions.md`` (``llm.token_count.*``,
  ``openinference.span.kind``, ``metadata`` JSON, ``session.id``, ``user.id``).
Spans from the instrumentations that do install are in tests/collector/pricing/test_instrumentations.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer

M = Decimal(1_000_000)


def record_spans(*spans: tuple[str, dict[str, Any]]) -> ExportTraceServiceRequest:
    """Record ``spans`` (name, attributes) as nested spans with the real SDK; the OTLP request for them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "app", "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def nest(rest: list[tuple[str, dict[str, Any]]]) -> None:
        if not rest:
            return
        name, attributes = rest[0]
        with tracer.start_as_current_span(name, attributes=attributes):
            nest(rest[1:])

    nest(list(spans))
    provider.shutdown()
    return ExportTraceServiceRequest.FromString(encode_spans(exporter.get_finished_spans()).SerializeToString())


def calls(*spans: tuple[str, dict[str, Any]]) -> list[CallRecord]:
    return list(normalize_request(record_spans(*spans)))


def test_vercel_ai_sdk_anthropic_counts_cache_outside_input_and_skips_the_wrapper_span() -> None:
    usage = {"ai.usage.inputTokens": 50, "ai.usage.outputTokens": 120, "ai.usage.cachedInputTokens": 3_000}
    outer = ("ai.generateText", {"ai.operationId": "ai.generateText", "ai.model.id": "claude-sonnet-4-5", **usage})
    inner = (
        "ai.generateText.doGenerate",
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "operation.name": "ai.generateText.doGenerate support-bot",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.response.model": "claude-sonnet-4-5-20250929",
            "ai.telemetry.functionId": "support-bot",
            "ai.telemetry.metadata.tenant": "acme",
            "ai.telemetry.metadata.userId": "u-1",
            "ai.telemetry.metadata.sessionId": "conv-9",
            "ai.response.providerMetadata": json.dumps({"anthropic": {"cacheCreationInputTokens": 800}}),
            # the AI SDK copies the provider's raw counts to the semconv names too (no cache)
            "gen_ai.system": "anthropic.messages",
            "gen_ai.usage.input_tokens": 50,
            "gen_ai.usage.output_tokens": 120,
            **usage,
        },
    )
    (call,) = calls(outer, inner)
    assert call.usage_convention == "vercel-ai-sdk-v5"
    assert call.provider == "anthropic"
    assert (call.request_model, call.response_model) == ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert call.input_tokens == 50 + 3_000 + 800
    assert (call.cache_read_tokens, call.cache_write_tokens, call.output_tokens) == (3_000, 800, 120)
    assert call.raw_usage["ai.usage.inputTokens"] == 50
    assert call.raw_usage["ai.response.providerMetadata.anthropic.cacheCreationInputTokens"] == 800
    assert (call.feature, call.tenant, call.user_id, call.session_id) == ("support-bot", "acme", "u-1", "conv-9")
    assert call.usage_issues == []
    # Claude Sonnet 4.5: $3 input, $0.30 cache read, $3.75 cache write, $15 output
    priced = Pricer().price(call)
    assert priced.cost_usd == (50 * Decimal(3) + 3_000 * Decimal("0.30") + 800 * Decimal("3.75") + 120 * 15) / M


def test_vercel_ai_sdk_6_reports_gross_input_with_a_breakdown() -> None:
    # AI SDK 6 (LanguageModelV3 usage): inputTokens includes cache for every provider, with details
    (call,) = calls(
        (
            "ai.generateText.doGenerate",
            {
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.provider": "anthropic.messages",
                "ai.model.id": "claude-haiku-4-5",
                "ai.usage.inputTokens": 3_850,
                "ai.usage.inputTokenDetails.noCacheTokens": 50,
                "ai.usage.inputTokenDetails.cacheReadTokens": 3_000,
                "ai.usage.inputTokenDetails.cacheWriteTokens": 800,
                "ai.usage.cachedInputTokens": 3_000,
                "ai.usage.outputTokens": 120,
                "ai.usage.outputTokenDetails.reasoningTokens": 20,
                "ai.usage.totalTokens": 3_970,
            },
        )
    )
    assert call.usage_convention == "vercel-ai-sdk"
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (3_850, 3_000, 800)
    assert (call.output_tokens, call.reasoning_tokens, call.usage_issues) == (120, 20, [])
    # Claude Haiku 4.5: $1 input, $0.10 cache read, $1.25 cache write, $5 output
    assert Pricer().price(call).cost_usd == (50 * 1 + 3_000 * Decimal("0.10") + 800 * Decimal("1.25") + 120 * 5) / M


def test_vercel_ai_sdk_openai_cache_is_inside_input() -> None:
    (call,) = calls(
        (
            "ai.streamText.doStream",
            {
                "ai.operationId": "ai.streamText.doStream",
                "ai.model.provider": "openai.chat",
                "ai.model.id": "gpt-4o-mini",
                "ai.usage.promptTokens": 2_000,  # AI SDK v4 names
                "ai.usage.completionTokens": 100,
                "ai.usage.cachedInputTokens": 1_024,
            },
        )
    )
    assert (call.provider, call.input_tokens, call.cache_read_tokens) == ("openai", 2_000, 1_024)


def test_openlit_client_cost_is_kept_apart_and_reconciled() -> None:
    (call,) = calls(
        (
            "chat gpt-4o-mini",
            {
                "gen_ai.system": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 500,
                "gen_ai.usage.cost": 0.00045,
            },
        )
    )
    assert call.client_cost_usd == Decimal("0.00045")
    priced = Pricer().price(call)
    # GPT-4o mini: $0.15 input, $0.60 output → $0.00045 exactly, so the two agree
    assert priced.cost_usd == (1_000 * Decimal("0.15") + 500 * Decimal("0.60")) / M
    assert priced.cost_delta_vs_client_usd == 0


def test_openllmetry_deprecated_names_and_association_properties() -> None:
    (call,) = calls(
        (
            "anthropic.chat",
            {
                "gen_ai.system": "Anthropic",
                "llm.request.type": "chat",
                "gen_ai.request.model": "claude-haiku-4-5",
                "gen_ai.usage.prompt_tokens": 1_500,
                "gen_ai.usage.completion_tokens": 80,
                "gen_ai.usage.cache_read_input_tokens": 1_200,
                "llm.usage.total_tokens": 1_580,
                "traceloop.association.properties.feature": "triage",
                "traceloop.association.properties.tenant_id": "globex",
                "traceloop.association.properties.user_id": "u-2",
                "traceloop.association.properties.session_id": "s-2",
            },
        )
    )
    assert call.usage_convention == "genai-semconv-deprecated"
    assert (call.provider, call.operation) == ("anthropic", "chat")
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (1_500, 1_200, 80)
    assert (call.feature, call.tenant, call.user_id, call.session_id) == ("triage", "globex", "u-2", "s-2")
    assert call.usage_issues == []


def test_openinference_metadata_session_and_user() -> None:
    (call,) = calls(
        (
            "ChatCompletion",
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "openai",
                "llm.system": "openai",
                "llm.model_name": "gpt-4o-2024-08-06",
                "llm.token_count.prompt": 3_000,
                "llm.token_count.completion": 400,
                "llm.token_count.prompt_details.cache_read": 2_048,
                "llm.token_count.completion_details.reasoning": 0,
                "llm.token_count.total": 3_400,
                "session.id": "conv-7",
                "user.id": "u-7",
                "metadata": json.dumps({"feature": "search", "tenant": "initech"}),
                "llm.cost.total": 0.01,
            },
        )
    )
    assert call.usage_convention == "openinference"
    assert (call.operation, call.provider, call.response_model) == ("chat", "openai", "gpt-4o-2024-08-06")
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (3_000, 2_048, 400)
    assert (call.feature, call.tenant, call.user_id, call.session_id) == ("search", "initech", "u-7", "conv-7")
    assert call.client_cost_usd == Decimal("0.01")


def test_gemini_thoughts_in_semconv_are_inside_output() -> None:
    # opentelemetry-instrumentation-google-genai 1.3b0 adds thoughtsTokenCount to candidatesTokenCount
    # for gen_ai.usage.output_tokens and reports the thoughts as gen_ai.usage.reasoning.output_tokens
    (call,) = calls(
        (
            "generate_content gemini-2.5-flash",
            {
                "gen_ai.provider.name": "gcp.gemini",
                "gen_ai.operation.name": "generate_content",
                "gen_ai.request.model": "gemini-2.5-flash",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 1_000,
                "gen_ai.usage.reasoning.output_tokens": 900,
            },
        )
    )
    assert (call.output_tokens, call.reasoning_tokens, call.usage_issues) == (1_000, 900, [])
    # Gemini 2.5 Flash: $0.30 input, $2.50 output (thinking included)
    assert Pricer().price(call).cost_usd == (1_000 * Decimal("0.30") + 1_000 * Decimal("2.50")) / M


def test_gemini_raw_counts_keep_thoughts_outside_candidates() -> None:
    # the AI SDK 5 Google provider passes candidatesTokenCount and thoughtsTokenCount through as they are
    (call,) = calls(
        (
            "ai.generateText.doGenerate",
            {
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.provider": "google.generative-ai",
                "ai.model.id": "gemini-2.5-flash",
                "ai.usage.inputTokens": 1_000,
                "ai.usage.outputTokens": 300,
                "ai.usage.reasoningTokens": 200,
            },
        )
    )
    assert (call.provider, call.output_tokens, call.reasoning_tokens, call.usage_issues) == (
        "gcp.gemini",
        500,
        200,
        [],
    )


def test_a_reported_total_settles_where_thoughts_are() -> None:
    # OpenInference google-genai: completion = candidates + thoughts, total = prompt + completion
    (call,) = calls(
        (
            "GenerateContent",
            {
                "openinference.span.kind": "LLM",
                "llm.provider": "google",
                "llm.model_name": "gemini-2.5-flash",
                "llm.token_count.prompt": 1_000,
                "llm.token_count.completion": 500,
                "llm.token_count.completion_details.reasoning": 200,
                "llm.token_count.total": 1_500,
            },
        )
    )
    assert (call.provider, call.output_tokens, call.usage_issues) == ("gcp.gemini", 500, [])


def test_reasoning_larger_than_output_is_flagged_and_added() -> None:
    (call,) = calls(
        (
            "generate_content",
            {
                "gen_ai.provider.name": "gcp.gemini",
                "gen_ai.operation.name": "generate_content",
                "gen_ai.request.model": "gemini-2.5-flash",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 100,  # an older instrumentation: candidates only
                "gen_ai.usage.reasoning.output_tokens": 900,
            },
        )
    )
    assert call.output_tokens == 1_000
    assert call.usage_issues == ["reasoning tokens (900) exceed output tokens (100); counted as additive to output"]


def test_openai_reasoning_is_inside_output() -> None:
    (call,) = calls(
        (
            "chat o3",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "o3",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 1_000,
                "featurecost.usage.reasoning_tokens": 900,
                "gen_ai.usage.total_tokens": 1_100,
            },
        )
    )
    assert (call.output_tokens, call.reasoning_tokens, call.usage_issues) == (1_000, 900, [])


def test_impossible_usage_is_fixed_the_only_way_possible_and_flagged() -> None:
    (call,) = calls(
        (
            "chat claude",
            {
                # an instrumentation that put Anthropic's raw (cache-exclusive) input under the semconv name
                "gen_ai.provider.name": "anthropic",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-haiku-4-5",
                "gen_ai.usage.input_tokens": 20,
                "gen_ai.usage.cache_read.input_tokens": 4_000,
                "gen_ai.usage.output_tokens": 10,
                "featurecost.usage.cache_creation.1h_input_tokens": 5,
            },
        )
    )
    assert call.input_tokens == 4_020
    assert any("exceed input tokens (20)" in issue for issue in call.usage_issues)
    assert any("1h cache writes (5) exceed cache writes (0)" in issue for issue in call.usage_issues)
    assert call.cache_write_1h_tokens == 0
    assert call.raw_usage["gen_ai.usage.input_tokens"] == 20


def test_garbage_counts_are_flagged_not_priced_as_zero() -> None:
    (call,) = calls(
        (
            "chat",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": -5,
                "gen_ai.usage.output_tokens": "many",
            },
        )
    )
    assert call.usage_source == "missing"
    assert len(call.usage_issues) == 2
    assert Pricer().price(call).cost_usd is None


def test_totals_that_do_not_add_up_are_flagged() -> None:
    (call,) = calls(
        (
            "chat",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.usage.total_tokens": 500,
            },
        )
    )
    assert call.usage_issues == ["total tokens (500) != input (100) + output (10)"]


def test_service_tier_from_openai_response_attribute() -> None:
    (call,) = calls(
        (
            "chat",
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-5",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
                "openai.response.service_tier": "flex",
            },
        )
    )
    assert call.service_tier == "flex"


def test_non_llm_spans_are_dropped() -> None:
    assert (
        calls(
            ("GET /api", {"http.request.method": "GET"}),
            ("workflow", {"traceloop.span.kind": "workflow", "traceloop.workflow.name": "triage"}),
            ("invoke_agent", {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai"}),
            ("tool", {"gen_ai.operation.name": "execute_tool", "gen_ai.system": "openai"}),
            ("chain", {"openinference.span.kind": "CHAIN"}),
            ("ai.generateText", {"ai.operationId": "ai.generateText", "ai.usage.inputTokens": 5}),
        )
        == []
    )


def test_a_span_superseded_by_a_featurecost_span_is_not_billed() -> None:
    # OpenLLMetry's span around ours carries featurecost.superseded (set by our instrumentor)
    usage = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    outer = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", **usage, "featurecost.superseded": True}
    ours = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "featurecost.feature": "f",
        **usage,
    }
    (call,) = calls(("openai.chat", outer), ("chat gpt-4o-mini", ours))
    assert call.feature == "f"
    assert call.input_tokens == 100
