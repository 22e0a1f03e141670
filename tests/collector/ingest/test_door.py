"""Non-LLM spans are dropped at the door: the receivers (HTTP protobuf, HTTP JSON, gRPC) keep
only spans that can be LLM calls, so an app's HTTP/DB/framework spans never reach the
write-ahead log or the worker. They are acknowledged and counted; invalid spans are still
rejected through partial success as before. Real exporters, real sockets, real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import httpx
import pytest
from bench.span_corpus import NON_LLM_NAMES, corpus_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.ingest import otlp_json
from featurecost.collector.ingest.admission import (
    Ingest,
    llm_span_candidates,
    may_be_llm_call,
    may_hold_llm_spans,
    screen_spans,
)
from featurecost.collector.ingest.http_receiver import create_receiver_app
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.normalize import normalize_request
from tests.conftest import serve_in_thread
from testsupport.collector import (
    ClickHouseHttp,
    grpc_in_thread,
    llm_spans,
    request_for,
    span_ids,
    start_clickhouse_http,
    wal_span_ids,
)
from testsupport.harness import start_collector

PB = {"content-type": "application/x-protobuf"}


def app_spans(count: int) -> list[ReadableSpan]:
    """HTTP server/client, DB and framework spans, as an app's own instrumentation records them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.app")
    shapes: list[tuple[str, dict[str, str | int]]] = [
        ("POST /api/answer", {"http.request.method": "POST", "http.route": "/api/answer", "server.address": "app"}),
        ("SELECT orders", {"db.system.name": "postgresql", "db.query.text": "SELECT 1", "db.namespace": "app"}),
        # a value naming an LLM key is not a key: still not an LLM span
        ("GET", {"url.full": "https://x/?q=gen_ai.operation.name", "http.response.status_code": 200}),
        ("render", {}),  # no attributes at all
    ]
    for i in range(count):
        name, attributes = shapes[i % len(shapes)]
        tracer.start_span(name, attributes=attributes).end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def interleaved(calls: Sequence[ReadableSpan], others: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    out: list[ReadableSpan] = []
    per_call = max(1, len(others) // max(1, len(calls)))
    rest = list(others)
    for call in calls:
        out.extend(rest[:per_call])
        del rest[:per_call]
        out.append(call)
    return out + rest


@pytest.fixture
def wal(tmp_path: Path) -> Iterator[WriteAheadLog]:
    log = WriteAheadLog(tmp_path / "wal")
    yield log
    log.close()


def test_the_door_decides_on_the_normalizers_markers() -> None:
    calls, others = corpus_spans(400, llm_only=True), app_spans(8)
    request = request_for([*calls, *others])
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    kept = [s for s in spans if may_be_llm_call(s)]
    assert len(kept) == len(calls)
    assert may_hold_llm_spans(request_for(calls).SerializeToString())
    # the byte scan rules out a body without any marker key...
    assert not may_hold_llm_spans(request_for(app_spans(8)[:2]).SerializeToString())
    # ...and only rules in one that may hold one: a value naming a marker is not a key
    assert may_hold_llm_spans(request_for(app_spans(3)[2:]).SerializeToString())
    assert not any(may_be_llm_call(s) for s in request_for(app_spans(3)[2:]).resource_spans[0].scope_spans[0].spans)


def test_http_protobuf_mixed_request_keeps_exactly_the_llm_spans(wal: WriteAheadLog) -> None:
    calls, others = llm_spans(12), app_spans(60)
    ingest = Ingest(wal)
    with serve_in_thread(create_receiver_app(ingest=ingest)) as url:
        exporter = HttpExporter(endpoint=f"{url}/v1/traces")
        assert exporter.export(interleaved(calls, others)) is SpanExportResult.SUCCESS
        assert exporter.export(others[:30]) is SpanExportResult.SUCCESS  # nothing to keep: acked, no record
        exporter.shutdown()
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(calls))
    assert len(list(wal.iter_from(wal.checkpoint))) == 1
    assert (ingest.stats.spans, ingest.stats.dropped_not_llm, ingest.stats.rejected_spans) == (12, 90, 0)


def test_http_json_mixed_request_keeps_exactly_the_llm_spans(wal: WriteAheadLog) -> None:
    calls, others = llm_spans(5), app_spans(20)
    ingest = Ingest(wal)
    body = otlp_json.request_to_json(request_for(interleaved(calls, others)))
    with serve_in_thread(create_receiver_app(ingest=ingest)) as url:
        response = httpx.post(f"{url}/v1/traces", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert not json.loads(response.content).get("partialSuccess", {}).get("rejectedSpans")
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(calls))
    assert ingest.stats.dropped_not_llm == 20


def test_grpc_mixed_request_keeps_exactly_the_llm_spans(wal: WriteAheadLog) -> None:
    calls, others = llm_spans(7), app_spans(21)
    ingest = Ingest(wal)
    with grpc_in_thread(ingest) as endpoint:
        exporter = GrpcExporter(endpoint=endpoint.target, insecure=True)
        assert exporter.export(interleaved(calls, others)) is SpanExportResult.SUCCESS
        assert exporter.export(others) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(calls))
    assert ingest.stats.dropped_not_llm == 42


def test_invalid_spans_are_still_rejected_next_to_dropped_ones(wal: WriteAheadLog) -> None:
    calls, others = llm_spans(3), app_spans(4)
    request = request_for(interleaved(calls, others))
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    bad_call = next(s for s in spans if s.name == "chat gpt-4o-mini")
    bad_call.span_id = bytes(8)
    bad_other = next(s for s in spans if s.name == "SELECT orders")
    bad_other.trace_id = b"short"
    ingest = Ingest(wal)
    with grpc_in_thread(ingest) as endpoint, grpc.insecure_channel(endpoint.target) as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    # both invalid spans are reported, whatever they are; the valid non-LLM ones are not
    assert response.partial_success.rejected_spans == 2
    assert len(wal_span_ids(wal)) == 2
    assert (ingest.stats.rejected_spans, ingest.stats.dropped_not_llm) == (2, 3)


def test_non_llm_request_is_acked_while_storage_is_stuck_and_an_llm_one_is_not(wal: WriteAheadLog) -> None:
    ingest = Ingest(wal, blocked=lambda: "ClickHouse unreachable", retry_after=2)
    with serve_in_thread(create_receiver_app(ingest=ingest)) as url:
        others = httpx.post(f"{url}/v1/traces", content=request_for(app_spans(10)).SerializeToString(), headers=PB)
        calls = httpx.post(f"{url}/v1/traces", content=request_for(llm_spans(2)).SerializeToString(), headers=PB)
    assert others.status_code == 200  # nothing to keep, nothing that could be lost
    assert not ExportTraceServiceResponse.FromString(others.content).HasField("partial_success")
    assert calls.status_code == 503
    assert calls.headers["retry-after"] == "2"
    assert wal_span_ids(wal) == []
    assert ingest.stats.dropped_not_llm == 10


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseHttp]:
    server = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    yield server
    server.process.stop()


def test_collector_stores_exactly_the_calls_of_a_whole_trace_stream(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    stream = corpus_spans(620, non_llm_per_call=30)  # 20 LLM calls, 600 HTTP/DB/cache/framework spans
    calls = [s for s in stream if s.name not in NON_LLM_NAMES]
    assert len(calls) == 20
    collector = start_collector(
        tmp_path / "data", tmp_path / "logs", ["--storage", clickhouse.dsn, "--flush-interval", "0.05"]
    )
    try:
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        for i in range(0, len(stream), 100):
            assert exporter.export(stream[i : i + 100]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        grpc_exporter = GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
        assert grpc_exporter.export(app_spans(40)) is SpanExportResult.SUCCESS
        grpc_exporter.shutdown()
        collector.wait_drained()
        metrics = httpx.get(f"{collector.api_url}/metrics", timeout=5).text
        status = collector.status()
    finally:
        assert collector.process.stop() == 0, collector.process.log()
    counts = clickhouse.stored_span_counts()
    assert set(counts) == span_ids(calls)
    assert set(counts.values()) == {1}
    assert 'featurecost_spans_dropped_total{reason="not_llm"} 640.0' in metrics
    assert "featurecost_received_spans_total 20.0" in metrics
    assert status["receiver"]["dropped_not_llm"] == 640


def _screened_payload(body: bytes, *, walk: bool) -> tuple[bytes, int, int, int]:
    request = ExportTraceServiceRequest.FromString(body)
    screened = screen_spans(request, candidates=llm_span_candidates(body) if walk else None)
    return request.SerializeToString(), screened.kept, screened.not_llm, screened.rejected


def test_the_byte_walk_keeps_exactly_the_spans_a_key_check_of_every_span_keeps() -> None:
    huge = app_spans(1)[0]  # a span over 16 KiB: a three-byte length prefix
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.huge")
    tracer.start_span("chat", attributes={"gen_ai.operation.name": "chat", "prompt": "x" * 40_000}).end()
    tracer.start_span("GET", attributes={"http.route": "/", "body": "y" * 20_000}).end()
    big = list(memory.get_finished_spans())
    bodies = [
        request_for(corpus_spans(620, non_llm_per_call=30)).SerializeToString(),
        request_for(corpus_spans(300)).SerializeToString(),  # Vercel wrapper spans, OpenInference...
        request_for(corpus_spans(200, non_llm_only=True)).SerializeToString(),
        request_for([*llm_spans(3), *app_spans(9), huge, *big]).SerializeToString(),
    ]
    with_unknown = ExportTraceServiceRequest.FromString(bodies[3])
    scope = with_unknown.resource_spans[0].scope_spans[0]
    scope.MergeFromString(b"\x98\x06\x01")  # an unknown varint field (99) next to the spans
    scope.spans[0].MergeFromString(b"\xa2\x06\x03abc")  # an unknown length-delimited one in a span
    bodies.append(with_unknown.SerializeToString())
    invalid = ExportTraceServiceRequest.FromString(bodies[0])
    invalid.resource_spans[0].scope_spans[0].spans[3].span_id = bytes(8)
    bodies.append(invalid.SerializeToString())
    for body in bodies:
        assert llm_span_candidates(body) is not None
        assert _screened_payload(body, walk=True) == _screened_payload(body, walk=False)
    kept = _screened_payload(bodies[0], walk=True)
    assert kept[1] == 20
    assert kept[2] == 600
    # what the walk cannot follow (an unknown group field) it leaves to the key check
    assert llm_span_candidates(bodies[3] + b"\x93\x03\x94\x03") is None


def test_a_marker_key_on_an_event_keeps_the_span_for_the_normalizer_to_drop() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("tests.events").start_span("GET", attributes={"http.route": "/"})
    span.add_event("note", {"gen_ai.system": "openai"})
    span.end()
    body = request_for(list(memory.get_finished_spans())).SerializeToString()
    assert llm_span_candidates(body) == {0}  # the byte scan cannot tell an event's key from the span's
    request = ExportTraceServiceRequest.FromString(body)
    assert list(normalize_request(request)) == []  # the span's own keys decide in the worker


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes, *, overlong_tag: bool = False, overlong_length: bool = False) -> bytes:
    """A length-delimited field; ``overlong_*``: its tag or length as a varint one byte longer
    than needed — legal protobuf (every parser reads it), though no common encoder writes it."""
    tag = _varint(number << 3 | 2)
    length = _varint(len(payload))
    if overlong_tag:
        tag = bytes((tag[0] | 0x80, 0x00))
    if overlong_length:
        length = bytes((length[0] | 0x80, 0x00))
    return tag + length + payload


def test_spans_and_keys_in_legal_but_unusual_encodings_are_never_dropped_as_not_llm() -> None:
    # every span of these bodies is an LLM call: the walk must not lose one to an encoding it
    # did not expect (it would be acknowledged and dropped: a lost call)
    def span(n: int, *, overlong_key: bool = False) -> bytes:
        value = _field(2, _field(1, b"chat"))  # AnyValue.string_value
        key = _field(1, b"gen_ai.operation.name", overlong_length=overlong_key)
        attribute = _field(9, key + value)  # Span.attributes
        ids = _field(1, bytes([n + 1]) * 16) + _field(2, bytes([n + 1]) * 8) + _field(5, b"chat")
        times = b"\x39" + (10**18).to_bytes(8, "little") + b"\x41" + (10**18 + 1).to_bytes(8, "little")
        return ids + times + attribute

    def body(*spans: bytes, overlong_span_tag: int | None = None) -> bytes:
        scope = b"".join(_field(2, s, overlong_tag=i == overlong_span_tag) for i, s in enumerate(spans))
        return _field(1, _field(2, scope))

    bodies = [
        body(span(0), span(1), span(2), overlong_span_tag=1),  # a span's tag in two bytes
        body(span(0), span(1, overlong_key=True), span(2)),  # a marker key's length in two bytes
    ]
    for raw in bodies:
        request = ExportTraceServiceRequest.FromString(raw)
        assert sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans) == 3
        assert [kv.key for kv in request.resource_spans[0].scope_spans[0].spans[1].attributes] == [
            "gen_ai.operation.name"
        ]
        assert _screened_payload(raw, walk=True)[1:] == (3, 0, 0)
