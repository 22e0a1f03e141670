"""``featurecost collector --workers N`` as real processes: a supervisor, N worker processes
sharing the OTLP ports, the chDB-backed ClickHouse HTTP fixture as the server, real OTLP
exporters (HTTP and gRPC) each on its own connection."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.storage.client import Storage
from testsupport.collector import ClickHouseHttp, Sender, llm_spans, span_ids, start_clickhouse_http
from testsupport.harness import Collector, _bin, free_port, start_collector, wait_until

FAST = ["--batch-rows", "400", "--flush-interval", "0.05"]


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseHttp]:
    server = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    yield server
    server.process.stop()


def _collector(tmp_path: Path, clickhouse: ClickHouseHttp, *extra: str) -> Collector:
    collector = start_collector(
        tmp_path / "data", tmp_path / "logs", ["--storage", clickhouse.dsn, "--workers", "2", *FAST, *extra]
    )
    # /readyz answers once worker 0 serves; worker 1 may still be starting
    wait_until(lambda: sorted(_worker_pids(collector)) == [0, 1], 60, "both workers running")
    return collector


def _senders(collector: Collector, spans: Sequence[ReadableSpan], http: int, grpc: int, size: int) -> list[Sender]:
    batches = [list(spans[i : i + size]) for i in range(0, len(spans), size)]
    count = http + grpc
    senders = []
    for n in range(count):
        exporter: SpanExporter
        if n < http:
            exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=5)
        else:
            exporter = GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, timeout=5)
        senders.append(Sender(exporter, batches[n::count]))
    return senders


def _run(senders: list[Sender]) -> list[threading.Thread]:
    threads = [threading.Thread(target=sender.run) for sender in senders]
    for thread in threads:
        thread.start()
    return threads


def _join(senders: list[Sender], threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(120)
    for sender in senders:
        sender.exporter.shutdown()


def _acked_ids(senders: list[Sender]) -> set[tuple[str, str]]:
    return span_ids([span for sender in senders for i in sender.acked for span in sender.batches[i]])


def _worker_pids(collector: Collector) -> dict[int, list[int]]:
    """Every pid each worker ran as, in order, from the supervisor's log."""
    pids: dict[int, list[int]] = {}
    for index, pid in re.findall(r"worker (\d+) running \(pid (\d+)\)", collector.process.log()):
        pids.setdefault(int(index), []).append(int(pid))
    return pids


def _running(pid: int) -> bool:
    """``pid`` runs (an exited process nobody reaped yet is a zombie: not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _final_count(clickhouse: ClickHouseHttp) -> int:
    client = clickhouse.client()
    try:
        return int(client.query("SELECT count() FROM calls FINAL").result_rows[0][0])
    finally:
        client.close()


def _wait_stored(clickhouse: ClickHouseHttp, collector: Collector, expected: set[tuple[str, str]]) -> None:
    def stored() -> bool:
        assert collector.process.alive(), collector.process.log()
        return expected <= set(clickhouse.stored_span_counts())

    wait_until(stored, 120, f"{len(expected)} spans stored")


def _wal_checkpoint(directory: Path) -> str:
    return (directory / "checkpoint").read_text() if (directory / "checkpoint").exists() else "0:0"


def test_two_workers_share_the_ports_and_store_every_span_once(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    spans = llm_spans(6000)
    collector = _collector(tmp_path, clickhouse)
    try:
        # 16 connections: the kernel hashes each to a worker; all 16 on one worker is 2 in 65536
        senders = _senders(collector, spans, http=12, grpc=4, size=50)
        _join(senders, _run(senders))
        assert not [s.failed for s in senders if s.failed]
        _wait_stored(clickhouse, collector, span_ids(spans))
        counts = clickhouse.stored_span_counts()
        assert set(counts) == span_ids(spans)
        assert set(counts.values()) == {1}, "a span was inserted twice"
        wal = tmp_path / "data" / "wal"
        # both workers received and stored a share, each through its own WAL
        assert _wal_checkpoint(wal) != "0:0"
        assert _wal_checkpoint(wal / "worker-1") != "0:0"
        assert (wal / "identity").read_text() != (wal / "worker-1" / "identity").read_text()
        # the API (worker 0) reads the shared storage; another worker's inserts show within a second
        wait_until(lambda: collector.status()["stored_calls"] == len(spans), 10, "status counts every stored call")
    finally:
        assert collector.process.stop() == 0, collector.process.log()


def test_kill_9_of_a_worker_mid_load_restarts_it_and_loses_nothing_acknowledged(
    tmp_path: Path, clickhouse: ClickHouseHttp
) -> None:
    spans = llm_spans(8000)
    collector = _collector(tmp_path, clickhouse)
    try:
        victim = _worker_pids(collector)[1][0]
        senders = _senders(collector, spans, http=8, grpc=0, size=50)
        threads = _run(senders)
        wait_until(lambda: sum(len(s.acked) for s in senders) >= 30, 60, "ingest")
        subprocess.run(["kill", "-9", str(victim)], check=True)
        assert any(thread.is_alive() for thread in threads), "the kill must land mid-load"
        wait_until(lambda: len(_worker_pids(collector).get(1, [])) == 2, 60, "worker 1 restarted")
        _join(senders, threads)
        assert f"worker 1 (pid {victim}) exited with code -9; restarting it" in collector.process.log()
        acked = _acked_ids(senders)
        # what was not acknowledged the SDK sends again, as its retry would
        retry = [span for s in senders for i in s.failed for span in s.batches[i]]
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        for start in range(0, len(retry), 100):
            assert exporter.export(retry[start : start + 100]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        _wait_stored(clickhouse, collector, span_ids(spans))
        counts = clickhouse.stored_span_counts()
        assert acked <= set(counts), "an acknowledged span was lost"
        assert set(counts) == span_ids(spans)
        # A request the killed worker had written to its WAL but not yet answered is re-sent
        # (by the exporter's retry, to whichever worker) and also replayed from that WAL: the
        # raw table may hold it twice, `calls FINAL` (what reports read) once (docs/deploy.md).
        assert _final_count(clickhouse) == len(spans)
    finally:
        assert collector.process.stop() == 0, collector.process.log()


def test_sigterm_drains_every_worker(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    spans = llm_spans(3000)
    # batches wait up to 30 s for more: only the drain stores them before the exit
    collector = _collector(tmp_path, clickhouse, "--batch-rows", "100000", "--flush-interval", "30")
    senders = _senders(collector, spans, http=12, grpc=0, size=50)
    _join(senders, _run(senders))
    assert not [s.failed for s in senders if s.failed]
    pids = _worker_pids(collector)
    assert collector.process.stop(timeout=90) == 0, collector.process.log()
    for index in (0, 1):
        assert f"worker-{index} featurecost.collector.server: collector stopped" in collector.process.log()
    assert pids == _worker_pids(collector), "no worker was restarted"
    counts = clickhouse.stored_span_counts()
    assert set(counts) == span_ids(spans)
    assert set(counts.values()) == {1}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        _bin("featurecost"), "collector",
        "--data-dir", str(tmp_path / "data"),
        "--otlp-http-port", str(free_port()),
        "--otlp-grpc-port", str(free_port()),
        "--api-port", str(free_port()),
        *args,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_two_workers_on_embedded_chdb_store_every_span_once_through_worker_0(tmp_path: Path) -> None:
    spans = llm_spans(4000)
    collector = start_collector(tmp_path / "data", tmp_path / "logs", ["--workers", "2", *FAST])
    try:
        wait_until(lambda: sorted(_worker_pids(collector)) == [0, 1], 60, "both workers running")
        found = re.search(r"the other workers store through it \(127\.0\.0\.1:(\d+)\)", collector.process.log())
        assert found, collector.process.log()
        engine = f"http://127.0.0.1:{found.group(1)}"
        # the engine's port answers only this run's workers (a secret made per run)
        for auth in (None, ("featurecost", "guess")):
            refused = httpx.post(engine, content=b"SELECT count() FROM calls", auth=auth, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["X-ClickHouse-Exception-Code"] == "516"
        senders = _senders(collector, spans, http=12, grpc=4, size=50)
        _join(senders, _run(senders))
        assert not [s.failed for s in senders if s.failed]
        wait_until(lambda: collector.status()["stored_calls"] == len(spans), 120, "every span stored")
        wal = tmp_path / "data" / "wal"
        # worker 1 received a share and stored it through worker 0's engine
        assert _wal_checkpoint(wal / "worker-1") != "0:0"
        assert _wal_checkpoint(wal) != "0:0"
    finally:
        assert collector.process.stop() == 0, collector.process.log()
    log = collector.process.log()
    # the other worker drained (through worker 0's engine) before worker 0 stopped
    assert log.index("worker-1 featurecost.collector.server: collector stopped") < log.index(
        "worker-0 featurecost.collector.server: collector stopped"
    )
    counts = _embedded_rows(tmp_path / "data")
    assert set(counts) == span_ids(spans)
    assert set(counts.values()) == {1}, "a span was inserted twice"


def _embedded_rows(data_dir: Path) -> dict[tuple[str, str], int]:
    """Raw rows per span identity in a stopped collector's embedded chDB, and ``calls FINAL``'s."""
    storage = Storage(f"chdb://{data_dir / 'clickhouse'}")
    try:
        rows = storage.query_text("SELECT trace_id, span_id, count() AS n FROM calls GROUP BY trace_id, span_id")
    finally:
        storage.close()
    return {(r["trace_id"], r["span_id"]): int(r["n"]) for r in rows}


def test_kill_9_of_the_engine_owning_worker_0_mid_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    spans = llm_spans(6000)
    collector = start_collector(tmp_path / "data", tmp_path / "logs", ["--workers", "2", *FAST])
    try:
        wait_until(lambda: sorted(_worker_pids(collector)) == [0, 1], 60, "both workers running")
        victim = _worker_pids(collector)[0][0]
        senders = _senders(collector, spans, http=8, grpc=0, size=50)
        threads = _run(senders)
        # worker 1 stores through worker 0's engine: kill the owner while both are busy
        wait_until(lambda: sum(len(s.acked) for s in senders) >= 30, 60, "ingest")
        subprocess.run(["kill", "-9", str(victim)], check=True)
        assert any(thread.is_alive() for thread in threads), "the kill must land mid-load"
        wait_until(lambda: len(_worker_pids(collector).get(0, [])) == 2, 60, "worker 0 restarted")
        _join(senders, threads)
        acked = _acked_ids(senders)
        retry = [span for s in senders for i in s.failed for span in s.batches[i]]
        exporter = HttpExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces", timeout=10)
        for start in range(0, len(retry), 100):
            assert exporter.export(retry[start : start + 100]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        wait_until(lambda: collector.status()["stored_calls"] == len(spans), 120, "every span stored")
    finally:
        assert collector.process.stop() == 0, collector.process.log()
    counts = _embedded_rows(tmp_path / "data")
    assert acked <= set(counts), "an acknowledged span was lost"
    assert set(counts) == span_ids(spans)


def test_a_worker_that_cannot_start_stops_the_collector_with_the_reason(
    tmp_path: Path, clickhouse: ClickHouseHttp
) -> None:
    (tmp_path / "data" / "wal").mkdir(parents=True)
    (tmp_path / "data" / "wal" / "worker-1").write_text("a file where worker 1's WAL directory goes")
    result = _cli(tmp_path, "--storage", clickhouse.dsn, "--workers", "2")
    assert result.returncode == 1, result.stderr
    assert "worker 1: cannot use the write-ahead log directory" in result.stderr
    assert "worker 1 could not start (exit code 1)" in " ".join(result.stderr.split())
    # worker 0 (the API, /readyz) starts only once the others listen: the collector never looked ready
    assert "worker 0 running" not in result.stderr
    assert "worker-0" not in result.stderr


def test_a_wal_left_by_more_workers_with_unstored_data_refuses_fewer(tmp_path: Path) -> None:
    left = WriteAheadLog(tmp_path / "data" / "wal" / "worker-2")
    left.append(b"acknowledged, not stored").result(10)
    left.close()
    result = _cli(tmp_path, "--storage", "http://127.0.0.1:1", "--workers", "2")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "worker-2 holds data a run with more workers acknowledged" in message
    assert "start with --workers 3" in message
    # one worker (the default) strands it just the same
    assert "start with --workers 3" in " ".join(_cli(tmp_path, "--storage", "http://127.0.0.1:1").stderr.split())


def test_workers_drain_and_exit_when_the_supervisor_is_killed(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    # orphans would keep the ports and their WALs; the next start's workers would join them
    collector = _collector(tmp_path, clickhouse)
    pids = [found[0] for found in _worker_pids(collector).values()]
    collector.process.kill()  # SIGKILL: no forwarding
    wait_until(lambda: not any(_running(pid) for pid in pids), 60, "the workers to exit")
    # they drained (SIGTERM from the kernel), and the next start gets the ports and WALs
    assert collector.process.log().count("featurecost.collector.server: collector stopped") == 2
    again = start_collector(
        tmp_path / "data",
        tmp_path / "logs",
        ["--storage", clickhouse.dsn, "--workers", "2", "--otlp-http-port", str(collector.otlp_port)],
    )
    assert again.process.stop() == 0, again.process.log()


def _contract(input_mtok: str, output_mtok: str) -> str:
    return f"""
prices:
  - model: gpt-4o-mini
    provider: openai
    input_mtok: "{input_mtok}"
    output_mtok: "{output_mtok}"
"""


def test_a_reprice_through_worker_0_reaches_every_worker(tmp_path: Path, clickhouse: ClickHouseHttp) -> None:
    # only worker 0 serves the API; calls arriving after the reprice must be priced with the
    # new contract whichever worker their connection lands on
    prices = tmp_path / "prices.yaml"
    prices.write_text(_contract("0.10", "0.40"))
    collector = _collector(tmp_path, clickhouse, "--prices-file", str(prices))
    try:
        # the stored-call routes answer 503 until worker 0 finds the migrations applied
        wait_until(lambda: collector.status()["pipeline"]["storage_ready"], 60, "storage ready")
        prices.write_text(_contract("0.20", "0.80"))
        answer = httpx.post(f"{collector.api_url}/api/v1/prices/reprice", params={"since": "2026-01-01"}, timeout=60)
        assert answer.status_code == 200, answer.text
        spans = llm_spans(800)
        senders = _senders(collector, spans, http=16, grpc=0, size=25)
        _join(senders, _run(senders))
        assert not [s.failed for s in senders if s.failed]
        _wait_stored(clickhouse, collector, span_ids(spans))
        wal = tmp_path / "data" / "wal"
        assert _wal_checkpoint(wal / "worker-1") != "0:0", "worker 1 stored a share"
        client = clickhouse.client()
        try:
            rows = client.query("SELECT input_tokens, output_tokens, cost_usd FROM calls FINAL").result_rows
        finally:
            client.close()
        assert len(rows) == len(spans)
        m = Decimal(1_000_000)
        wrong = [r for r in rows if Decimal(r[2]) != r[0] * Decimal("0.20") / m + r[1] * Decimal("0.80") / m]
        assert not wrong, f"{len(wrong)} calls priced with the old contract"
    finally:
        assert collector.process.stop() == 0, collector.process.log()
