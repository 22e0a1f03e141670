"""Normalize: keep the LLM spans of an OTLP request and map each to a ``CallRecord``.

Non-LLM spans (HTTP, DB, framework spans) are dropped here; they carry no cost.
A span is an LLM call when it names a GenAI operation or provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from featurecost.collector.records import CallRecord
from featurecost.instrumentation import attributes as attrs

DEFAULT_ENVIRONMENT = "production"

_LLM_MARKERS = (attrs.GEN_AI_OPERATION_NAME, attrs.GEN_AI_PROVIDER_NAME, attrs.GEN_AI_SYSTEM)
# Operations that bill tokens; tool executions and agent wrappers are not calls.
_BILLABLE_OPERATIONS = {"chat", "text_completion", "generate_content", "embeddings", "responses", ""}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attribute_map(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _time(unix_nano: int) -> datetime:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)


def is_llm_span(span_attributes: dict[str, Any]) -> bool:
    if not any(key in span_attributes for key in _LLM_MARKERS):
        return False
    return _as_str(span_attributes.get(attrs.GEN_AI_OPERATION_NAME)) in _BILLABLE_OPERATIONS


def normalize_span(span: Span, resource: dict[str, Any]) -> CallRecord:
    a = attribute_map(span.attributes)
    trace_id = span.trace_id.hex()
    root_id = _as_str(a.get(attrs.ROOT_ID)) or trace_id
    has_usage = attrs.GEN_AI_USAGE_INPUT_TOKENS in a or attrs.GEN_AI_USAGE_OUTPUT_TOKENS in a
    usage_source = _as_str(a.get(attrs.USAGE_SOURCE)) or (attrs.USAGE_REPORTED if has_usage else attrs.USAGE_MISSING)
    if not has_usage:
        usage_source = attrs.USAGE_MISSING
    extras = {
        key: _as_str(value)
        for key, value in a.items()
        if key.startswith(attrs.EXTRA_PREFIX)
        and key not in attrs.ATTRIBUTION_KEYS
        and not key.startswith(("featurecost.usage.", "featurecost.request.", "featurecost.response."))
    }
    return CallRecord(
        trace_id=trace_id,
        span_id=span.span_id.hex(),
        start_time=_time(span.start_time_unix_nano),
        end_time=_time(span.end_time_unix_nano),
        environment=_as_str(
            resource.get(attrs.DEPLOYMENT_ENVIRONMENT) or resource.get(attrs.DEPLOYMENT_ENVIRONMENT_OLD)
        )
        or DEFAULT_ENVIRONMENT,
        service_name=_as_str(resource.get(attrs.SERVICE_NAME)),
        feature=_as_str(a.get(attrs.FEATURE)) or attrs.DEFAULT_FEATURE,
        tenant=_as_str(a.get(attrs.TENANT)),
        user_id=_as_str(a.get(attrs.USER)),
        plan=_as_str(a.get(attrs.PLAN)),
        root_id=root_id,
        session_id=_as_str(a.get(attrs.SESSION)) or root_id,
        version=_as_str(a.get(attrs.VERSION)),
        operation=_as_str(a.get(attrs.GEN_AI_OPERATION_NAME)),
        provider=_as_str(a.get(attrs.GEN_AI_PROVIDER_NAME) or a.get(attrs.GEN_AI_SYSTEM)),
        request_model=_as_str(a.get(attrs.GEN_AI_REQUEST_MODEL)),
        response_model=_as_str(a.get(attrs.GEN_AI_RESPONSE_MODEL)),
        input_tokens=_as_int(a.get(attrs.GEN_AI_USAGE_INPUT_TOKENS)),
        output_tokens=_as_int(a.get(attrs.GEN_AI_USAGE_OUTPUT_TOKENS)),
        cache_read_tokens=_as_int(a.get(attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
        cache_write_tokens=_as_int(a.get(attrs.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)),
        reasoning_tokens=_as_int(a.get(attrs.USAGE_REASONING_TOKENS)),
        usage_source=usage_source,
        status="error" if span.status.code == Status.STATUS_CODE_ERROR else "ok",
        error_type=_as_str(a.get(attrs.ERROR_TYPE)),
        attributes=extras,
    )


def normalize_request(request: ExportTraceServiceRequest) -> Iterator[CallRecord]:
    """The LLM calls in ``request``, in the order they appear."""
    for resource_spans in request.resource_spans:
        resource = attribute_map(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if is_llm_span(attribute_map(span.attributes)):
                    yield normalize_span(span, resource)
