"""Operating the collector: TLS + bearer token on both OTLP transports with the real
exporters, and how settings combine (file < environment < flags)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trustme
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.config import ConfigError, build_config
from testsupport.collector import llm_spans
from testsupport.harness import start_collector


def test_tls_and_bearer_token_on_http_and_grpc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these override the exporter's certificate_file; the test's CA must win
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_pem, key_pem, ca_pem = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    args = ["--tls-cert", str(cert_pem), "--tls-key", str(key_pem), "--auth-token", "t0k"]
    collector = start_collector(tmp_path / "data", tmp_path / "logs", args, ca=ca_pem)
    try:
        http_spans, grpc_spans = llm_spans(20), llm_spans(30)
        https = HttpExporter(
            endpoint=f"https://127.0.0.1:{collector.otlp_port}/v1/traces",
            certificate_file=str(ca_pem),
            headers={"authorization": "Bearer t0k"},
            timeout=10,
        )
        assert https.export(http_spans) is SpanExportResult.SUCCESS
        https.shutdown()
        no_token = HttpExporter(
            endpoint=f"https://127.0.0.1:{collector.otlp_port}/v1/traces", certificate_file=str(ca_pem), timeout=5
        )
        assert no_token.export(http_spans) is SpanExportResult.FAILURE
        no_token.shutdown()
        secure = GrpcExporter(
            endpoint=f"127.0.0.1:{collector.grpc_port}",
            credentials=grpc.ssl_channel_credentials(ca_pem.read_bytes()),
            headers={"authorization": "Bearer t0k"},
            timeout=10,
        )
        assert secure.export(grpc_spans) is SpanExportResult.SUCCESS
        secure.shutdown()
        collector.wait_drained()
        assert collector.status()["stored_calls"] == 50
        assert collector.status()["receiver"]["rejected_requests"] == 1
    finally:
        assert collector.process.stop() == 0, collector.process.log()


def test_settings_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text('[collector]\notlp-http-port = 1111\napi_port = 2222\nstorage = "http://ch:8123"\n')
    built = build_config(config, {"api_port": 3333, "otlp_http_port": None})
    assert built.otlp_http_port == 1111  # from the file
    assert built.api_port == 3333  # a flag/env value wins
    assert built.resolved_storage_dsn == "http://ch:8123"
    assert build_config(None, {}).resolved_storage_dsn.startswith("chdb://")
    config.write_text("[collector]\nno_such_option = 1\n")
    with pytest.raises(ConfigError, match="no_such_option"):
        build_config(config, {})
    config.write_text("not = [toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(config, {})


def test_bad_settings_are_a_clear_cli_error(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text("[collector]\nbatch_rows = -5\n")
    result = CliRunner().invoke(app, ["collector", "--config", str(config), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "batch_rows" in result.output
