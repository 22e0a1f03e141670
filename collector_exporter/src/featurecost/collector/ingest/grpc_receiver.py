"""Receive: the OTLP/gRPC endpoint (``opentelemetry.proto.collector.trace.v1.TraceService/Export``).

Same ingest core as OTLP/HTTP (validate → WAL fsync → ack). gRPC's own limits do the
size check: a message over ``max_body_bytes`` fails with ``RESOURCE_EXHAUSTED`` and no
``RetryInfo`` (so exporters do not retry it); gzip (``grpc-encoding: gzip``) is
handled by gRPC. Backpressure answers ``UNAVAILABLE`` with a ``google.rpc.RetryInfo``
— both in the standard ``grpc-status-details-bin`` trailer and in the
``google.rpc.retryinfo-bin`` trailer the OpenTelemetry exporters read.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from featurecost.collector.ingest.admission import BackpressureError, Ingest

log = logging.getLogger(__name__)


def retry_trailers(message: str, retry_after: int) -> tuple[tuple[str, bytes], ...]:
    retry_info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after))
    detail = any_pb2.Any()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
    )


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """The generated servicer, fed the request's raw bytes: decoding ourselves lets bad
    data answer INVALID_ARGUMENT (gRPC's own decoder would answer UNKNOWN) and lets
    the WAL store the bytes as received instead of re-encoding them."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    async def Export(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> ExportTraceServiceResponse:
        stats = self.ingest.stats
        stats.requests += 1
        metadata = dict(context.invocation_metadata() or ())
        authorization = metadata.get("authorization")
        if not self.ingest.authorized(authorization if isinstance(authorization, str) else None):
            stats.rejected_requests += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            decoded = ExportTraceServiceRequest.FromString(request)
        except DecodeError as exc:
            stats.rejected_requests += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an ExportTraceServiceRequest: {exc}")
        try:
            accepted = await self.ingest.export(decoded, request)
        except BackpressureError as exc:
            stats.rejected_requests += 1
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, str(exc), trailing_metadata=retry_trailers(str(exc), exc.retry_after)
            )
        except Exception as exc:
            # Nothing was acknowledged; UNKNOWN would tell exporters to drop the data.
            log.exception("unexpected error handling an OTLP/gRPC request")
            stats.rejected_requests += 1
            message = f"internal error: {exc}"
            retry = self.ingest.retry_after
            await context.abort(grpc.StatusCode.UNAVAILABLE, message, trailing_metadata=retry_trailers(message, retry))
        response = ExportTraceServiceResponse()
        if accepted.rejected_spans:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=accepted.rejected_spans, error_message=accepted.message)
            )
        return response


_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def create_grpc_server(
    ingest: Ingest,
    address: str,
    *,
    max_body_bytes: int = 16 * 1024 * 1024,
    tls: tuple[bytes, bytes] | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """An unstarted gRPC server for ``address`` (``host:port``); returns it and the bound port.

    ``tls`` is (certificate chain PEM, private key PEM). ``reuse_port``: a worker of
    ``--workers N``, sharing the port its supervisor holds (ingest/listen.py ``reserve``)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_body_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # gRPC sets SO_REUSEPORT by default: a second collector could then bind the same
            # port and take half the connections. The port must be ours alone.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    service = TraceService(ingest)
    handler: grpc.RpcMethodHandler[bytes, ExportTraceServiceResponse] = grpc.unary_unary_rpc_method_handler(
        service.Export,
        request_deserializer=None,  # raw bytes: see TraceService
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, {"Export": handler}),))
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        key_pair = [(tls[1], tls[0])]
        port = server.add_secure_port(address, grpc.ssl_server_credentials(key_pair))
    if port == 0:  # older gRPC reports a failed bind this way instead of raising
        raise RuntimeError(f"failed to bind to address {address}")
    return server, port
