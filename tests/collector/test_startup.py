"""Starting the collector fails fast and says why in one line: a mistyped storage DSN,
a port in use, a gRPC port another collector holds, an unusable data directory. Ports
are claimed before storage is loaded, so none of these ever touches storage."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from testsupport.harness import free_port, start_collector

FEATURECOST = str(Path(sys.executable).parent / "featurecost")


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ports = ["--otlp-http-port", str(free_port()), "--otlp-grpc-port", str(free_port()), "--api-port", str(free_port())]
    argv = [FEATURECOST, "collector", "--data-dir", str(data_dir), *ports, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


def _one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert expected in output


@pytest.mark.parametrize("dsn", ["foo://bar", "not a dsn", "http://", "chdb://", "http://host:notaport/db"])
def test_a_mistyped_storage_dsn_stops_the_start(tmp_path: Path, dsn: str) -> None:
    result = CliRunner().invoke(app, ["collector", "--data-dir", str(tmp_path), "--storage", dsn])
    assert result.exit_code == 2
    assert "storage DSN" in result.output
    assert not (tmp_path / "wal").exists()


def test_a_port_in_use_is_one_line_and_storage_is_never_started(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(tmp_path / "data", "--api-port", str(port))
    _one_line_error(done, f"cannot listen for the API on 127.0.0.1:{port}")
    assert not (tmp_path / "data" / "clickhouse").exists()  # chDB never loaded
    assert not (tmp_path / "data" / "wal").exists()


def test_an_unusable_data_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = _run(blocker / "data")
    _one_line_error(done, "cannot use the data directory")


def test_a_second_collector_cannot_share_the_grpc_port(tmp_path: Path) -> None:
    first = start_collector(tmp_path / "first", tmp_path / "logs")
    try:
        done = _run(tmp_path / "second", "--otlp-grpc-port", str(first.grpc_port))
        _one_line_error(done, f"cannot listen for OTLP/gRPC on 127.0.0.1:{first.grpc_port}")
        assert not (tmp_path / "second" / "clickhouse").exists()
    finally:
        assert first.process.stop() == 0, first.process.log()


def test_storage_routes_answer_503_until_storage_is_ready(tmp_path: Path) -> None:
    # storage unreachable: OTLP is accepted into the WAL, the stored-call routes say why they wait
    collector = start_collector(tmp_path / "data", tmp_path / "logs", ["--storage", f"http://127.0.0.1:{free_port()}"])
    try:
        with collector.api() as client:
            for method, path in (
                ("GET", "/api/v1/reports/weekly"),
                ("GET", "/api/v1/catalog"),
                ("GET", "/api/v1/prices/unpriced"),
                ("POST", "/api/v1/prices/reprice?since=2026-01-01"),
            ):
                answer = client.request(method, path, timeout=10)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"] == "1"
                assert "storage is not ready yet" in answer.json()["error"]
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/status").json()["pipeline"]["storage_ready"] is False
            # the price data version is the pricer's, not storage's: `prices update` reads it at once
            assert client.get("/api/v1/prices/data").json()["data_version"].startswith("genai-prices==")
    finally:
        assert collector.process.stop() == 0, collector.process.log()
