"""Helpers for the collector tests: real LLM spans from the OpenTelemetry SDK, and the
collector's receivers served over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.ingest.admission import Ingest
from featurecost.collector.ingest.grpc_receiver import create_grpc_server
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.normalize import (
    ResourceFacts,
    attribute_map,
    is_llm_span,
    normalize_span,
    read_attributes,
)
from featurecost.collector.pipeline.records import CallRecord
from testsupport.harness import ManagedProcess, free_port, spawn_ready

_counter = itertools.count()


@dataclass
class Sender:
    """Exports its batches one after another on its own exporter (its own connection), from a
    thread, like an SDK's batch processor; ``stop_on_failure``: stop at the first refused batch
    (a collector being killed) instead of going on (a load test counting failures)."""

    exporter: SpanExporter
    batches: list[list[ReadableSpan]]
    stop_on_failure: bool = False
    acked: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def run(self) -> None:
        for index, batch in enumerate(self.batches):
            if self.exporter.export(batch) is SpanExportResult.SUCCESS:
                self.acked.append(index)
                continue
            self.failed.append(index)
            if self.stop_on_failure:
                return


def llm_spans(
    count: int, *, environment: str = "test", feature: str = "bench", start_ns: int | None = None
) -> list[ReadableSpan]:
    """``count`` finished GenAI chat spans made by the real SDK (unique ids)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "svc", "deployment.environment.name": environment})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("featurecost.tests")
    for _ in range(count):
        n = next(_counter)
        span = tracer.start_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 100 + n % 50,
                "gen_ai.usage.output_tokens": 20 + n % 7,
                "featurecost.feature": feature,
                "featurecost.tenant": f"t{n % 5}",
            },
            start_time=start_ns,
        )
        span.end(end_time=None if start_ns is None else start_ns + 1_000_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def span_ids(spans: Sequence[ReadableSpan]) -> set[tuple[str, str]]:
    ids = set()
    for span in spans:
        context = span.get_span_context()
        assert context is not None
        ids.add((f"{context.trace_id:032x}", f"{context.span_id:016x}"))
    return ids


def request_for(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return encode_spans(spans)


def wal_span_ids(wal: WriteAheadLog) -> list[tuple[str, str]]:
    ids: list[tuple[str, str]] = []
    for record in wal.iter_from(wal.checkpoint):
        request = ExportTraceServiceRequest.FromString(record.payload)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                ids.extend((s.trace_id.hex(), s.span_id.hex()) for s in ss.spans)
    return ids


@dataclass
class GrpcEndpoint:
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def grpc_in_thread(ingest: Ingest, max_body_bytes: int = 16 * 1024 * 1024) -> Iterator[GrpcEndpoint]:
    """Serve the collector's OTLP/gRPC service on a loopback port in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    port_box: list[int] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server, port = create_grpc_server(ingest, "127.0.0.1:0", max_body_bytes=max_body_bytes)
        await server.start()
        port_box.append(port)
        ready.set()
        await stop.wait()
        await server.stop(grace=1)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield GrpcEndpoint(port_box[0])
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@dataclass
class ClickHouseHttp:
    """The chDB-backed ClickHouse HTTP endpoint (testsupport/clickhouse_http.py) as a process."""

    process: ManagedProcess
    port: int
    path: Path
    log_dir: Path

    @property
    def dsn(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Client:
        return clickhouse_connect.get_client(dsn=self.dsn)

    def stored_span_counts(self) -> dict[tuple[str, str], int]:
        """Rows per span identity in the raw table, *without* FINAL: what every
        insert (and so every rollup materialized view) saw."""
        client = self.client()
        try:
            rows = client.query("SELECT trace_id, span_id, count() FROM calls GROUP BY trace_id, span_id").result_rows
        finally:
            client.close()
        return {(t, s): int(n) for t, s, n in rows}

    def restart(self) -> ClickHouseHttp:
        self.process.stop()
        return start_clickhouse_http(self.path, self.log_dir, self.port)


def start_clickhouse_http(path: Path, log_dir: Path, port: int | None = None) -> ClickHouseHttp:
    port = port or free_port()
    argv = [sys.executable, "-m", "testsupport.clickhouse_http", "--port", str(port), "--path", str(path)]
    process = spawn_ready("clickhouse-http", argv, log_dir, f"http://127.0.0.1:{port}/ping", 30)
    return ClickHouseHttp(process, port, path, log_dir)


def normalize_general(request: ExportTraceServiceRequest) -> list[CallRecord]:
    """The normalizer's general path: every read attribute decoded, every alias walked
    (``FULL_LOOKUPS``) — the reference ``normalize_request``'s per-layout fast path must match."""
    out = []
    for resource_spans in request.resource_spans:
        facts = ResourceFacts.of(attribute_map(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                a = read_attributes(span.attributes)
                if is_llm_span(a):
                    out.append(normalize_span(span, facts, a))
    return out
