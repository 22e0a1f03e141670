"""OTLP/JSON → ``ExportTraceServiceRequest``.

OTLP/JSON is the protobuf JSON mapping with one deliberate difference: trace and
span ids are **hex** strings, not base64 (OTLP spec, "JSON Protobuf Encoding").
``json_format.Parse`` alone would base64-decode ``"5b8efff798038103d269b633813fc60c"``
into 24 wrong bytes without complaint, so ids are re-encoded before parsing. The rest
of the mapping — lowerCamelCase keys (original names accepted too), enums as
integers, 64-bit integers as strings or numbers, unknown fields ignored — is exactly
protobuf's, so ``json_format`` does it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpJsonError(ValueError):
    """The body is not an OTLP/JSON ExportTraceServiceRequest."""


def _fix_ids(obj: dict[str, Any], where: str) -> None:
    for name in _ID_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OtlpJsonError(f"{where}.{name} must be a hex string")
        try:
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError as exc:
            raise OtlpJsonError(f"{where}.{name} is not hex: {value!r}") from exc


def _list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = obj.get(camel, obj.get(snake))
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpJsonError(f"{where}.{camel} must be an array")
    return value


def _dicts(items: list[Any], where: str) -> list[dict[str, Any]]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise OtlpJsonError(f"{where}[{i}] must be an object")
    return items


def parse_request(body: bytes | str) -> ExportTraceServiceRequest:
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise OtlpJsonError("body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpJsonError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise OtlpJsonError("body must be a JSON object")
    for r, resource_spans in enumerate(_dicts(_list(data, "resourceSpans", "resource_spans", ""), "resourceSpans")):
        rs_where = f"resourceSpans[{r}]"
        scopes = _dicts(_list(resource_spans, "scopeSpans", "scope_spans", rs_where), f"{rs_where}.scopeSpans")
        for s, scope_spans in enumerate(scopes):
            ss_where = f"{rs_where}.scopeSpans[{s}]"
            for i, span in enumerate(_dicts(_list(scope_spans, "spans", "spans", ss_where), f"{ss_where}.spans")):
                span_where = f"{ss_where}.spans[{i}]"
                _fix_ids(span, span_where)
                links = _dicts(_list(span, "links", "links", span_where), f"{span_where}.links")
                for j, link in enumerate(links):
                    _fix_ids(link, f"{span_where}.links[{j}]")
    try:
        request = json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except RecursionError as exc:
        raise OtlpJsonError("body is nested too deeply") from exc
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise OtlpJsonError(f"not an ExportTraceServiceRequest: {exc}") from exc
    # ParseDict enforces protobuf's own nesting limit (100), the one the pipeline decodes
    # the WAL record with, so a request accepted here is readable there.
    return request


def _hexify(obj: dict[str, Any]) -> None:
    for name in ("traceId", "spanId", "parentSpanId"):
        if name in obj:
            obj[name] = base64.b64decode(obj[name]).hex()


def request_to_json(request: ExportTraceServiceRequest) -> str:
    """OTLP/JSON for ``request`` (hex ids): what a spec-following exporter sends."""
    data = json_format.MessageToDict(request)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hexify(span)
                for link in span.get("links", []):
                    _hexify(link)
    return json.dumps(data)


def response_to_json(response: ExportTraceServiceResponse) -> bytes:
    return json_format.MessageToJson(response, indent=None).encode()


__all__ = ["OtlpJsonError", "parse_request", "request_to_json", "response_to_json"]
