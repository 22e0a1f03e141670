"""Run the collector: storage, write-ahead log, pipeline worker and two HTTP servers
(OTLP ingest, report API) in one process, with a graceful drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from featurecost.collector.alerts import AlertStore
from featurecost.collector.api import create_api_app
from featurecost.collector.budgets.api import budget_routes
from featurecost.collector.budgets.config import BudgetsConfig
from featurecost.collector.budgets.service import build_evaluator
from featurecost.collector.pipeline import Pipeline
from featurecost.collector.pricing import Pricer
from featurecost.collector.receiver import create_receiver_app
from featurecost.collector.storage import Storage
from featurecost.collector.wal import WriteAheadLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    storage_dsn: str
    wal_dir: Path
    host: str = "127.0.0.1"
    otlp_http_port: int = 4318
    api_port: int = 8787
    max_body_bytes: int = 16 * 1024 * 1024
    wal_max_bytes: int = 2 * 1024 * 1024 * 1024
    drain_timeout: float = 30.0
    budgets: BudgetsConfig | None = None
    budget_interval: float = 60.0
    prices_file: Path | None = None


class _Server(uvicorn.Server):
    # The collector owns signal handling: it must stop both servers, then drain the
    # pipeline. uvicorn's own handlers would re-raise the signal after serving and
    # kill the process before the drain.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def default_storage_dsn(data_dir: Path) -> str:
    return f"chdb://{data_dir.resolve() / 'clickhouse'}"


async def serve(config: CollectorConfig) -> None:
    storage = Storage(config.storage_dsn)
    applied = storage.migrate()
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    wal = WriteAheadLog(config.wal_dir, max_bytes=config.wal_max_bytes)
    pipeline = Pipeline(wal, storage, Pricer.from_file(config.prices_file))
    pipeline.start()
    receiver = create_receiver_app(wal, max_body_bytes=config.max_body_bytes)
    ingest = _Server(uvicorn.Config(receiver, host=config.host, port=config.otlp_http_port, log_level="warning"))
    evaluator = build_evaluator(storage, config.budgets, interval=config.budget_interval) if config.budgets else None
    routes = budget_routes(evaluator, AlertStore(storage) if evaluator else None)
    api = create_api_app(
        storage, wal, pipeline, receiver.state.stats, ingest_ready=lambda: ingest.started, extra_routes=routes
    )
    servers = [
        ingest,
        _Server(uvicorn.Config(api, host=config.host, port=config.api_port, log_level="warning")),
    ]
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    if evaluator:
        evaluator.start()
    try:
        results = await asyncio.gather(*(s.serve() for s in servers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        request_stop()
        if evaluator:
            evaluator.stop()
        wal.close()  # nothing new is accepted; what is in the log drains below
        drained = await asyncio.to_thread(pipeline.stop, config.drain_timeout)
        if not drained:
            log.warning("pipeline did not drain in %.0fs; the rest stays in the WAL", config.drain_timeout)
        storage.close()
        log.info("collector stopped (checkpoint %s)", wal.checkpoint)
