"""A varied, realistic span corpus for the collector benches and the normalizer parity test.

Attribute sets are the ones the instrumentations emit (see tests/collector/pipeline/test_normalize.py
for the sources of the names): our own instrumentors (OpenAI, Anthropic, streams, errors,
extra ``featurecost.*`` attributes, budget guard), OpenLLMetry (current and deprecated names),
OpenInference (``metadata`` JSON, invocation parameters), OpenLIT (client cost), the Vercel AI
SDK (wrapper + provider-call spans) — mixed with the HTTP/DB spans a real app also exports.
Spans are recorded by the real OpenTelemetry SDK so the OTLP encoding is the exporter's own.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

_MODELS = (
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
)


def _featurecost_openai(n: int) -> tuple[str, dict[str, Any], bool]:
    provider, request_model, response_model = _MODELS[n % 2]
    a: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "server.address": "api.openai.com",
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": f"chatcmpl-{n:012d}",
        "gen_ai.response.finish_reasons": ["stop"],
        "featurecost.usage.source": "reported",
        "gen_ai.usage.input_tokens": 1_000 + n % 977,
        "gen_ai.usage.output_tokens": 50 + n % 313,
        "gen_ai.usage.cache_read.input_tokens": 512 if n % 3 == 0 else 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "featurecost.feature": f"feature-{n % 11}",
        "featurecost.tenant": f"tenant-{n % 97}",
        "user.id": f"user-{n % 1009}",
        "featurecost.plan": ("free", "pro", "enterprise")[n % 3],
        "featurecost.root_id": f"root-{n // 3}",
        "session.id": f"session-{n // 5}",
        "featurecost.version": "2026.11.1",
        "featurecost.customer_region": ("eu", "us")[n % 2],
    }
    if n % 4 == 0:
        a["featurecost.usage.reasoning_tokens"] = 20 + n % 17
    if n % 9 == 0:
        a["featurecost.response.service_tier"] = "default"
    if n % 13 == 0:
        a["featurecost.budget.decision"] = "allow"
        a["featurecost.budget.estimate_usd"] = "0.0031"
    return f"chat {request_model}", a, False


def _featurecost_anthropic(n: int) -> tuple[str, dict[str, Any], bool]:
    provider, request_model, response_model = _MODELS[2 + n % 2]
    a: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "server.address": "api.anthropic.com",
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": f"msg_{n:016d}",
        "featurecost.usage.source": "reported",
        "gen_ai.usage.input_tokens": 4_000 + n % 1013,
        "gen_ai.usage.output_tokens": 200 + n % 211,
        "gen_ai.usage.cache_read.input_tokens": 3_000 if n % 2 else 0,
        "gen_ai.usage.cache_creation.input_tokens": 800 if n % 5 == 0 else 0,
        "featurecost.feature": f"feature-{n % 11}",
        "featurecost.tenant": f"tenant-{n % 97}",
        "user.id": f"user-{n % 1009}",
        "featurecost.root_id": f"root-{n // 3}",
    }
    if n % 7 == 0:
        a["featurecost.usage.cache_creation_1h.input_tokens"] = 400 if n % 5 == 0 else 0
    return f"chat {request_model}", a, False


def _featurecost_error(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "server.address": "api.openai.com",
            "error.type": "RateLimitError",
            "featurecost.usage.source": "missing",
            "featurecost.feature": f"feature-{n % 11}",
            "featurecost.tenant": f"tenant-{n % 97}",
        },
        True,
    )


def _openllmetry(n: int) -> tuple[str, dict[str, Any], bool]:
    a: dict[str, Any] = {
        "llm.request.type": "chat",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o-mini",
        "llm.is_streaming": False,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": f"chatcmpl-{n:012d}",
        "llm.usage.total_tokens": 1_300 + n % 50,
        "gen_ai.usage.completion_tokens": 300,
        "gen_ai.usage.prompt_tokens": 1_000 + n % 50,
        "gen_ai.usage.cache_read_input_tokens": 0,
        "traceloop.association.properties.feature": f"feature-{n % 11}",
        "traceloop.association.properties.tenant_id": f"tenant-{n % 97}",
        "traceloop.association.properties.user_id": f"user-{n % 1009}",
        "traceloop.workflow.name": "support",
    }
    if n % 2:
        # current OpenLLMetry: semconv usage names
        del a["gen_ai.usage.completion_tokens"], a["gen_ai.usage.prompt_tokens"]
        a["gen_ai.usage.input_tokens"] = 1_000 + n % 50
        a["gen_ai.usage.output_tokens"] = 300
    return "openai.chat", a, False


def _openinference(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": json.dumps({"model": "gpt-4o", "temperature": 0.1}),
            "input.mime_type": "application/json",
            "output.mime_type": "application/json",
            "llm.token_count.prompt": 2_000 + n % 100,
            "llm.token_count.completion": 150,
            "llm.token_count.total": 2_150 + n % 100,
            "llm.token_count.prompt_details.cache_read": 1_024 if n % 2 else 0,
            "session.id": f"session-{n // 5}",
            "user.id": f"user-{n % 1009}",
            "metadata": json.dumps({"feature": f"feature-{n % 11}", "tenant": f"tenant-{n % 97}", "retry": n % 2}),
        },
        False,
    )


def _openlit(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "chat gpt-4o-mini",
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 1_000 + n % 10,
            "gen_ai.usage.output_tokens": 500,
            "gen_ai.usage.cost": 0.00045,
        },
        False,
    )


def _vercel(n: int) -> list[tuple[str, dict[str, Any], bool]]:
    usage = {"ai.usage.inputTokens": 50 + n % 9, "ai.usage.outputTokens": 120, "ai.usage.cachedInputTokens": 3_000}
    outer = {"ai.operationId": "ai.generateText", "ai.model.id": "claude-sonnet-4-5", **usage}
    inner = {
        "ai.operationId": "ai.generateText.doGenerate",
        "operation.name": "ai.generateText.doGenerate support-bot",
        "ai.model.provider": "anthropic.messages",
        "ai.model.id": "claude-sonnet-4-5",
        "ai.response.model": "claude-sonnet-4-5-20250929",
        "ai.telemetry.functionId": "support-bot",
        "ai.telemetry.metadata.tenant": f"tenant-{n % 97}",
        "ai.telemetry.metadata.userId": f"user-{n % 1009}",
        "ai.response.providerMetadata": json.dumps({"anthropic": {"cacheCreationInputTokens": 800}}),
        "gen_ai.system": "anthropic.messages",
        "gen_ai.usage.input_tokens": 50 + n % 9,
        "gen_ai.usage.output_tokens": 120,
        **usage,
    }
    return [("ai.generateText", outer, False), ("ai.generateText.doGenerate", inner, False)]


def _http(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "POST /api/answer",
        {
            "http.request.method": "POST",
            "url.path": "/api/answer",
            "http.route": "/api/answer",
            "http.response.status_code": 200,
            "server.address": "app.internal",
            "user_agent.original": "Mozilla/5.0",
        },
        False,
    )


def _db(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "SELECT orders",
        {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM orders WHERE id = $1", "db.namespace": "app"},
        False,
    )


def _http_client(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "GET",
        {
            "http.request.method": "GET",
            "url.full": f"https://inventory.internal/items/{n % 1000}",
            "server.address": "inventory.internal",
            "server.port": 443,
            "http.response.status_code": 200,
            "network.protocol.version": "1.1",
        },
        False,
    )


def _redis(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "GET",
        {
            "db.system.name": "redis",
            "db.query.text": f"GET session:{n % 5000}",
            "server.address": "cache",
            "db.namespace": "0",
        },
        False,
    )


def _framework(n: int) -> tuple[str, dict[str, Any], bool]:
    return (
        "render answer",
        {"code.function.name": "render_answer", "code.namespace": "app.views", "thread.id": n % 8},
        False,
    )


# What a real app exports around its LLM calls: server, client, database, cache and framework spans.
_NON_LLM = (_http, _http_client, _db, _redis, _framework)
NON_LLM_NAMES = frozenset({"POST /api/answer", "SELECT orders", "GET", "render answer"})


# Weights: our own instrumentors dominate; every other convention appears.
_MIX = (
    (_featurecost_openai, 10),
    (_featurecost_anthropic, 6),
    (_featurecost_error, 1),
    (_openllmetry, 3),
    (_openinference, 2),
    (_openlit, 1),
)


def _shapes(n: int) -> list[tuple[str, dict[str, Any], bool]]:
    """The spans of one app request: an HTTP span, maybe a DB span, one or two LLM spans."""
    cycle = [make for make, weight in _MIX for _ in range(weight)]
    out = [_http(n)]
    if n % 4 == 0:
        out.append(_db(n))
    if n % 23 == 0:
        out.extend(_vercel(n))
    else:
        out.append(cycle[n % len(cycle)](n))
    return out


_counter = itertools.count()


def _app_shapes(n: int, non_llm_per_call: int) -> list[tuple[str, dict[str, Any], bool]]:
    """A whole trace stream: ``non_llm_per_call`` HTTP/DB/cache/framework spans, then one LLM call."""
    out = [_NON_LLM[(n + i) % len(_NON_LLM)](n * non_llm_per_call + i) for i in range(non_llm_per_call)]
    cycle = [make for make, weight in _MIX for _ in range(weight)]
    out.append(cycle[n % len(cycle)](n))
    return out


def corpus_spans(
    count: int, *, llm_only: bool = False, non_llm_per_call: int | None = None, non_llm_only: bool = False
) -> list[ReadableSpan]:
    """About ``count`` finished spans (more than ``count`` LLM calls' worth of app traffic when
    ``llm_only`` is False: HTTP and DB spans come along), with unique ids.

    ``non_llm_per_call``: the trace stream of an app that exports everything, that many
    HTTP/DB/cache/framework spans per LLM call. ``non_llm_only``: those spans alone."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "support-app", "deployment.environment.name": "production", "service.version": "1.4.2"}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("featurecost.bench")
    made = 0
    while made < count:
        n = next(_counter)
        if non_llm_only:
            shapes = [_NON_LLM[n % len(_NON_LLM)](n)]
        elif non_llm_per_call is not None:
            shapes = _app_shapes(n, non_llm_per_call)
        else:
            shapes = _shapes(n)
        for name, attributes, failed in shapes:
            if llm_only and name in (*NON_LLM_NAMES, "ai.generateText"):
                continue
            span = tracer.start_span(name, attributes=attributes)
            if failed:
                span.set_status(Status(StatusCode.ERROR, "rate limited"))
            span.end()
            made += 1
    provider.shutdown()
    return list(memory.get_finished_spans())[:count]
