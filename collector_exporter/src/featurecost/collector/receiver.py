"""Receive: the OTLP/HTTP endpoint (``POST /v1/traces``).

A request is acknowledged only once the write-ahead log has fsynced it. Errors follow
the OTLP/HTTP spec: 400 for data that does not decode (not retryable), 413 for bodies
over the limit, 415 for unsupported content types, 503 with Retry-After when the log
is full (retryable). Error bodies are ``google.rpc.Status`` messages.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurecost.collector.wal import WalClosedError, WalFullError, WriteAheadLog

PROTOBUF = "application/x-protobuf"


@dataclass(slots=True)
class ReceiverStats:
    requests: int = 0
    spans: int = 0
    rejected_requests: int = 0


class PayloadTooLargeError(Exception):
    pass


def _status_response(http_status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = status_pb2.Status(code=http_status, message=message).SerializeToString()
    return Response(body, status_code=http_status, media_type=PROTOBUF, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = decompressor.decompress(body, limit + 1)
    if len(out) > limit or decompressor.unconsumed_tail:
        raise PayloadTooLargeError
    if not decompressor.eof:
        raise gzip.BadGzipFile("truncated gzip body")
    return out


def create_receiver_app(wal: WriteAheadLog, *, max_body_bytes: int = 16 * 1024 * 1024) -> Starlette:
    stats = ReceiverStats()

    async def export_traces(request: Request) -> Response:
        stats.requests += 1
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != PROTOBUF:
            stats.rejected_requests += 1
            return _status_response(415, f"unsupported content type {content_type!r}; use {PROTOBUF}")
        try:
            body = await _read_body(request, max_body_bytes)
            encoding = request.headers.get("content-encoding", "").strip().lower()
            if encoding == "gzip":
                body = _gunzip(body, max_body_bytes)
            elif encoding not in ("", "identity"):
                stats.rejected_requests += 1
                return _status_response(415, f"unsupported content encoding {encoding!r}")
        except PayloadTooLargeError:
            stats.rejected_requests += 1
            return _status_response(413, f"request body over {max_body_bytes} bytes")
        except (OSError, EOFError, zlib.error) as exc:
            stats.rejected_requests += 1
            return _status_response(400, f"bad gzip body: {exc}")
        try:
            decoded = ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            stats.rejected_requests += 1
            return _status_response(400, f"body is not an ExportTraceServiceRequest: {exc}")
        try:
            await asyncio.wrap_future(wal.append(body))
        except (WalFullError, WalClosedError) as exc:
            stats.rejected_requests += 1
            return _status_response(503, str(exc), headers={"Retry-After": "5"})
        stats.spans += sum(len(ss.spans) for rs in decoded.resource_spans for ss in rs.scope_spans)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    app = Starlette(routes=[Route("/v1/traces", export_traces, methods=["POST"])])
    app.state.stats = stats
    return app
