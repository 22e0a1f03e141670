"""What both OTLP transports (HTTP and gRPC) do with a decoded request: validate the
spans, write the valid ones to the write-ahead log, and say what was rejected.

A span without a valid identity (16-byte trace id, 8-byte span id, not all zeros)
cannot be de-duplicated or attributed, and a span that starts or ends further in the
future than clock skew explains (``max_future_skew``) would open a partition per
month it claims — a request of such spans can exceed what one ClickHouse insert may
touch — and sit in reports for periods that have not happened. Both are rejected —
reported through OTLP ``partial_success`` (``rejected_spans`` + a message), never
silently dropped — and the rest of the request is accepted.

Spans that cannot be LLM calls are dropped at the door: a span is kept only when one of its
attribute keys is in ``aliases.LLM_SPAN_MARKERS`` — the table the normalizer decides with, and
the one the OpenTelemetry Collector filter is generated from — so an app's HTTP, DB and
framework spans never reach the write-ahead log or the worker — nor get their attributes read:
a byte scan of the protobuf body for the marker keys, placed on spans by walking the message's
length prefixes, leaves only the spans holding a marker to check. They are acknowledged (the ack
covers the whole request: they were accepted and intentionally not kept) and counted
(``ReceiverStats.dropped_not_llm``, ``featurecost_spans_dropped_total{reason="not_llm"}``).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from featurecost.collector.ingest.wal import WalClosedError, WalFullError, WriteAheadLog
from featurecost.collector.pipeline import aliases

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(slots=True)
class ReceiverStats:
    requests: int = 0
    spans: int = 0
    rejected_requests: int = 0
    rejected_spans: int = 0
    backpressure: int = 0
    dropped_not_llm: int = 0  # acknowledged, not kept: no key that can make them an LLM call


@dataclass(frozen=True, slots=True)
class Accepted:
    spans: int  # written to the write-ahead log
    rejected_spans: int = 0
    message: str = ""
    dropped_not_llm: int = 0  # acknowledged, not kept


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


_LLM_MARKERS = frozenset(aliases.LLM_SPAN_MARKERS)
# A key is stored as its UTF-8 bytes in the encoded request: a body without any of these
# bytes holds no span that can be an LLM call (a body with them may still hold none: the
# per-span check decides).
_LLM_MARKER_BYTES = tuple(marker.encode() for marker in aliases.LLM_SPAN_MARKERS)
# ... and encoded as a KeyValue key: field 1 (tag 0x0A), then its length in one byte (every
# marker is < 128 bytes), then the name
_LLM_MARKER_KEY_PATTERN = re.compile(
    b"|".join(re.escape(bytes((0x0A, len(marker))) + marker) for marker in _LLM_MARKER_BYTES)
)
# A length written in more bytes than needed (legal protobuf no common encoder writes) ends in
# 0x00: a marker after one may be a key the pattern above misses. A second pass, searched
# separately because one pattern with both costs ~6x (0x00 is everywhere in protobuf).
_LLM_MARKER_AFTER_ZERO = re.compile(b"\x00(?:" + b"|".join(re.escape(marker) for marker in _LLM_MARKER_BYTES) + b")")


def may_hold_llm_spans(body: bytes) -> bool:
    """False when no span in the encoded ``body`` can be an LLM call (a byte scan: GB/s)."""
    return any(marker in body for marker in _LLM_MARKER_BYTES)


def _varint(body: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = body[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(body: bytes, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each length-delimited field number ``wanted`` in ``body[start:end]``."""
    wanted_tag = wanted << 3 | 2
    pos = start
    while pos < end:
        tag, after = _varint(body, pos)
        if tag == wanted_tag:
            length, after = _varint(body, after)
            yield after, after + length
            pos = after + length
        else:
            pos = _skip(body, pos)
    if pos != end:
        raise ValueError("field runs past its message")


def _span_bounds(body: bytes, start: int, end: int, starts: list[int], ends: list[int]) -> None:
    """``_fields(body, start, end, 2)`` of a ScopeSpans into ``starts``/``ends``, with the usual
    case inline (a span's tag, then a length of one or two bytes): this runs once per span."""
    pos = start
    while pos < end:
        if body[pos] == 0x12:  # field 2 (spans), length-delimited
            first = body[pos + 1]
            if first < 0x80:
                pos += 2
                length = first
            else:
                second = body[pos + 2]
                if second >= 0x80:
                    length, pos = _varint(body, pos + 1)
                else:
                    pos += 3
                    length = (first & 0x7F) | second << 7
            starts.append(pos)
            pos += length
            ends.append(pos)
            continue
        tag, after = _varint(body, pos)
        if tag == 0x12:  # a span whose tag was written in more bytes than needed: still a span
            length, pos = _varint(body, after)
            starts.append(pos)
            pos += length
            ends.append(pos)
            continue
        pos = _skip(body, pos)  # another field (the scope, schema_url, unknown ones)
    if pos != end:
        raise ValueError("span runs past its ScopeSpans")


def _skip(body: bytes, pos: int) -> int:
    """Where the field starting at ``pos`` ends."""
    tag, pos = _varint(body, pos)
    wire = tag & 7
    if wire == 2:
        length, pos = _varint(body, pos)
        return pos + length
    if wire == 0:
        return _varint(body, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise ValueError(f"wire type {wire}")  # groups: not in OTLP; the caller falls back


def _marker_keys(body: bytes) -> list[int] | None:
    """Where a marker is written as a key, in body order; None when one may be a key whose
    length was written in more bytes than needed: the caller then checks every span's keys. A
    marker's name anywhere else is inside a value (a URL, a prompt), not a key."""
    if _LLM_MARKER_AFTER_ZERO.search(body) is not None:
        return None
    return [match.start() for match in _LLM_MARKER_KEY_PATTERN.finditer(body)]


def llm_span_candidates(body: bytes) -> set[int] | None:
    """Which spans of the encoded ``body`` (numbered in request order) have an LLM marker key,
    without decoding any span: ``_marker_keys`` finds the markers encoded as a ``KeyValue`` key,
    and walking the three levels of length prefixes (request → ResourceSpans → ScopeSpans →
    Span) places them on spans. A name spelled inside a value is not a key and does not count.
    At worst a span whose *event* has such a key is kept: the worker's normalizer, which decides
    on the span's own attributes, then drops it. None when the scan or the walk meets anything
    unexpected: the caller checks every span's keys."""
    keyed = _marker_keys(body)
    if keyed is None:
        return None
    if not keyed:
        return set()
    try:
        starts: list[int] = []
        ends: list[int] = []
        for rs_start, rs_end in _fields(body, 0, len(body), 1):  # ExportTraceServiceRequest.resource_spans
            for ss_start, ss_end in _fields(body, rs_start, rs_end, 2):  # ResourceSpans.scope_spans
                _span_bounds(body, ss_start, ss_end, starts, ends)  # ScopeSpans.spans
    except (ValueError, IndexError):
        return None
    # hits and spans are both in body order: merge them in one pass
    candidates: set[int] = set()
    hit, hits = 0, len(keyed)
    for index, end in enumerate(ends):
        if hit == hits:
            break
        if keyed[hit] < end:
            if keyed[hit] >= starts[index]:
                candidates.add(index)
            while hit < hits and keyed[hit] < end:
                hit += 1
    return candidates


def may_be_llm_call(span: Span) -> bool:
    """Whether the normalizer could bill ``span``: it has a key that marks an LLM span.
    Keys alone decide — no value is decoded — so HTTP/DB spans cost a key scan each."""
    return not _LLM_MARKERS.isdisjoint([kv.key for kv in span.attributes])


@dataclass(frozen=True, slots=True)
class Screened:
    kept: int  # valid spans that can be LLM calls: what goes to the write-ahead log
    rejected: int  # invalid spans, reported through partial_success
    not_llm: int  # valid spans that cannot be LLM calls: acknowledged, dropped
    message: str  # about the first rejection


def screen_spans(
    request: ExportTraceServiceRequest,
    max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
    *,
    candidates: set[int] | None = None,
) -> Screened:
    """Remove from ``request`` (in place) the spans ``drop_invalid_spans`` rejects and the
    valid spans that cannot be LLM calls. ``candidates`` (``llm_span_candidates`` of the body
    ``request`` was decoded from) replaces the key check: spans it names are kept, the others
    dropped, without reading any attribute."""
    latest_ns = time.time_ns() + int(max_future_skew * 1e9)
    kept = rejected = not_llm = 0
    first_problem = ""
    markers = _LLM_MARKERS
    number = -1  # the span's position in the whole request, as llm_span_candidates counts
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            drop: list[int] = []
            for index, span in enumerate(spans):
                number += 1
                problem = _span_problem(span, latest_ns)
                if problem is not None:
                    drop.append(index)
                    rejected += 1
                    first_problem = first_problem or f"span {span.name!r}: {problem}"
                elif candidates is None:
                    if markers.isdisjoint([kv.key for kv in span.attributes]):
                        drop.append(index)
                        not_llm += 1
                elif number not in candidates:
                    drop.append(index)
                    not_llm += 1
            if len(drop) == len(spans):
                del spans[:]
            else:
                for index in reversed(drop):
                    del spans[index]
                kept += len(spans)
    message = ""
    if rejected:
        message = f"{rejected} span(s) rejected; first: {first_problem}"
    return Screened(kept, rejected, not_llm, message)


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
        """Validate, drop what cannot be an LLM call, append the rest to the WAL and wait for
        its fsync. ``raw`` is the request's serialized form when the transport has it (saves
        re-encoding when every span is kept, and a byte scan rules out LLM spans at once)."""
        candidates = None if raw is None else llm_span_candidates(raw)
        screened = screen_spans(request, self.max_future_skew, candidates=candidates)
        rejected, message = screened.rejected, screened.message
        self.stats.rejected_spans += rejected
        if screened.kept == 0:
            # nothing to keep, so nothing to make durable: acknowledged even while storage is stuck
            self.stats.dropped_not_llm += screened.not_llm
            return Accepted(0, rejected, message, screened.not_llm)
        whole = rejected == 0 and screened.not_llm == 0
        payload = raw if raw is not None and whole else request.SerializeToString()
        blocked = self.blocked()
        if blocked:
            self.stats.backpressure += 1
            raise BackpressureError(f"storage cannot progress: {blocked}", self.retry_after)
        try:
            # the decoded request rides along: the worker normalizes it without decoding it again
            await asyncio.wrap_future(self.wal.append(payload, request))
        except WalFullError as exc:
            self.stats.backpressure += 1
            raise BackpressureError(str(exc), self.retry_after) from exc
        except WalClosedError as exc:
            self.stats.backpressure += 1
            raise BackpressureError("collector is shutting down", self.retry_after) from exc
        except OSError as exc:  # the disk failed: nothing was acknowledged, so a retry is safe
            self.stats.backpressure += 1
            raise BackpressureError(f"write-ahead log write failed: {exc}", self.retry_after) from exc
        self.stats.spans += screened.kept
        self.stats.dropped_not_llm += screened.not_llm  # counted once acknowledged: a 503 is retried
        return Accepted(screened.kept, rejected, message, screened.not_llm)
