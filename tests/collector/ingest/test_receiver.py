"""The OTLP receivers over real sockets: HTTP (protobuf, JSON, gzip) and gRPC, with the
real OpenTelemetry exporters where they apply. What the receiver acknowledged is read
back from the write-ahead log."""

from __future__ import annotations

import base64
import gzip
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from featurecost.collector.ingest.admission import Ingest
from featurecost.collector.ingest.http_receiver import create_receiver_app
from featurecost.collector.ingest.wal import WriteAheadLog
from testsupport.collector import grpc_in_thread, llm_spans, request_for, span_ids, wal_span_ids
from testsupport.harness import wait_until
from testsupport.servers import serve_in_thread

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


@dataclass
class Http:
    url: str
    wal: WriteAheadLog
    ingest: Ingest

    @property
    def traces(self) -> str:
        return f"{self.url}/v1/traces"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Http]:
    wal = WriteAheadLog(tmp_path / "wal")
    ingest = Ingest(wal)
    with serve_in_thread(create_receiver_app(ingest=ingest, max_body_bytes=1024 * 1024)) as url:
        yield Http(url, wal, ingest)
    wal.close()


def _to_otlp_json(request: ExportTraceServiceRequest) -> dict[str, object]:
    """OTLP/JSON the way the spec says: protobuf JSON mapping, ids as hex."""
    data = json_format.MessageToDict(request)
    for rs in data["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def test_real_http_exporter_protobuf_and_gzip_is_acked_after_the_wal(http: Http) -> None:
    spans = llm_spans(30)
    for compression in (Compression.NoCompression, Compression.Gzip):
        exporter = HttpExporter(endpoint=http.traces, compression=compression)
        assert exporter.export(spans[:15] if compression is Compression.NoCompression else spans[15:]) is (
            SpanExportResult.SUCCESS
        )
        exporter.shutdown()
    assert sorted(wal_span_ids(http.wal)) == sorted(span_ids(spans))


def test_otlp_json_spec_shaped_body_with_hex_ids(http: Http) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "my.library", "version": "1.0.0"},
                        "spans": [
                            {
                                "traceId": "0AF7651916CD43DD8448EB211C80319C",
                                "spanId": "B7AD6B7169203331",
                                "parentSpanId": "00F067AA0BA902B7",
                                "name": "chat gpt-4o-mini",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "kind": 3,
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
                                ],
                                "status": {"code": 2},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(http.traces, content=json.dumps(body), headers=JS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "partialSuccess" not in response.json() or not response.json()["partialSuccess"].get("rejectedSpans")
    (record,) = http.wal.iter_from(http.wal.checkpoint)
    span = ExportTraceServiceRequest.FromString(record.payload).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    assert span.span_id == bytes.fromhex("b7ad6b7169203331")
    assert span.parent_span_id == bytes.fromhex("00f067aa0ba902b7")
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.kind == 3
    assert span.status.code == 2
    assert span.attributes[1].value.int_value == 120


def test_json_format_alone_would_mis_decode_hex_ids() -> None:
    # Why otlp_json exists: protobuf's JSON mapping reads bytes as base64.
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c"}]}]}]}
    naive = json_format.ParseDict(body, ExportTraceServiceRequest())
    assert naive.resource_spans[0].scope_spans[0].spans[0].trace_id != bytes.fromhex("5b8efff798038103d269b633813fc60c")


def test_json_from_real_sdk_spans_gzipped(http: Http) -> None:
    spans = llm_spans(12)
    body = gzip.compress(json.dumps(_to_otlp_json(request_for(spans))).encode())
    response = httpx.post(http.traces, content=body, headers={**JS, "content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert sorted(wal_span_ids(http.wal)) == sorted(span_ids(spans))


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_spans_without_identity_are_rejected_through_partial_success(http: Http, encoding: str) -> None:
    spans = llm_spans(3)
    request = request_for(spans)
    bad = request.resource_spans[0].scope_spans[0].spans
    bad[0].trace_id = bytes(16)
    bad[1].span_id = b"\x01\x02"
    if encoding == "protobuf":
        response = httpx.post(http.traces, content=request.SerializeToString(), headers=PB)
        assert response.status_code == 200
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    else:
        response = httpx.post(http.traces, content=json.dumps(_to_otlp_json(request)), headers=JS)
        assert response.status_code == 200
        partial_json = response.json()["partialSuccess"]
        rejected, message = int(partial_json["rejectedSpans"]), partial_json["errorMessage"]
    assert rejected == 2
    assert "trace_id" in message
    assert wal_span_ids(http.wal) == [(bad[2].trace_id.hex(), bad[2].span_id.hex())]
    assert http.ingest.stats.rejected_spans == 2


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (JS, b"{not json", 400),
        (JS, b"[1, 2]", 400),
        (JS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', 400),
        (JS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', 400),
        (JS, b'{"resourceSpans": {"not": "a list"}}', 400),
        (PB, b"\x0a\xff\xff\xff\xff\x0f", 400),
        ({**PB, "content-encoding": "gzip"}, b"\x1f\x8b not gzip", 400),
        ({**PB, "content-encoding": "br"}, b"x", 415),
        ({"content-type": "text/plain"}, b"x", 415),
    ],
)
def test_bad_bodies_get_a_status_body_and_4xx(http: Http, headers: dict[str, str], body: bytes, status: int) -> None:
    response = httpx.post(http.traces, content=body, headers=headers)
    assert response.status_code == status
    if headers["content-type"] == "application/json":
        assert response.json()["code"] == status
    else:
        assert status_pb2.Status.FromString(response.content).code == status
    assert list(http.wal.iter_from(http.wal.checkpoint)) == []


def test_size_limit_applies_before_and_after_gunzip(http: Http) -> None:
    big = b"\x00" * (2 * 1024 * 1024)
    assert httpx.post(http.traces, content=big, headers=PB).status_code == 413
    bomb = gzip.compress(big)  # small on the wire, over the limit once inflated
    assert len(bomb) < 1024 * 1024
    assert httpx.post(http.traces, content=bomb, headers={**PB, "content-encoding": "gzip"}).status_code == 413


def test_full_wal_answers_503_with_retry_after(tmp_path: Path) -> None:
    body = request_for(llm_spans(8)).SerializeToString()
    wal = WriteAheadLog(tmp_path / "wal", max_bytes=len(body) * 3 // 2)  # room for one request
    with serve_in_thread(create_receiver_app(ingest=Ingest(wal, retry_after=7))) as url:
        statuses = [httpx.post(f"{url}/v1/traces", content=body, headers=PB) for _ in range(3)]
    wal.close()
    assert statuses[0].status_code == 200
    refused = statuses[-1]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "7"
    assert "unstored bytes" in status_pb2.Status.FromString(refused.content).message


def test_bearer_token_is_required_when_configured(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    spans = llm_spans(2)
    with serve_in_thread(create_receiver_app(ingest=Ingest(wal, bearer_token="s3cret"))) as url:
        body = request_for(spans).SerializeToString()
        assert httpx.post(f"{url}/v1/traces", content=body, headers=PB).status_code == 401
        wrong = {**PB, "authorization": "Bearer nope"}
        assert httpx.post(f"{url}/v1/traces", content=body, headers=wrong).status_code == 401
        exporter = HttpExporter(endpoint=f"{url}/v1/traces", headers={"authorization": "Bearer s3cret"})
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        lower = llm_spans(1)  # the scheme is case-insensitive (RFC 9110)
        body = request_for(lower).SerializeToString()
        assert httpx.post(f"{url}/v1/traces", content=body, headers={**PB, "authorization": "bearer s3cret"}).is_success
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(spans) | span_ids(lower))
    wal.close()


def test_spans_too_far_in_the_future_are_rejected_through_partial_success(http: Http) -> None:
    now = time.time_ns()
    future = llm_spans(2, start_ns=now + 2 * 3600 * 10**9)  # beyond the default hour of clock skew
    skewed = llm_spans(1, start_ns=now + 60 * 10**9)  # a minute of clock skew is fine
    body = request_for([*future, *skewed]).SerializeToString()
    response = httpx.post(http.traces, content=body, headers=PB)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "future" in partial.error_message
    assert sorted(wal_span_ids(http.wal)) == sorted(span_ids(skewed))


def _nested_value(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"stringValue": "x"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


@pytest.mark.parametrize("depth", ["json", "protobuf"])
def test_json_nested_too_deeply_is_a_400_not_a_retry(http: Http, depth: str) -> None:
    if depth == "json":  # past the JSON parser's recursion limit
        body = '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}"
    else:  # valid JSON, but attribute values nested past protobuf's decoding limit
        request = _to_otlp_json(request_for(llm_spans(1)))
        span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]  # type: ignore[index]
        span["attributes"].append({"key": "deep", "value": _nested_value(60)})
        body = json.dumps(request)
    response = httpx.post(http.traces, content=body, headers=JS)
    assert response.status_code == 400
    assert ("nested too deeply" if depth == "json" else "too deep") in response.json()["message"]
    assert list(http.wal.iter_from(http.wal.checkpoint)) == []


def test_fuzzed_bodies_never_take_the_receiver_down(http: Http) -> None:
    rng = random.Random(20261123)
    valid = request_for(llm_spans(5)).SerializeToString()
    valid_json = json.dumps(_to_otlp_json(request_for(llm_spans(2)))).encode()
    client = httpx.Client()
    for i in range(150):
        if i % 3 == 0:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
        elif i % 3 == 1:
            mutated = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
            body = bytes(mutated)
        else:
            cut = bytearray(valid_json[: rng.randrange(len(valid_json))])
            body = bytes(cut)
        headers = JS if i % 3 == 2 else PB
        response = client.post(http.traces, content=body, headers=headers)
        assert response.status_code in (200, 400), (i, response.status_code, response.text)
    client.close()
    assert httpx.post(http.traces, content=valid, headers=PB).status_code == 200


# --- gRPC ---


@pytest.fixture
def wal(tmp_path: Path) -> Iterator[WriteAheadLog]:
    log = WriteAheadLog(tmp_path / "wal")
    yield log
    log.close()


def test_real_grpc_exporter_with_gzip(wal: WriteAheadLog) -> None:
    spans = llm_spans(40)
    with grpc_in_thread(Ingest(wal)) as endpoint:
        for compression, chunk in ((grpc.Compression.NoCompression, spans[:20]), (grpc.Compression.Gzip, spans[20:])):
            exporter = GrpcExporter(endpoint=endpoint.target, insecure=True, compression=compression)
            assert exporter.export(chunk) is SpanExportResult.SUCCESS
            exporter.shutdown()
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(spans))


def test_grpc_partial_success(wal: WriteAheadLog) -> None:
    request = request_for(llm_spans(2))
    request.resource_spans[0].scope_spans[0].spans[0].span_id = bytes(8)
    with grpc_in_thread(Ingest(wal)) as endpoint, grpc.insecure_channel(endpoint.target) as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert response.partial_success.rejected_spans == 1
    assert "span_id" in response.partial_success.error_message
    assert len(wal_span_ids(wal)) == 1


def test_grpc_backpressure_is_unavailable_with_retry_info(tmp_path: Path) -> None:
    full = WriteAheadLog(tmp_path / "full", max_bytes=10)
    request = request_for(llm_spans(2))
    with (
        grpc_in_thread(Ingest(full, retry_after=3)) as endpoint,
        grpc.insecure_channel(endpoint.target) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    full.close()
    error = caught.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds == 3
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_grpc_size_limit_is_resource_exhausted_and_auth_is_checked(wal: WriteAheadLog) -> None:
    ingest = Ingest(wal, bearer_token="tok")
    big = request_for(llm_spans(200))
    small = request_for(llm_spans(1))
    with grpc_in_thread(ingest, max_body_bytes=4096) as endpoint, grpc.insecure_channel(endpoint.target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as too_big:
            stub.Export(big, timeout=10, metadata=(("authorization", "Bearer tok"),))
        with pytest.raises(grpc.RpcError) as unauthenticated:
            stub.Export(small, timeout=10)
        stub.Export(small, timeout=10, metadata=(("authorization", "Bearer tok"),))
    assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert unauthenticated.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert len(wal_span_ids(wal)) == 1


def test_grpc_undecodable_request_is_invalid_argument(wal: WriteAheadLog) -> None:
    with grpc_in_thread(Ingest(wal)) as endpoint, grpc.insecure_channel(endpoint.target) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            export(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        valid = request_for(llm_spans(3))
        reply = ExportTraceServiceResponse.FromString(export(valid.SerializeToString(), timeout=10))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert not reply.HasField("partial_success")
    assert len(wal_span_ids(wal)) == 3


def test_bodies_in_flight_over_the_budget_get_503_with_retry_after(tmp_path: Path) -> None:
    # Each request is under max_body_bytes; many at once must not grow memory without bound.
    wal = WriteAheadLog(tmp_path / "wal")
    limit = 750_000
    app = create_receiver_app(ingest=Ingest(wal, retry_after=3), max_inflight_bytes=limit)
    first, second = llm_spans(1500), llm_spans(1500)
    slow_body = request_for(first).SerializeToString()
    body = request_for(second).SerializeToString()
    assert len(slow_body) < limit < len(body) + len(slow_body) // 2
    release = threading.Event()
    answers: list[httpx.Response] = []

    def slow_upload() -> Iterator[bytes]:  # chunked, no Content-Length: counted as it arrives
        yield slow_body[: len(slow_body) // 2]
        release.wait(30)
        yield slow_body[len(slow_body) // 2 :]

    with serve_in_thread(app) as url:
        sender = threading.Thread(
            target=lambda: answers.append(httpx.post(f"{url}/v1/traces", content=slow_upload(), headers=PB, timeout=60))
        )
        sender.start()
        try:
            wait_until(lambda: app.state.inflight.used >= len(slow_body) // 2, 30, "the slow body to be held")
            busy = httpx.post(f"{url}/v1/traces", content=body, headers=PB, timeout=30)
        finally:
            release.set()
            sender.join(30)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "3"
        assert "busy" in status_pb2.Status.FromString(busy.content).message
        assert answers[0].status_code == 200
        assert app.state.inflight.used == 0  # every request gave its share back
        assert httpx.post(f"{url}/v1/traces", content=body, headers=PB, timeout=30).status_code == 200
    assert sorted(wal_span_ids(wal)) == sorted(span_ids(first) | span_ids(second))
    wal.close()
