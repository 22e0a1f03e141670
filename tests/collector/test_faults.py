"""Fault tests with real processes: the collector (``featurecost collector``), the real
OTLP exporters, and a ClickHouse HTTP endpoint (chDB behind the ClickHouse HTTP
interface, its own process) that the test can stop, restart — or the collector can
be SIGKILLed under. Stored rows are read straight from that endpoint *without*
FINAL, so a span inserted twice would show up (as it would in every rollup)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from featurecost.collector.ingest.admission import Ingest
from featurecost.collector.ingest.http_receiver import create_receiver_app
from featurecost.collector.ingest.wal import WriteAheadLog
from testsupport.collector import ClickHouseHttp, Sender, llm_spans, span_ids, start_clickhouse_http
from testsupport.harness import Collector, free_port, start_collector, wait_until
from testsupport.servers import serve_in_thread

pytestmark = pytest.mark.slow

FAST = ["--batch-rows", "400", "--flush-interval", "0.05"]


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseHttp]:
    server = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    yield server
    server.process.stop()


def _collector(tmp_path: Path, clickhouse: ClickHouseHttp, *extra: str) -> Collector:
    return start_collector(tmp_path / "data", tmp_path / "logs", ["--storage", clickhouse.dsn, *FAST, *extra])


def _batches(spans: Sequence[ReadableSpan], size: int) -> list[list[ReadableSpan]]:
    return [list(spans[i : i + size]) for i in range(0, len(spans), size)]


def test_kill_9_mid_ingest_then_restart_stores_every_acked_span_once(
    tmp_path: Path, clickhouse: ClickHouseHttp
) -> None:
    spans = llm_spans(8000)
    batches = _batches(spans, 100)
    collector = _collector(tmp_path, clickhouse)
    exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=2)
    sender = Sender(exporter, batches, stop_on_failure=True)
    thread = threading.Thread(target=sender.run)
    thread.start()
    try:
        # mid-stream: acked batches are being inserted (--flush-interval 0.05) while more arrive
        wait_until(lambda: len(sender.acked) >= 30, 60, "ingest")
        collector.process.kill()  # SIGKILL: no drain, no clean close
    finally:
        thread.join(30)
    sender.exporter.shutdown()
    acked = {i for i in sender.acked}
    assert len(acked) < len(batches), "the kill must land mid-stream"
    acked_ids = span_ids([s for i in acked for s in batches[i]])

    collector = _collector(tmp_path, clickhouse)
    try:
        collector.wait_drained()
        counts = clickhouse.stored_span_counts()
        assert acked_ids <= set(counts), "an acknowledged span was lost"
        assert set(counts.values()) == {1}, "a span was inserted twice"

        # The SDK retries what was not acknowledged, and (lost acks) re-sends some that were.
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        resend = [i for i in range(len(batches)) if i not in acked] + sorted(acked)[-5:]
        for index in resend:
            assert exporter.export(batches[index]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        collector.wait_drained()
        counts = clickhouse.stored_span_counts()
        assert set(counts) == span_ids(spans)
        assert set(counts.values()) == {1}
        assert collector.status()["stored_calls"] == len(spans)
    finally:
        assert collector.process.stop() == 0, collector.process.log()


def _chdb_span_counts(data_dir: Path) -> dict[tuple[str, str], int]:
    """Rows per span identity (no FINAL) in the collector's embedded chDB, read by a
    separate process (chDB hosts one data path per process; the collector has stopped)."""
    script = (
        "import json, sys, chdb\n"
        "conn = chdb.connect(sys.argv[1])\n"
        "res = conn.query('SELECT trace_id, span_id, count() FROM calls GROUP BY trace_id, span_id', 'JSONCompact')\n"
        "print(json.dumps(json.loads(res.bytes())['data']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(data_dir / "clickhouse")], capture_output=True, text=True, check=True
    )
    return {(t, s): int(n) for t, s, n in json.loads(out.stdout)}


def test_kill_9_with_embedded_chdb_then_restart_stores_every_span_once(tmp_path: Path) -> None:
    spans = llm_spans(6000)
    batches = _batches(spans, 50)
    collector = start_collector(tmp_path / "data", tmp_path / "logs", FAST)
    exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=2)
    sender = Sender(exporter, batches, stop_on_failure=True)
    thread = threading.Thread(target=sender.run)
    thread.start()
    try:
        wait_until(lambda: len(sender.acked) >= 15, 60, "ingest")
        collector.process.kill()
    finally:
        thread.join(30)
    sender.exporter.shutdown()
    acked = set(sender.acked)
    assert len(acked) < len(batches), "the kill must land mid-stream"

    collector = start_collector(tmp_path / "data", tmp_path / "logs", FAST)
    try:
        collector.wait_drained()
        assert collector.status()["stored_calls"] >= 50 * len(acked)
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        for index in [i for i in range(len(batches)) if i not in acked] + sorted(acked)[-3:]:
            assert exporter.export(batches[index]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        collector.wait_drained()
    finally:
        assert collector.process.stop() == 0, collector.process.log()
    counts = _chdb_span_counts(tmp_path / "data")
    assert set(counts) == span_ids(spans)
    assert set(counts.values()) == {1}


def test_storage_outage_spools_in_the_wal_and_delivers_later(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    collector = _collector(tmp_path, clickhouse)
    first, second = llm_spans(200), llm_spans(300)
    exporter = GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, timeout=10)
    try:
        assert exporter.export(first) is SpanExportResult.SUCCESS
        collector.wait_drained()
        clickhouse.process.stop()

        assert exporter.export(second) is SpanExportResult.SUCCESS  # acknowledged: it is in the WAL

        def insert_failed() -> bool:
            response = httpx.get(f"{collector.api_url}/api/v1/status", timeout=5)
            status = response.json()
            return response.status_code == 503 and status["pipeline"]["insert_failures"] > 0

        wait_until(insert_failed, 30, "the pipeline to notice the outage")
        restarted = start_clickhouse_http(clickhouse.path, clickhouse.log_dir, clickhouse.port)
        collector.wait_drained(timeout=90)
        counts = restarted.stored_span_counts()
        assert set(counts) == span_ids(first) | span_ids(second)
        assert set(counts.values()) == {1}
        clickhouse.process = restarted.process
    finally:
        exporter.shutdown()
        assert collector.process.stop() == 0, collector.process.log()


def test_collector_starts_and_spools_while_the_storage_server_is_still_down(tmp_path: Path) -> None:
    port = free_port()
    down = f"http://127.0.0.1:{port}"
    collector = start_collector(tmp_path / "data", tmp_path / "logs", ["--storage", down, *FAST])
    spans = llm_spans(300)
    clickhouse = None
    try:
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        status = httpx.get(f"{collector.api_url}/api/v1/status", timeout=5)
        assert status.status_code == 503
        assert status.json()["pipeline"]["storage_ready"] is False
        clickhouse = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs", port)
        collector.wait_drained(timeout=90)
        counts = clickhouse.stored_span_counts()
        assert set(counts) == span_ids(spans)
        assert set(counts.values()) == {1}
    finally:
        assert collector.process.stop() == 0, collector.process.log()
        if clickhouse is not None:
            clickhouse.process.stop()


def test_sigterm_drains_clips_old_spans_forwards_and_exports_metrics(
    tmp_path: Path, clickhouse: ClickHouseHttp
) -> None:
    downstream_wal = WriteAheadLog(tmp_path / "downstream")
    config = tmp_path / "collector.toml"
    config.write_text("[collector]\nretention-days = 30\nauth-token = 'tok'\n")
    old_start = time.time_ns() - 90 * 86400 * 10**9
    fresh, old = llm_spans(250), llm_spans(50, start_ns=old_start)
    with serve_in_thread(create_receiver_app(ingest=Ingest(downstream_wal))) as downstream:
        collector = _collector(tmp_path, clickhouse, "--config", str(config), "--forward-endpoint", downstream)
        exporter = HttpExporter(
            endpoint=f"{collector.otlp_endpoint}/v1/traces", headers={"authorization": "Bearer tok"}, timeout=10
        )
        unauthorized = httpx.post(
            f"{collector.otlp_endpoint}/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"}
        )
        assert unauthorized.status_code == 401
        assert exporter.export(fresh + old) is SpanExportResult.SUCCESS
        exporter.shutdown()
        collector.wait_drained()
        metrics = httpx.get(f"{collector.api_url}/metrics", timeout=5).text
        assert collector.process.stop() == 0, collector.process.log()  # SIGTERM: drains, exits 0

        def forwarded() -> list[dict[str, str]]:
            out = []
            for record in downstream_wal.iter_from(downstream_wal.checkpoint):
                request = ExportTraceServiceRequest.FromString(record.payload)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        out.extend({kv.key: kv.value.string_value for kv in s.attributes} for s in ss.spans)
            return out

    counts = clickhouse.stored_span_counts()
    assert set(counts) == span_ids(fresh)  # the 90-day-old spans are clipped at ingest
    assert _metric(metrics, "featurecost_received_spans_total") == 300
    assert _metric(metrics, "featurecost_expired_calls_total") == 50
    assert _metric(metrics, "featurecost_stored_calls_total") == 250
    assert _metric(metrics, "featurecost_priced_calls_total") == 250
    assert _metric(metrics, "featurecost_insert_latency_seconds_count") >= 1
    spans_forwarded = forwarded()
    assert len(spans_forwarded) == 250
    assert all(s["featurecost.cost_usd"] and s["featurecost.price.entry"] for s in spans_forwarded)
    downstream_wal.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_two_collectors_sharing_one_clickhouse_both_store_everything(
    tmp_path: Path, clickhouse: ClickHouseHttp
) -> None:
    # The documented k8s setup: each collector has its own WAL, both insert into one
    # ClickHouse. WAL positions restart at 1:0 in every WAL directory, so equal-sized
    # requests give both the same ranges: only the WAL identity in the insert
    # deduplication token keeps ClickHouse from dropping one collector's batch.
    first = _collector(tmp_path / "a", clickhouse)
    second = _collector(tmp_path / "b", clickhouse)
    sent: set[tuple[str, str]] = set()
    try:
        for collector in (first, second, first, second):
            spans = llm_spans(50)
            exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            exporter.shutdown()
            collector.wait_drained()
            sent |= span_ids(spans)
        counts = clickhouse.stored_span_counts()
        assert set(counts) == sent
        assert set(counts.values()) == {1}
        assert first.status()["pipeline"]["calls_stored"] == second.status()["pipeline"]["calls_stored"] == 100
    finally:
        for collector in (first, second):
            assert collector.process.stop() == 0, collector.process.log()
