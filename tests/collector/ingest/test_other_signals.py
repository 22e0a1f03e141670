"""OTLP metrics and logs, sent by the real OpenTelemetry exporters over both transports, are
acknowledged (so an app under ``opentelemetry-instrument`` with one OTLP endpoint exports
cleanly) and dropped; a bad body is still refused. The startup log names every address."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource

from testsupport.harness import Collector, running_collector, wait_until


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("signals")
    with running_collector(base / "data", base / "logs") as running:
        yield running


def some_metrics() -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "app"}), metric_readers=[reader])
    provider.get_meter("app").create_counter("http.requests").add(3, {"route": "/"})
    data = reader.get_metrics_data()
    assert data is not None
    return data


def some_logs() -> list[object]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "app"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("tests.other_signals")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.warning("a log line the app sends along with its spans")
    finally:
        logger.removeHandler(handler)
    logs = list(memory.get_finished_logs())
    assert logs
    return logs


def test_metrics_are_acknowledged_over_http_and_grpc(collector: Collector) -> None:
    data = some_metrics()
    http = HttpMetricExporter(endpoint=f"{collector.otlp_endpoint}/v1/metrics")
    grpc = GrpcMetricExporter(endpoint=f"localhost:{collector.grpc_port}", insecure=True)
    assert http.export(data) is MetricExportResult.SUCCESS
    assert grpc.export(data) is MetricExportResult.SUCCESS


def test_logs_are_acknowledged_over_http_and_grpc(collector: Collector) -> None:
    logs = some_logs()
    http = HttpLogExporter(endpoint=f"{collector.otlp_endpoint}/v1/logs")
    grpc = GrpcLogExporter(endpoint=f"localhost:{collector.grpc_port}", insecure=True)
    assert http.export(logs) is LogRecordExportResult.SUCCESS  # type: ignore[arg-type]
    assert grpc.export(logs) is LogRecordExportResult.SUCCESS  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/logs"])
def test_a_bad_body_is_refused(collector: Collector, path: str) -> None:
    response = httpx.post(
        f"{collector.otlp_endpoint}{path}",
        content=b"\xff\xff\xff garbage",
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    response = httpx.post(f"{collector.otlp_endpoint}{path}", content=b"{}", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    ok = httpx.post(f"{collector.otlp_endpoint}{path}", content=b"{}", headers={"content-type": "application/json"})
    assert ok.status_code == 200
    assert ok.json() == {}


def test_startup_log_names_every_address(collector: Collector) -> None:
    # logged once every server is listening, which can be just after /readyz first answers
    wait_until(lambda: "web page:" in collector.process.log(), 30, "the startup log")
    log = collector.process.log()
    assert f"OTLP/HTTP on http://127.0.0.1:{collector.otlp_port}" in log
    assert f"OTLP/gRPC on 127.0.0.1:{collector.grpc_port}" in log
    assert f"report API on http://127.0.0.1:{collector.api_port}/api/v1" in log
    assert f"web page: http://127.0.0.1:{collector.api_port}/" in log
