"""Run the collector: storage, write-ahead log, pipeline worker, OTLP/HTTP and OTLP/gRPC
receivers and the report API in one process, with a graceful drain on SIGTERM/SIGINT:
stop accepting (receivers close, the WAL refuses appends), store what the WAL holds
(up to ``drain_timeout``; the rest waits in the WAL for the next start), then exit.

With ``--workers N`` this runs in each of N processes (collector/workers.py starts them): every
worker has its own WAL and pipeline and listens on the shared OTLP ports with SO_REUSEPORT;
worker 0 also serves the API and evaluates budgets."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from featurecost.collector.api.app import create_api_app
from featurecost.collector.api.budgets import budget_routes
from featurecost.collector.api.prices import prices_routes
from featurecost.collector.api.security import ApiAccess
from featurecost.collector.budgets.alerts import AlertStore
from featurecost.collector.budgets.config import BudgetsConfig
from featurecost.collector.budgets.service import build_evaluator
from featurecost.collector.config import CollectorConfig
from featurecost.collector.ingest.admission import Ingest
from featurecost.collector.ingest.grpc_receiver import create_grpc_server
from featurecost.collector.ingest.http_receiver import create_receiver_app
from featurecost.collector.ingest.listen import StartupError, listen
from featurecost.collector.ingest.other_signals import signal_grpc_handlers, signal_routes
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.metrics import Metrics
from featurecost.collector.pipeline.forward import Forwarder
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.pricing.price_update import saved_price_data
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.pricing.sync import PricesSync
from featurecost.collector.storage.client import Storage
from featurecost.collector.storage.engine_http import EngineServer

log = logging.getLogger(__name__)

__all__ = ["CollectorConfig", "StartupError", "WorkerRole", "default_storage_dsn", "serve"]


@dataclass(frozen=True)
class WorkerRole:
    """This process is worker ``index`` of a ``--workers N`` collector (collector/workers.py).

    The supervisor holds the OTLP ports; the worker listens on them with SO_REUSEPORT (the
    kernel spreads connections over the workers). ``api_socket``: the API's listening socket,
    passed to worker 0 only. ``on_ready`` is called once every server of the worker is up."""

    index: int
    api_socket: socket.socket | None
    on_ready: Callable[[], None]
    migrate_lock: Path  # one worker at a time applies the migrations (the others find them done)
    # embedded chDB with N > 1: worker 0 serves its engine to the others on this loopback socket,
    # to requests presenting the secret (storage/engine_http.py)
    engine_socket: socket.socket | None = None
    engine_secret: str | None = None


class _SerialMigrations(Storage):
    """Storage whose migrations run under a file lock shared by the workers on this machine:
    N workers starting on an empty database must not each create tables and record versions."""

    def __init__(self, dsn: str, lock: Path) -> None:
        super().__init__(dsn, lazy=True)
        self._migrate_lock = lock

    def migrate(self) -> list[str]:
        with self._migrate_lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            return super().migrate()


class _Server(uvicorn.Server):
    # The collector owns signal handling: it must stop every server, then drain the
    # pipeline. uvicorn's own handlers would re-raise the signal after serving and
    # kill the process before the drain.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def tune_gc() -> None:
    """Collect young objects less often, and never rescan what startup loaded.

    The pipeline allocates several tracked objects per call (protobuf wrappers, the record,
    its dicts and lists) and keeps a whole batch (up to ``batch_rows`` calls) alive until it
    is inserted. With CPython's default thresholds a collection runs every 700 allocations
    and the older generations rescan the live batch again and again: a quarter to a third
    of the normalize stage (bench/collector_throughput.py). The collector makes almost no
    reference cycles, so collecting them later costs little memory.
    """
    gc.collect()
    gc.freeze()  # modules, the price data snapshot, config: live for the whole process
    gc.set_threshold(50_000, 20, 100)


def _url_host(host: str) -> str:
    """The host to put in a URL a user can open: a wildcard bind is reachable on loopback."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _redacted(dsn: str) -> str:
    scheme, sep, rest = dsn.partition("://")
    if sep and "@" in rest:
        credentials, _, location = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{location}"
    return dsn


async def _announce(
    config: CollectorConfig,
    servers: Sequence[uvicorn.Server],
    ports: tuple[int, int | None],
    grpc_port: int | None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Log every listening address and the page URL once all servers are up: the first thing
    a new user looks for in the output, and what an operator checks after a config change."""
    while not all(server.started for server in servers):
        if any(server.should_exit for server in servers):
            return
        await asyncio.sleep(0.05)
    host = _url_host(config.host)
    scheme = "https" if config.tls_cert is not None else "http"
    http_port, api_port = ports
    log.info("OTLP/HTTP on %s://%s:%d (/v1/traces; /v1/metrics and /v1/logs acknowledged and dropped)",
             scheme, host, http_port)  # fmt: skip
    if grpc_port is not None:
        log.info("OTLP/gRPC on %s:%d", host, grpc_port)
    if api_port is not None:
        api = f"{scheme}://{host}:{api_port}"  # the API is served with the same TLS settings
        log.info("report API on %s/api/v1, health %s/healthz, Prometheus %s/metrics", api, api, api)
        log.info("web page: %s/", api)
    log.info("storage %s (WAL %s)", _redacted(config.resolved_storage_dsn), config.resolved_wal_dir)
    if on_ready is not None:
        on_ready()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_storage_dsn(data_dir: Path) -> str:
    return f"chdb://{data_dir.resolve() / 'clickhouse'}"


def _open_wal(config: CollectorConfig) -> WriteAheadLog:
    try:
        return WriteAheadLog(
            config.resolved_wal_dir,
            segment_bytes=config.wal_segment_bytes,
            max_bytes=config.wal_max_bytes,
            max_age_seconds=config.wal_max_age_seconds,
            min_free_disk_bytes=config.wal_min_free_disk_bytes,
        )
    except OSError as exc:
        raise StartupError(f"cannot use the write-ahead log directory {config.resolved_wal_dir}: {exc}") from exc


async def serve(
    config: CollectorConfig, budgets: BudgetsConfig | None = None, *, worker: WorkerRole | None = None
) -> None:
    """Run until SIGTERM/SIGINT. Start-up order: claim the ports, open the WAL, then start
    storage (in the pipeline worker) — a port in use or an unusable directory is a
    ``StartupError`` before embedded storage is loaded. ``worker``: run as one worker of
    ``--workers N`` (the supervisor already claimed the ports)."""
    if worker is not None:
        http_socket = listen(config.host, config.otlp_http_port, "OTLP/HTTP", reuse_port=True)
        try:
            wal = _open_wal(config)
        except BaseException:
            http_socket.close()
            raise
        try:
            await _serve(config, budgets, wal, http_socket, worker.api_socket, worker)
        finally:
            http_socket.close()
        return
    sockets = [listen(config.host, config.otlp_http_port, "OTLP/HTTP")]
    try:
        sockets.append(listen(config.host, config.api_port, "the API"))
        if config.otlp_grpc_port > 0:
            # gRPC binds its own socket; try the port first so "in use" is our one clear line
            # (gRPC's C core would add its own log line) and comes before the WAL and storage
            listen(config.host, config.otlp_grpc_port, "OTLP/gRPC").close()
        wal = _open_wal(config)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    try:
        await _serve(config, budgets, wal, sockets[0], sockets[1])
    finally:
        for sock in sockets:
            sock.close()


async def _serve(
    config: CollectorConfig,
    budgets: BudgetsConfig | None,
    wal: WriteAheadLog,
    http_socket: socket.socket,
    api_socket: socket.socket | None,
    worker: WorkerRole | None = None,
) -> None:
    # Storage connects (and migrates) in the pipeline worker, retrying: an unreachable
    # ClickHouse server must not keep the collector from accepting into its WAL.
    storage = (
        Storage(config.resolved_storage_dsn, lazy=True)
        if worker is None
        else _SerialMigrations(config.resolved_storage_dsn, worker.migrate_lock)
    )
    metrics = Metrics()
    forwarder = Forwarder(config.forward_endpoint, config.forward_headers) if config.forward_endpoint else None
    # newer genai-prices data a `featurecost prices update` left, else the pinned package's; one
    # pricer for the pipeline, the API, budgets and prices routes (a reprice or update reaches all)
    pricer = Pricer.from_file(config.prices_file, saved_price_data(config.data_dir))
    # with --workers, a reprice or update through worker 0's API reaches every worker's pricer
    prices_sync = PricesSync(config.data_dir, config.prices_file, pricer)
    pipeline = Pipeline(
        wal,
        storage,
        pricer,
        batch_rows=config.batch_rows,
        flush_interval=config.flush_interval,
        retention=config.retention,
        seen_window=config.seen_window,
        observe_insert=metrics.observe_insert,
        on_stored=forwarder.on_stored if forwarder else None,
        prepare_storage=True,
        before_pricing=prices_sync.refresh,
    )
    ingest = Ingest(
        wal,
        retry_after=config.retry_after_seconds,
        bearer_token=config.auth_token,
        blocked=lambda: pipeline.blocked,
        max_future_skew=config.max_future_skew_seconds,
    )
    metrics.watch(ingest.stats, pipeline, wal)
    receiver = create_receiver_app(
        ingest=ingest, max_body_bytes=config.max_body_bytes, max_inflight_bytes=config.max_inflight_bytes
    )
    receiver.router.routes.extend(signal_routes(ingest, config.max_body_bytes))
    tls: dict[str, Any] = {}
    if config.tls_cert is not None and config.tls_key is not None:
        tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    ingest_http = _Server(
        uvicorn.Config(receiver, host=config.host, port=config.otlp_http_port, log_level="warning", **tls)
    )
    grpc_server = None
    grpc_port: int | None = None
    if config.otlp_grpc_port >= 0:
        address = f"{config.host}:{config.otlp_grpc_port}"
        try:
            grpc_server, grpc_port = create_grpc_server(
                ingest,
                address,
                max_body_bytes=config.max_body_bytes,
                tls=config.tls_pem(),
                reuse_port=worker is not None,
            )
        except (RuntimeError, OSError) as exc:
            wal.close()
            raise StartupError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
        grpc_server.add_generic_rpc_handlers(signal_grpc_handlers(ingest))
    # every port is ours: now load storage (chDB in-process) and start serving
    tune_gc()
    engine = None
    if worker is not None and worker.engine_socket is not None:
        engine = EngineServer(storage, worker.engine_socket, worker.engine_secret).start()
    pipeline.start()
    if grpc_server is not None:
        await grpc_server.start()

    def ingest_ready() -> bool:
        return bool(ingest_http.started)

    # Budgets are evaluated (and alerts sent) by the process serving the API only: one
    # evaluator per collector, however many workers it runs.
    serves_api = api_socket is not None
    evaluator = build_evaluator(storage, budgets, interval=config.budget_interval) if budgets and serves_api else None
    routes = budget_routes(evaluator, AlertStore(storage) if evaluator else None, pricer)
    routes = [*routes, *prices_routes(storage, pricer, config.prices_file, on_change=prices_sync.changed)]
    api = create_api_app(
        storage,
        wal,
        pipeline,
        ingest.stats,
        ingest_ready=ingest_ready,
        metrics=metrics,
        forward_stats=forwarder.stats if forwarder else None,
        extra_routes=routes,
        access=ApiAccess(
            read_token=config.api_token,
            admin_token=config.admin_token,
            metrics_public=config.metrics_public,
            max_body_bytes=config.api_max_body_bytes,
        ),
        data_dir=config.data_dir,
        pricer=pricer,
        on_prices_changed=prices_sync.changed,
    )
    if serves_api and config.api_token is None and not _loopback(config.host):
        log.warning(
            "the API on %s:%d has no --api-token: anyone who can reach it reads every tenant's costs",
            config.host,
            config.api_port,
        )
    servers: list[uvicorn.Server] = [ingest_http]
    listening = [http_socket]
    if api_socket is not None:
        servers.append(_Server(uvicorn.Config(api, host=config.host, port=config.api_port, log_level="warning", **tls)))
        listening.append(api_socket)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def request_stop() -> None:
        stopping.set()
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    if evaluator:
        evaluator.start()
    ports = (
        int(http_socket.getsockname()[1]),
        int(api_socket.getsockname()[1]) if api_socket is not None else None,
    )
    on_ready = worker.on_ready if worker is not None else None
    announce = asyncio.create_task(_announce(config, servers, ports, grpc_port, on_ready))
    try:
        results = await asyncio.gather(
            *(server.serve(sockets=[sock]) for server, sock in zip(servers, listening, strict=True)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        announce.cancel()
        request_stop()
        if grpc_server is not None:
            await grpc_server.stop(grace=5)
        if evaluator:
            evaluator.stop()
        wal.close()  # nothing new is accepted; what is in the log drains below
        drained = await asyncio.to_thread(pipeline.stop, config.drain_timeout)
        if not drained:
            log.warning("pipeline did not drain in %.0fs; the rest stays in the WAL", config.drain_timeout)
        if forwarder is not None:
            await asyncio.to_thread(forwarder.close)
        if engine is not None:
            await asyncio.to_thread(engine.close)
        storage.close()
        log.info("collector stopped (checkpoint %s)", wal.checkpoint)
