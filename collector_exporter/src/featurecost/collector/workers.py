"""``featurecost collector --workers N``: one collector as N processes, to use N cores.

The collector's Python (receivers, normalize, pricing, insert) holds one GIL, so one process
uses about one core. With ``--workers N`` the ``featurecost collector`` process becomes a
supervisor that starts N worker processes (``python -m featurecost.collector.workers``), each
a whole collector pipeline (server.py) with:

- its own write-ahead log: worker 0 uses the WAL directory itself (so 1 ↔ N workers keeps
  worker 0's data), worker i > 0 ``<wal>/worker-<i>``. Each WAL has its own identity, so the
  insert deduplication tokens of the workers never collide in the shared ClickHouse;
- the OTLP/HTTP and OTLP/gRPC ports, shared with SO_REUSEPORT: the kernel spreads incoming
  connections over the workers. The supervisor holds each port with a bound, non-listening
  socket (ingest/listen.py ``reserve``): no other process can take the port, and a port 0
  is resolved once for all workers;
- the API port on worker 0 only (the supervisor keeps the listening socket, so a restarted
  worker 0 serves it again); budgets are evaluated there only.

The supervisor restarts a worker that dies (its WAL is replayed on start: nothing it
acknowledged is lost; what a killed worker had not yet acknowledged the exporter retries),
forwards SIGTERM/SIGINT so every worker drains, and exits non-zero with the reason when a
worker cannot start.

Storage: with a ClickHouse server every worker inserts into it. Embedded chDB is one engine
owned by one process, so worker 0 owns it and serves it to the others on a loopback port the
supervisor holds, to requests presenting a secret made for this run (storage/engine_http.py):
the other workers receive, normalize and price in parallel and store through worker 0 like
clients of a ClickHouse server. On stop the other workers drain first, then worker 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurecost.collector.budgets.config import load_budgets
from featurecost.collector.config import CollectorConfig
from featurecost.collector.ingest.listen import StartupError, listen, reserve
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.server import WorkerRole, serve

log = logging.getLogger(__name__)

_SPEC_ENV = "_FEATURECOST_WORKER_SPEC"  # internal: how the supervisor configures a worker
_WORKER_DIR = "worker-"
_MAX_RESTARTS = 5  # restarts of one worker within _RESTART_WINDOW before giving up
_RESTART_WINDOW = 60.0
_STOP_GRACE = 30.0  # beyond drain_timeout: the gRPC grace, closing storage


def wal_dir_for(config: CollectorConfig, index: int) -> Path:
    """Worker ``index``'s WAL directory (worker 0: the WAL directory itself)."""
    root = config.resolved_wal_dir
    return root if index == 0 else root / f"{_WORKER_DIR}{index}"


def check_leftover_wals(config: CollectorConfig) -> None:
    """Refuse to start while a worker's WAL that this run would not read holds unstored data.

    A run with more workers left ``<wal>/worker-<i>`` for i ≥ ``config.workers``; starting
    with fewer would strand what those workers acknowledged. The WAL's checkpoint file says
    how far it was stored; segments beyond it are unstored."""
    root = config.resolved_wal_dir
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        suffix = child.name.removeprefix(_WORKER_DIR)
        if child.name == suffix or not suffix.isdigit() or int(suffix) < config.workers or not child.is_dir():
            continue
        if _has_unstored(child):
            raise StartupError(
                f"the write-ahead log {child} holds data a run with more workers acknowledged and has not "
                f"stored yet: start with --workers {int(suffix) + 1} (or more) until it drains"
            )


def _has_unstored(directory: Path) -> bool:
    wal = WriteAheadLog(directory)  # opening cuts a torn tail, as the worker would
    try:
        return wal.pending_bytes() > 0
    finally:
        wal.close()


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    starts: list[float] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # it served once


class Supervisor:
    """Runs ``config.workers`` worker processes until SIGTERM/SIGINT (see the module doc)."""

    def __init__(self, config: CollectorConfig, log_level: str = "INFO") -> None:
        self.config = config
        self.log_level = log_level
        self.workers = [_Worker(i) for i in range(config.workers)]
        self._stopping = asyncio.Event()
        self._failure: str | None = None
        self._held: list[socket.socket] = []
        self._api_socket: socket.socket | None = None
        self._ports = (config.otlp_http_port, config.otlp_grpc_port)
        # embedded chDB: worker 0's engine, served to the other workers (module doc)
        self._engine_socket: socket.socket | None = None
        self._engine_secret = secrets.token_urlsafe(32)

    def _claim_ports(self) -> None:
        config = self.config
        http = reserve(config.host, config.otlp_http_port, "OTLP/HTTP")
        self._held.append(http)
        self._api_socket = listen(config.host, config.api_port, "the API")
        self._held.append(self._api_socket)
        grpc_port = config.otlp_grpc_port
        if grpc_port >= 0:
            grpc = reserve(config.host, grpc_port, "OTLP/gRPC")
            self._held.append(grpc)
            grpc_port = int(grpc.getsockname()[1])
        self._ports = (int(http.getsockname()[1]), grpc_port)
        if config.workers > 1 and config.resolved_storage_dsn.startswith("chdb:"):
            self._engine_socket = listen("127.0.0.1", 0, "the embedded engine (for the workers)")
            self._held.append(self._engine_socket)

    def _spec(self, index: int, ready_fd: int) -> dict[str, Any]:
        http_port, grpc_port = self._ports
        update: dict[str, Any] = {
            "otlp_http_port": http_port,
            "otlp_grpc_port": grpc_port,
            "wal_dir": wal_dir_for(self.config, index),
        }
        engine = self._engine_socket
        if engine is not None and index > 0:
            update["storage_dsn"] = f"http://featurecost:{self._engine_secret}@127.0.0.1:{engine.getsockname()[1]}"
        config = self.config.model_copy(update=update)
        api_fd = self._api_socket.fileno() if index == 0 and self._api_socket is not None else None
        return {
            "index": index,
            "config": config.model_dump(mode="json"),
            "api_fd": api_fd,
            "engine_fd": engine.fileno() if engine is not None and index == 0 else None,
            "engine_secret": self._engine_secret if engine is not None and index == 0 else None,
            "ready_fd": ready_fd,
            "log_level": self.log_level,
            "migrate_lock": str(self.config.data_dir.resolve() / "migrate.lock"),
            "supervisor": os.getpid(),
        }

    async def _start(self, worker: _Worker) -> int | None:
        """Start ``worker``; None once it serves, else its exit code (it could not start)."""
        read_fd, write_fd = os.pipe()
        spec = self._spec(worker.index, write_fd)
        fds = [fd for fd in (write_fd, spec["api_fd"], spec["engine_fd"]) if fd is not None]
        env = {**os.environ, _SPEC_ENV: json.dumps(spec)}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "featurecost.collector.workers",
                env=env,
                pass_fds=fds,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            os.close(write_fd)
        worker.process = process
        worker.starts.append(time.monotonic())
        try:
            # the worker writes one byte once all its servers listen; EOF: it exited first
            ready = await asyncio.to_thread(os.read, read_fd, 1)
        finally:
            os.close(read_fd)
        if ready:
            log.info("worker %d running (pid %d)", worker.index, process.pid)
            worker.ready.set()
            return None
        return await process.wait()

    async def _keep(self, worker: _Worker) -> int:
        """Keep ``worker`` running until the collector stops; its last exit code."""
        while True:
            failed = await self._start(worker)
            if failed is not None and self._stopping.is_set():
                # stopped while it started: our SIGTERM may land before its handlers exist;
                # whatever it acknowledged is in its WAL, replayed by the next start
                return 0 if failed == -signal.SIGTERM else failed
            if failed is not None:
                self._fail(f"worker {worker.index} could not start (exit code {failed}); its reason is logged above")
                return failed
            if self._stopping.is_set():  # a stop came while it started
                self._terminate(worker)
            assert worker.process is not None
            code = await worker.process.wait()
            if self._stopping.is_set():
                return code
            now = time.monotonic()
            recent = [t for t in worker.starts if now - t < _RESTART_WINDOW]
            if len(recent) > _MAX_RESTARTS:
                self._fail(
                    f"worker {worker.index} exited {len(recent)} times within {_RESTART_WINDOW:.0f}s "
                    f"(last exit code {code})"
                )
                return code
            log.error(
                "worker %d (pid %d) exited with code %d; restarting it (its write-ahead log is replayed)",
                worker.index,
                worker.process.pid,
                code,
            )
            # a worker that dies right after starting would spin: wait a little more each time
            await asyncio.sleep(min(0.2 * 2 ** (len(recent) - 1), 5.0))
            if self._stopping.is_set():
                return code

    async def _others_ready(self) -> None:
        for worker in self.workers[1:]:
            await worker.ready.wait()

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        self._stopping.set()

    def _terminate(self, worker: _Worker) -> None:
        if worker.process is not None and worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)

    async def run(self) -> int:
        """Exit code: 0 when every worker drained and stopped cleanly. Raises ``StartupError``
        when the ports cannot be claimed or a worker cannot start."""
        self._claim_ports()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        http_port, grpc_port = self._ports
        log.info(
            "collector with %d workers: OTLP/HTTP port %d%s shared, API on port %d (worker 0)",
            len(self.workers),
            http_port,
            f", OTLP/gRPC port {grpc_port}" if grpc_port >= 0 else "",
            self.config.api_port if self._api_socket is None else self._api_socket.getsockname()[1],
        )
        if self._engine_socket is not None:
            log.info(
                "embedded chDB: worker 0 owns the engine, the other workers store through it (127.0.0.1:%d)",
                self._engine_socket.getsockname()[1],
            )
        # Worker 0 (the API, so /readyz) starts once the others listen: a ready collector has
        # every worker taking connections. Connections stay on the worker that accepted them, so
        # an exporter connecting while only some workers listened would stay on those.
        keepers = [asyncio.create_task(self._keep(worker)) for worker in self.workers[1:]]
        try:
            others_ready = asyncio.create_task(self._others_ready())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait([others_ready, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not self._stopping.is_set():
                keepers.append(asyncio.create_task(self._keep(self.workers[0])))
            others_ready.cancel()
            await stopping
            log.info("stopping: every worker drains its write-ahead log")
            deadline = time.monotonic() + self.config.drain_timeout + _STOP_GRACE
            if self._engine_socket is not None:
                # the others store through worker 0's engine: they drain first, then worker 0
                for worker in self.workers[1:]:
                    self._terminate(worker)
                others = keepers[: len(self.workers) - 1]
                await asyncio.wait(others, timeout=max(deadline - time.monotonic(), 0.1))
            for worker in self.workers:
                self._terminate(worker)
            await asyncio.wait(keepers, timeout=max(deadline - time.monotonic(), 0.1))
            for worker in self.workers:
                if worker.process is not None and worker.process.returncode is None:
                    log.error("worker %d did not stop in time; killing it (its WAL keeps the rest)", worker.index)
                    worker.process.kill()
            codes = await asyncio.gather(*keepers)
        finally:
            for sock in self._held:
                sock.close()
        if self._failure is not None:
            raise StartupError(self._failure)
        return 0 if all(code == 0 for code in codes) else 1


def supervise(config: CollectorConfig, log_level: str = "INFO") -> int:
    return asyncio.run(Supervisor(config, log_level).run())


def _die_with(supervisor: int) -> None:
    """Have the kernel SIGTERM this worker when its supervisor dies, even by SIGKILL: an
    orphaned worker would keep its WAL and a share of the ports, and the workers of the next
    start would join the same ports and open the same WAL directories. SIGTERM drains it."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def worker_main() -> None:
    """Entry of one worker process; configured by the supervisor through ``_SPEC_ENV``."""
    spec = json.loads(os.environ.pop(_SPEC_ENV))
    _die_with(int(spec["supervisor"]))
    index = int(spec["index"])
    logging.basicConfig(
        level=str(spec["log_level"]).upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s",
    )
    config = CollectorConfig.model_validate(spec["config"])
    api_socket = None
    if spec["api_fd"] is not None:
        api_socket = socket.socket(fileno=int(spec["api_fd"]))
        api_socket.setblocking(False)
    engine_socket = None
    if spec.get("engine_fd") is not None:
        engine_socket = socket.socket(fileno=int(spec["engine_fd"]))
        engine_socket.setblocking(True)  # served by a thread per connection (http.server)
    ready_fd = int(spec["ready_fd"])

    def on_ready() -> None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)

    budgets = load_budgets(config.budgets_file) if index == 0 and config.budgets_file is not None else None
    role = WorkerRole(index, api_socket, on_ready, Path(spec["migrate_lock"]), engine_socket, spec.get("engine_secret"))
    try:
        asyncio.run(serve(config, budgets, worker=role))
    except StartupError as exc:
        print(f"featurecost collector worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    worker_main()
