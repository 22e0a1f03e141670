"""Receive OTLP metrics and logs, acknowledge them, and drop them.

featurecost bills LLM calls from spans only. But an app launched with
``opentelemetry-instrument`` and one ``OTEL_EXPORTER_OTLP_ENDPOINT`` sends all three signals
to that endpoint; answering 404 / ``UNIMPLEMENTED`` makes the SDK log an export error every
minute, forever. So ``/v1/metrics`` and ``/v1/logs`` (and the gRPC ``MetricsService`` /
``LogsService``) check the request like ``/v1/traces`` does (bearer token, content type,
size, gzip, decoding: a bad request still gets its 4xx / ``INVALID_ARGUMENT``) and then
answer an empty success. Nothing is stored or forwarded: send metrics and logs that matter
to your observability backend directly.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurecost.collector.ingest.admission import Ingest

# The traces receiver's body handling, so both signals get the same limits and errors.
from featurecost.collector.ingest.http_receiver import JSON, PROTOBUF, PayloadTooLargeError
from featurecost.collector.ingest.http_receiver import _gunzip as gunzip
from featurecost.collector.ingest.http_receiver import _read_body as read_body
from featurecost.collector.ingest.http_receiver import _status_response as status_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    name: str  # "metrics" | "logs"
    path: str
    grpc_service: str
    request: type[Message]
    response: type[Message]


SIGNALS = (
    Signal(
        "metrics",
        "/v1/metrics",
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    ),
    Signal(
        "logs",
        "/v1/logs",
        "opentelemetry.proto.collector.logs.v1.LogsService",
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    ),
)


class _Dropped:
    """Logs once per signal that data arrived and was dropped: an operator sees why their
    metrics are not in featurecost, without a line per export."""

    def __init__(self) -> None:
        self._told: set[str] = set()

    def __call__(self, signal: Signal) -> None:
        if signal.name not in self._told:
            self._told.add(signal.name)
            log.info("OTLP %s received: acknowledged and dropped (featurecost bills from spans only)", signal.name)


def _decode(signal: Signal, body: bytes, media_type: str) -> None:
    if media_type == JSON:
        json_format.Parse(body, signal.request(), ignore_unknown_fields=True)
    else:
        signal.request.FromString(body)


def signal_routes(ingest: Ingest, max_body_bytes: int) -> list[Route]:
    """``POST /v1/metrics`` and ``POST /v1/logs`` for the OTLP/HTTP receiver."""
    dropped = _Dropped()

    def endpoint(signal: Signal) -> Callable[[Request], Any]:
        async def export(request: Request) -> Response:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            media_type = JSON if content_type == JSON else PROTOBUF
            if not ingest.authorized(request.headers.get("authorization")):
                return status_response(401, "missing or wrong bearer token", media_type)
            if content_type not in (PROTOBUF, JSON):
                return status_response(415, f"unsupported content type {content_type!r}", PROTOBUF)
            try:
                body = await read_body(request, max_body_bytes)
                encoding = request.headers.get("content-encoding", "").strip().lower()
                if encoding == "gzip":
                    body = gunzip(body, max_body_bytes)
                elif encoding not in ("", "identity"):
                    return status_response(415, f"unsupported content encoding {encoding!r}", media_type)
                _decode(signal, body, media_type)
            except PayloadTooLargeError:
                return status_response(413, f"request body over {max_body_bytes} bytes", media_type)
            except (OSError, EOFError, zlib.error) as exc:
                return status_response(400, f"bad gzip body: {exc}", media_type)
            except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
                return status_response(400, f"body is not an {signal.request.__name__}: {exc}", media_type)
            dropped(signal)
            response = signal.response()
            if media_type == JSON:
                return Response(json_format.MessageToJson(response, indent=None), media_type=JSON)
            return Response(response.SerializeToString(), media_type=PROTOBUF)

        return export

    return [Route(signal.path, endpoint(signal), methods=["POST"]) for signal in SIGNALS]


def signal_grpc_handlers(ingest: Ingest) -> list[grpc.GenericRpcHandler]:
    """``MetricsService/Export`` and ``LogsService/Export`` for the OTLP/gRPC server."""
    dropped = _Dropped()

    def handler(signal: Signal) -> grpc.GenericRpcHandler:
        async def export(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            metadata = dict(context.invocation_metadata() or ())
            authorization = metadata.get("authorization")
            if not ingest.authorized(authorization if isinstance(authorization, str) else None):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            try:
                signal.request.FromString(request)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an {signal.request.__name__}: {exc}")
            dropped(signal)
            return signal.response()

        method: grpc.RpcMethodHandler[bytes, Message] = grpc.unary_unary_rpc_method_handler(
            export,
            request_deserializer=None,  # raw bytes: a bad body answers INVALID_ARGUMENT, not UNKNOWN
            response_serializer=signal.response.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": method})

    return [handler(signal) for signal in SIGNALS]
