"""Collector scaling with ``--workers``: stored LLM spans per second with 1 worker and with N, in one run.

Each contender is ``featurecost collector --workers N`` inserting into a ClickHouse HTTP
endpoint: by default the chDB-backed fixture (testsupport/clickhouse_http.py, a fresh data
directory per contender), or ``--clickhouse URL`` for a real server (a fresh database per
contender is created there), or with ``--embedded`` into the collector's own chDB (worker 0
owns the engine; the other workers store through it). Senders are processes running the real OTLP/HTTP exporter; each
round-robins its batches over ``--connections`` exporters (connections), because the kernel
spreads *connections* over the workers (SO_REUSEPORT), not requests.

The clock runs from releasing the senders until every span is a row in ``calls``. Printed per
contender: stored spans/s, CPU seconds of the collector's processes (supervisor + workers) and
of the fixture, and the ratio of N workers to 1 — the figure issue #15 asks to be ≥ 0.8 x N
on a machine with a core per worker (plus cores for the senders and ClickHouse). On a machine
with fewer cores than workers + senders + storage the ratio says how much the cores allow,
not how the collector scales: the core count is printed next to it.

    .venv/bin/python -m bench.collector_workers --workers 2 --spans 40000 --senders 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect

from bench.collector_throughput import BATCH, _send
from testsupport.collector import start_clickhouse_http
from testsupport.harness import ManagedProcess, start_collector, wait_until


def _drained(data_dir: Path) -> bool:
    """Every worker's WAL is checkpointed to its end: all it acknowledged is stored (or was
    recognised as already stored). Row counts cannot tell: the reconciler keeps one row for a
    provider call two instrumentations both reported, and the corpus has such twins."""
    root = data_dir / "wal"
    for wal in [root, *sorted(root.glob("worker-*"))]:
        text = (wal / "checkpoint").read_text() if (wal / "checkpoint").exists() else "0:0"
        segment, offset = (int(part) for part in text.split(":"))
        for path in wal.glob("*.wal"):
            size = path.stat().st_size
            if (int(path.stem) > segment and size) or (int(path.stem) == segment and size > offset):
                return False
    return True


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return out
    for child in children:
        out += _tree(int(child))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Run:
    workers: int
    spans: int  # LLM calls acknowledged
    rows: int  # rows they became (twins of one provider call are one row)
    seconds: float
    collector_cpu: float
    storage_cpu: float | None

    @property
    def per_second(self) -> float:
        return self.spans / self.seconds


@dataclass(frozen=True)
class Load:
    spans: int
    senders: int
    connections: int  # per sender


def run(workers: int, load: Load, dsn: str | None, work: Path, storage: ManagedProcess | None) -> Run:
    """``dsn`` None: the collector's embedded chDB, counted through its API."""
    client = clickhouse_connect.get_client(dsn=dsn) if dsn is not None else None

    def stored() -> int:
        try:
            if client is None:
                return int(collector.status()["stored_calls"] or 0)
            return int(client.query("SELECT count() FROM calls").result_rows[0][0])
        except Exception:  # the workers have not created the table yet
            return 0

    storage_args = ["--storage", dsn] if dsn is not None else []
    collector = start_collector(
        work / f"data-{workers}",
        work / f"logs-{workers}",
        [*storage_args, "--workers", str(workers), "--batch-rows", "50000", "--log-level", "WARNING"],
    )
    try:
        endpoint = f"{collector.otlp_endpoint}/v1/traces"
        # warm up every worker (first insert, lazy imports): steady state is timed
        _send(endpoint, BATCH * 4 * workers, 1, connections=4 * workers)
        wait_until(lambda: stored() > 0 and _drained(collector.data_dir), 600, "warm-up stored", interval=0.05)
        rows_before = stored()
        pids = _tree(collector.process.popen.pid)
        cpu_before = _cpu_seconds(pids)
        storage_before = _cpu_seconds([storage.popen.pid]) if storage else 0.0
        start, _, acked, _ = _send(endpoint, load.spans, load.senders, connections=load.connections)
        wait_until(lambda: _drained(collector.data_dir), 3600, "every span stored", interval=0.05)
        seconds = time.perf_counter() - start
        rows = stored() - rows_before
        collector_cpu = _cpu_seconds(pids) - cpu_before
        storage_cpu = _cpu_seconds([storage.popen.pid]) - storage_before if storage else None
    finally:
        collector.process.stop()
        if client is not None:
            client.close()
    return Run(workers, acked, rows, seconds, collector_cpu, storage_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description="featurecost collector: --workers N vs 1, stored spans per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spans", type=int, default=40_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8, help="exporters (connections) per sender")
    parser.add_argument("--workdir", type=Path, help="keep data and logs here (default: a temporary directory)")
    parser.add_argument("--clickhouse", help="a real ClickHouse server's http(s) URL instead of the chDB fixture")
    parser.add_argument("--embedded", action="store_true", help="the collector's own chDB instead of the fixture")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="featurecost-workers-bench-") as tmp:
        work = args.workdir or Path(tmp)
        for workers in (1, args.workers):
            fixture = None
            dsn: str | None = None
            if args.embedded:
                pass
            elif args.clickhouse:
                database = f"featurecost_bench_{uuid.uuid4().hex[:8]}"
                admin = clickhouse_connect.get_client(dsn=args.clickhouse)
                admin.command(f"CREATE DATABASE {database}")
                admin.close()
                dsn = f"{args.clickhouse.rstrip('/')}/{database}"
            else:
                fixture = start_clickhouse_http(work / f"ch-{workers}", work / "logs")
                dsn = fixture.dsn
            try:
                load = Load(args.spans, args.senders, args.connections)
                runs.append(run(workers, load, dsn, work, fixture.process if fixture else None))
            finally:
                if fixture is not None:
                    fixture.process.stop()
    one = runs[0]
    print(f"cores: {os.cpu_count()}; senders: {args.senders} x {args.connections} connections; LLM spans: {args.spans}")
    if args.embedded:
        where = "the collector's embedded chDB (worker 0 owns it)"
    else:
        where = f"ClickHouse {args.clickhouse}" if args.clickhouse else "chDB ClickHouse-HTTP fixture"
    print(f"storage: {where}")
    for r in runs:
        storage = f", storage CPU {r.storage_cpu:.1f}s" if r.storage_cpu is not None else ""
        print(
            f"--workers {r.workers}: {r.per_second:,.0f} calls/s acked+stored "
            f"({r.seconds:.1f}s, {r.rows} rows), "
            f"collector CPU {r.collector_cpu:.1f}s = {r.spans / r.collector_cpu:,.0f} calls per collector CPU-s"
            f"{storage}"
        )
    last = runs[-1]
    ratio = last.per_second / one.per_second
    print(
        f"ratio --workers {last.workers} / --workers 1: {ratio:.2f} "
        f"(target ≥ {0.8 * last.workers:.1f} with a free core per worker; this machine has {os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
