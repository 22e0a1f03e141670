"""What both OTLP transports (HTTP and gRPC) do with a decoded request: validate the
spans, write the valid ones to the write-ahead log, and say what was rejected.

A span without a valid identity (16-byte trace id, 8-byte span id, not all zeros)
cannot be de-duplicated or attributed, and a span that starts or ends further in the
future than clock skew explains (``max_future_skew``) would open a partition per
month it claims — a request of such spans can exceed what one ClickHouse insert may
touch — and sit in reports for periods that have not happened. Both are rejected —
reported through OTLP ``partial_success`` (``rejected_spans`` + a message), never
silently dropped — and the rest of the request is accepted.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from featurecost.collector.ingest.wal import WalClosedError, WalFullError, WriteAheadLog

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(slots=True)
class ReceiverStats:
    requests: int = 0
    spans: int = 0
    rejected_requests: int = 0
    rejected_spans: int = 0
    backpressure: int = 0


@dataclass(frozen=True, slots=True)
class Accepted:
    spans: int
    rejected_spans: int = 0
    message: str = ""


class BackpressureError(Exception):
    """Nothing was written: the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


DEFAULT_MAX_FUTURE_SKEW = 3600.0  # seconds a span may start or end after the collector's now


def _span_problem(span: Span, latest_ns: int) -> str | None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return f"invalid trace_id {trace_id.hex()!r} (need 16 bytes, not all zero)"
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return f"invalid span_id {span_id.hex()!r} (need 8 bytes, not all zero)"
    if span.start_time_unix_nano > latest_ns or span.end_time_unix_nano > latest_ns:
        return "starts or ends in the future beyond the allowed clock skew"
    return None


def drop_invalid_spans(
    request: ExportTraceServiceRequest, max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW
) -> tuple[int, int, str]:
    """Remove spans without a valid identity, or too far in the future, from ``request`` in place.

    Returns (accepted spans, rejected spans, message about the first rejection).
    """
    latest_ns = time.time_ns() + int(max_future_skew * 1e9)
    accepted = rejected = 0
    first_problem = ""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            bad: list[int] = []
            for index, span in enumerate(spans):
                problem = _span_problem(span, latest_ns)
                if problem is None:
                    continue
                bad.append(index)
                first_problem = first_problem or f"span {span.name!r}: {problem}"
            for index in reversed(bad):
                del spans[index]
            accepted += len(spans)
            rejected += len(bad)
    message = ""
    if rejected:
        message = f"{rejected} span(s) rejected; first: {first_problem}"
    return accepted, rejected, message


def bearer_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``; the scheme is case-insensitive (RFC 9110 §11.1)."""
    if authorization is None:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


class Ingest:
    def __init__(
        self,
        wal: WriteAheadLog,
        *,
        retry_after: int = 5,
        bearer_token: str | None = None,
        blocked: Callable[[], str] = lambda: "",
        max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
    ) -> None:
        """``blocked``: why storage cannot progress (``Pipeline.blocked``), or ``""``.
        While it says so, requests are refused as retryable instead of acknowledged
        into a log nobody drains."""
        self.wal = wal
        self.retry_after = retry_after
        self.bearer_token = bearer_token
        self.blocked = blocked
        self.max_future_skew = max_future_skew
        self.stats = ReceiverStats()

    def authorized(self, authorization: str | None) -> bool:
        return self.bearer_token is None or bearer_matches(authorization, self.bearer_token)

    async def export(self, request: ExportTraceServiceRequest, raw: bytes | None) -> Accepted:
        """Validate, append to the WAL and wait for its fsync. ``raw`` is the request's
        serialized form when the transport has it (saves re-encoding)."""
        accepted, rejected, message = drop_invalid_spans(request, self.max_future_skew)
        self.stats.rejected_spans += rejected
        if accepted == 0:
            return Accepted(0, rejected, message)
        payload = raw if raw is not None and rejected == 0 else request.SerializeToString()
        blocked = self.blocked()
        if blocked:
            self.stats.backpressure += 1
            raise BackpressureError(f"storage cannot progress: {blocked}", self.retry_after)
        try:
            await asyncio.wrap_future(self.wal.append(payload))
        except WalFullError as exc:
            self.stats.backpressure += 1
            raise BackpressureError(str(exc), self.retry_after) from exc
        except WalClosedError as exc:
            self.stats.backpressure += 1
            raise BackpressureError("collector is shutting down", self.retry_after) from exc
        except OSError as exc:  # the disk failed: nothing was acknowledged, so a retry is safe
            self.stats.backpressure += 1
            raise BackpressureError(f"write-ahead log write failed: {exc}", self.retry_after) from exc
        self.stats.spans += accepted
        return Accepted(accepted, rejected, message)
