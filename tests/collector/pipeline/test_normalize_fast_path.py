"""The per-layout fast path of the normalizer produces exactly the records of the general path.

``normalize_request`` decodes only the attributes a layout needs and walks alias lists cut
to the keys present; the general path (``read_attributes`` + ``normalize_span`` with
``FULL_LOOKUPS``) decodes every read key and walks every alias. Both must agree on every
field, on spans from every convention, with the odd values (empty strings, lists, wrong
types, duplicate keys, metadata JSON) that make the alias order matter.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bench.span_corpus import corpus_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from featurecost.collector.pipeline.normalize import (
    ResourceFacts,
    _decode,
    layout_of,
    normalize_request,
    read_attributes,
)
from featurecost.collector.pipeline.records import CallRecord
from tests.collector.pipeline.test_normalize import record_spans
from testsupport.collector import normalize_general, request_for


def _as_dicts(calls: list[CallRecord]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in calls]


def _both(request: ExportTraceServiceRequest) -> tuple[list[CallRecord], list[CallRecord]]:
    fresh = ExportTraceServiceRequest.FromString(request.SerializeToString())
    return list(normalize_request(fresh)), normalize_general(
        ExportTraceServiceRequest.FromString(request.SerializeToString())
    )


def test_fast_and_general_paths_agree_on_the_bench_corpus() -> None:
    spans = corpus_spans(3_000)
    request = ExportTraceServiceRequest.FromString(request_for(spans).SerializeToString())
    fast, general = _both(request)
    assert len(general) > 1_000  # the corpus is mostly app traffic with LLM calls in it
    assert {c.usage_convention for c in general} >= {"genai-semconv", "genai-semconv-deprecated", "openinference"}
    assert _as_dicts(fast) == _as_dicts(general)


ODD_SPANS: list[tuple[str, dict[str, Any]]] = [
    # empty values fall through to the next alias; lists are joined
    (
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "",
            "llm.request.model_name": "claude-haiku-4-5",
            "featurecost.feature": "",
            "traceloop.association.properties.feature": "triage",
            "featurecost.tenant": ["a", "b"],
            "gen_ai.usage.input_tokens": "1200",
            "gen_ai.usage.output_tokens": 3.0,
            "gen_ai.usage.cache_read.input_tokens": -1,
            "gen_ai.usage.cache_read_input_tokens": 100,
            "featurecost.response.service_tier": "Batch",
            "featurecost.client.cost_usd": "0.25",
            "featurecost.extra_flag": True,
            "featurecost.usage.source": "",
        },
    ),
    # wrong types are reported as issues, not read
    (
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": True,
            "gen_ai.usage.output_tokens": "lots",
            "gen_ai.usage.total_tokens": 10,
            "gen_ai.usage.cost": "not a number",
            "featurecost.request.service_tier": "flex",
        },
    ),
    # OpenInference metadata JSON adds metadata.* keys; an explicit key wins over it
    (
        "LLM",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "metadata": json.dumps({"feature": "meta-feature", "tenant": "meta-tenant", "n": [1, 2]}),
            "metadata.tenant": "explicit-tenant",
        },
    ),
    # the same layout with metadata whose keys differ from span to span
    (
        "LLM",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "metadata": json.dumps({"user_id": "u-9", "session_id": "s-9"}),
            "metadata.tenant": "explicit-tenant",
        },
    ),
    # Gemini thoughts outside output; reasoning larger than output
    (
        "generate_content",
        {
            "gen_ai.operation.name": "generate_content",
            "gen_ai.system": "gemini",
            "gen_ai.request.model": "gemini-2.5-flash",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.reasoning.output_tokens": 50,
            "featurecost.usage.input_audio_tokens": 500,
        },
    ),
    # not billable: a tool execution, and a Vercel wrapper span
    ("execute_tool", {"gen_ai.operation.name": "execute_tool", "gen_ai.provider.name": "openai"}),
    ("ai.generateText", {"ai.operationId": "ai.generateText", "ai.usage.inputTokens": 5}),
    # Vercel v5 with the cache write only in provider metadata
    (
        "ai.streamText.doStream",
        {
            "ai.operationId": "ai.streamText.doStream",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.usage.promptTokens": 7,
            "ai.usage.completionTokens": 3,
            "ai.response.providerMetadata": json.dumps({"anthropic": {"cacheCreationInputTokens": 40}}),
            "ai.telemetry.metadata.userId": "u-1",
        },
    ),
]


def test_fast_and_general_paths_agree_on_odd_values() -> None:
    request = record_spans(*ODD_SPANS)
    fast, general = _both(request)
    assert len(general) == 6
    assert _as_dicts(fast) == _as_dicts(general)
    by_tenant = {c.tenant for c in general}
    assert {"a,b", "explicit-tenant"} <= by_tenant


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    request = record_spans(("chat", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for key, value in (("gen_ai.request.model", "gpt-4o"), ("featurecost.feature", "first")):
        kv = KeyValue(key=key)
        kv.value.string_value = value
        span.attributes.append(kv)
    again = KeyValue(key="featurecost.feature")
    again.value.string_value = "second"
    span.attributes.append(again)
    fast, general = _both(request)
    assert _as_dicts(fast) == _as_dicts(general)
    assert fast[0].feature == "second"


def test_resource_facts_match_the_resource_attributes() -> None:
    facts = ResourceFacts.of({"deployment.environment": "staging", "service.name": "svc"})
    assert (facts.environment, facts.service_name) == ("staging", "svc")
    assert ResourceFacts.of({}).environment == "production"


def test_values_that_change_kind_under_one_layout_decode_as_the_general_path() -> None:
    # _decode first reads each position as the kind it held last time: spans of one layout whose
    # values switch kind (and defaults: "", 0, False) must still decode exactly as read_attributes.
    values: list[Any] = ["t", "", 7, 0, False, True, 1.5, 0.0, ["a", "b"], "again", 3]
    spans = [
        (
            "chat",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "featurecost.tenant": value,
                "gen_ai.usage.input_tokens": values[-1 - n],
            },
        )
        for n, value in enumerate(values)
    ]
    request = record_spans(*spans)
    decoded = []
    for span in request.resource_spans[0].scope_spans[0].spans:
        key_values = list(span.attributes)
        decoded.append(_decode(key_values, layout_of(tuple(kv.key for kv in key_values))))
    expected = [read_attributes(span.attributes) for span in request.resource_spans[0].scope_spans[0].spans]
    assert decoded == expected
    assert [{k: type(v) for k, v in d.items()} for d in decoded] == [
        {k: type(v) for k, v in d.items()} for d in expected
    ]
    fast, general = _both(request)
    assert _as_dicts(fast) == _as_dicts(general)
