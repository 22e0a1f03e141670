"""Receive: the OTLP/HTTP endpoint (``POST /v1/traces``), binary protobuf and JSON.

A request is acknowledged only once the write-ahead log has fsynced it. Status codes
follow the OTLP/HTTP spec so exporters retry exactly what is worth retrying:

- 200 — stored; spans without a valid identity are reported in ``partial_success``
  (``rejected_spans`` + ``error_message``), the rest are kept;
- 400 — the body does not decode (not retryable), 401 — bad bearer token,
  413 — body over the limit (before or after gzip), 415 — unsupported type/encoding;
- 503 + ``Retry-After`` — the WAL is over its bounds, the collector is draining, storage
  cannot progress, or the bodies of requests in progress already hold ``max_inflight_bytes``
  (retryable; nothing was written).

The response (and error ``google.rpc.Status``) is encoded like the request: protobuf
for ``application/x-protobuf``, JSON for ``application/json``.
"""

from __future__ import annotations

import gzip
import logging
import zlib

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from featurecost.collector.ingest import otlp_json
from featurecost.collector.ingest.admission import BackpressureError, Ingest, ReceiverStats
from featurecost.collector.ingest.wal import WriteAheadLog

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_INLINE_DECODE_BYTES = 256 * 1024
log = logging.getLogger(__name__)

__all__ = ["JSON", "PROTOBUF", "ReceiverStats", "create_receiver_app"]


class PayloadTooLargeError(Exception):
    pass


class BusyError(Exception):
    """Taking this request's body would go over the in-flight budget: retry later."""


# Decoding OTLP/JSON holds ~7x the body in Python objects (measured: 16.6 MB → 113 MB peak).
JSON_EXPANSION = 7


class InflightBudget:
    """Bytes that request bodies (and their decoding) hold in memory, over all requests in
    progress. Each request is bounded by ``max_body_bytes``, but a fleet of clients sending
    at once is not; past ``limit`` a request is answered 503 + Retry-After (exporters retry)
    instead of the process growing until it is killed. Event-loop only: no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, held: list[int], size: int) -> None:
        if self.used + size > self.limit:
            raise BusyError(f"collector busy: {self.used} bytes of request bodies in memory (limit {self.limit})")
        self.used += size
        held[0] += size

    def give(self, held: list[int]) -> None:
        self.used -= held[0]
        held[0] = 0


def _status_response(
    http_status: int, message: str, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    status = status_pb2.Status(code=http_status, message=message)
    body = json_format.MessageToJson(status, indent=None).encode() if media_type == JSON else status.SerializeToString()
    return Response(body, status_code=http_status, media_type=media_type, headers=headers)


async def _read_body(
    request: Request, limit: int, budget: InflightBudget | None = None, held: list[int] | None = None
) -> bytes:
    """The body, at most ``limit`` bytes; with ``budget``, counted in it (into ``held``)."""
    budget = budget or InflightBudget(limit)
    held = held if held is not None else [0]
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise PayloadTooLargeError
        budget.take(held, int(declared))  # before reading: refuse early, not half-way
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError
        if size > held[0]:  # chunked, or longer than declared
            budget.take(held, size - held[0])
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


def create_receiver_app(
    wal: WriteAheadLog | None = None,
    *,
    ingest: Ingest | None = None,
    max_body_bytes: int = 16 * 1024 * 1024,
    max_inflight_bytes: int = 512 * 1024 * 1024,
) -> Starlette:
    """``max_inflight_bytes``: request bodies held at once, over all requests (``InflightBudget``)."""
    if ingest is None:
        if wal is None:
            raise ValueError("create_receiver_app needs a WAL or an Ingest")
        ingest = Ingest(wal)
    core = ingest
    stats = core.stats
    budget = InflightBudget(max_inflight_bytes)

    async def export_traces(request: Request) -> Response:
        held = [0]
        try:
            return await _export_traces(request, held)
        except BusyError as exc:
            stats.rejected_requests += 1
            stats.backpressure += 1
            return _status_response(503, str(exc), PROTOBUF, headers={"Retry-After": str(core.retry_after)})
        except Exception as exc:
            # Nothing was acknowledged; a 500 would tell exporters to drop the data.
            log.exception("unexpected error handling an OTLP/HTTP request")
            stats.rejected_requests += 1
            return _status_response(503, f"internal error: {exc}", PROTOBUF, headers={"Retry-After": "5"})
        finally:
            budget.give(held)

    async def _export_traces(request: Request, held: list[int]) -> Response:
        stats.requests += 1
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        media_type = JSON if content_type == JSON else PROTOBUF
        if not core.authorized(request.headers.get("authorization")):
            stats.rejected_requests += 1
            return _status_response(401, "missing or wrong bearer token", media_type)
        if content_type not in (PROTOBUF, JSON):
            stats.rejected_requests += 1
            message = f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}"
            return _status_response(415, message, PROTOBUF)
        try:
            body = await _read_body(request, max_body_bytes, budget, held)
            encoding = request.headers.get("content-encoding", "").strip().lower()
            if encoding == "gzip":
                body = _gunzip(body, max_body_bytes)
                budget.take(held, len(body))
            elif encoding not in ("", "identity"):
                stats.rejected_requests += 1
                return _status_response(415, f"unsupported content encoding {encoding!r}", media_type)
        except PayloadTooLargeError:
            stats.rejected_requests += 1
            return _status_response(413, f"request body over {max_body_bytes} bytes", media_type)
        except (OSError, EOFError, zlib.error) as exc:
            stats.rejected_requests += 1
            return _status_response(400, f"bad gzip body: {exc}", media_type)
        raw: bytes | None
        try:
            if media_type == JSON:
                budget.take(held, len(body) * JSON_EXPANSION)
                # JSON decoding is slow in Python: keep big bodies off the event loop
                decoded = (
                    await run_in_threadpool(otlp_json.parse_request, body)
                    if len(body) > _INLINE_DECODE_BYTES
                    else otlp_json.parse_request(body)
                )
                raw = None
            else:
                decoded, raw = ExportTraceServiceRequest.FromString(body), body
        except (DecodeError, otlp_json.OtlpJsonError) as exc:
            stats.rejected_requests += 1
            return _status_response(400, f"body is not an ExportTraceServiceRequest: {exc}", media_type)
        try:
            accepted = await core.export(decoded, raw)
        except BackpressureError as exc:
            stats.rejected_requests += 1
            return _status_response(503, str(exc), media_type, headers={"Retry-After": str(exc.retry_after)})
        response = ExportTraceServiceResponse()
        if accepted.rejected_spans:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=accepted.rejected_spans, error_message=accepted.message)
            )
        if media_type == JSON:
            return Response(otlp_json.response_to_json(response), media_type=JSON)
        return Response(response.SerializeToString(), media_type=PROTOBUF)

    app = Starlette(routes=[Route("/v1/traces", export_traces, methods=["POST"])])
    app.state.stats = stats
    app.state.ingest = core
    app.state.inflight = budget
    return app
