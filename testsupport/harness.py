"""Start and stop the demo's processes: the collector, the provider stand-in, the app.

Shared by ``demo.run`` and the end-to-end tests, so both drive the same real
processes the same way. Readiness is awaited by polling a condition (health
endpoints, stored-call counts) with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait for a clean exit; SIGKILL only if it does not come."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise HarnessError(f"{self.name} did not stop within {timeout:.0f}s; killed") from None
        return self.popen.returncode

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait()


def _spawn(name: str, argv: list[str], log_dir: Path, env: Mapping[str, str] | None = None) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env or os.environ)
        )
    return ManagedProcess(name, popen, log_path)


def spawn_ready(
    name: str, argv: list[str], log_dir: Path, ready_url: str, timeout: float, verify: ssl.SSLContext | bool = True
) -> ManagedProcess:
    """Start ``argv`` and wait until ``ready_url`` answers 200; kill it if it never does.
    ``verify``: the CA file for an https ``ready_url`` with a private CA."""
    process = _spawn(name, argv, log_dir)

    def ready() -> bool:
        if not process.alive():
            raise HarnessError(f"{name} exited during start:\n{process.log()}")
        return httpx.get(ready_url, timeout=2, verify=verify).status_code == 200

    try:
        wait_until(ready, timeout, f"{name} readiness")
    except BaseException:
        process.kill()
        raise
    return process


@dataclass
class Collector:
    process: ManagedProcess
    data_dir: Path
    otlp_port: int
    api_port: int
    grpc_port: int = -1
    ca: Path | None = None  # with --tls-cert: the CA that signed it (the API is https)
    api_token: str | None = None  # with --api-token

    @property
    def otlp_endpoint(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.otlp_port}"

    @property
    def api_url(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.api_port}"

    def api(self) -> httpx.Client:
        """A client for the API with the collector's CA and token."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        verify = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        return httpx.Client(base_url=self.api_url, verify=verify, headers=headers)

    def status(self) -> dict[str, Any]:
        with self.api() as client:
            response = client.get("/api/v1/status", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Wait until everything the collector acknowledged is stored (WAL checkpoint = end)."""

        def drained() -> bool:
            if not self.process.alive():
                raise HarnessError(f"collector exited:\n{self.process.log()}")
            wal = self.status()["wal"]
            return bool(wal["checkpoint"] == wal["end"])

        wait_until(drained, timeout, "the collector to store everything it acknowledged")

    def wait_for_calls(self, expected: int, timeout: float = 60.0) -> None:
        def stored() -> bool:
            if not self.process.alive():
                raise HarnessError(f"collector exited:\n{self.process.log()}")
            return int(self.status()["stored_calls"]) >= expected

        wait_until(stored, timeout, f"{expected} calls stored")


# The provider stand-ins listen on loopback, which the collector takes for a self-hosted
# server (priced from the prices file only). They play the public providers, so the demo
# tells the collector so, as a team does for a proxy in front of a provider.
STAND_IN_ENDPOINTS = """
endpoints:
  - address: 127.0.0.1
    price_as: span
    note: the demo's provider stand-ins play the providers the SDKs name
"""


def start_collector(
    data_dir: Path,
    log_dir: Path,
    extra_args: list[str] | None = None,
    *,
    ca: Path | None = None,
    api_token: str | None = None,
) -> Collector:
    """``ca``: pass it when ``extra_args`` holds --tls-cert (signed by it); ``api_token``
    when they hold --api-token, so ``status()`` and friends authenticate."""
    otlp_port, api_port, grpc_port = free_port(), free_port(), free_port()
    extra_args = list(extra_args or [])
    if "--prices-file" not in extra_args:
        log_dir.mkdir(parents=True, exist_ok=True)
        prices = log_dir / "stand-in-prices.yaml"
        prices.write_text(STAND_IN_ENDPOINTS)
        extra_args += ["--prices-file", str(prices)]
    argv = [
        _bin("featurecost"), "collector",
        "--data-dir", str(data_dir),
        "--otlp-http-port", str(otlp_port),
        "--otlp-grpc-port", str(grpc_port),
        "--api-port", str(api_port),
        *extra_args,
    ]  # fmt: skip
    scheme = "https" if ca else "http"
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    process = spawn_ready("collector", argv, log_dir, f"{scheme}://127.0.0.1:{api_port}/readyz", 60, verify)
    return Collector(process, data_dir, otlp_port, api_port, grpc_port, ca, api_token)


@contextlib.contextmanager
def running_collector(
    data_dir: Path,
    log_dir: Path,
    extra_args: list[str] | None = None,
    *,
    ca: Path | None = None,
    api_token: str | None = None,
) -> Iterator[Collector]:
    """``start_collector`` for the block; on leaving it the collector must stop cleanly (exit 0)."""
    collector = start_collector(data_dir, log_dir, extra_args, ca=ca, api_token=api_token)
    try:
        yield collector
    finally:
        assert collector.process.stop() == 0, collector.process.log()


@dataclass
class StandIn:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/_stand_in/served", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


def start_stand_in(log_dir: Path) -> StandIn:
    port = free_port()
    argv = [sys.executable, "-m", "testsupport.stand_ins.openai_anthropic", "--port", str(port)]
    process = spawn_ready("stand-in", argv, log_dir, f"http://127.0.0.1:{port}/_stand_in/health", 30)
    return StandIn(process, port)


def app_environment(collector: Collector, stand_in: StandIn, environment: str = "production") -> dict[str, str]:
    """Environment for ``opentelemetry-instrument``: OTLP/HTTP to the collector, nothing else."""
    env = dict(os.environ)
    env.update(
        {
            "OTEL_SERVICE_NAME": "demo-saas",
            "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment.name={environment}",
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.otlp_endpoint}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            # Third-party OpenAI/Anthropic instrumentors installed for the normalizer's tests register as
            # "openai"/"anthropic"; the demo runs ours only (theirs would be marked superseded: noise).
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic",
            "FEATURECOST_DEMO_LLM_URL": stand_in.url,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")])
            ),
        }
    )
    return env


def run_instrumented(module: str, env: Mapping[str, str], log_dir: Path, timeout: float = 300.0) -> str:
    """Run ``python -m module`` under ``opentelemetry-instrument``; return its output."""
    argv = [_bin("opentelemetry-instrument"), sys.executable, "-m", module]
    completed = subprocess.run(
        argv,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    (log_dir / f"{module}.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise HarnessError(f"{module} failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout
