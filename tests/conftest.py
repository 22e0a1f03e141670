from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demo.harness import free_port
from demo.providers import StandIn

# tests/llamaindex needs openai<3: it runs in its own venv (`make llamaindex-venv`), which sets this
collect_ignore = [] if os.environ.get("FEATURECOST_LLAMAINDEX_VENV") else ["llamaindex"]


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to pytest's main thread


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app over real HTTP on loopback for the duration of the block."""
    port = free_port()
    server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    started = threading.Event()

    async def serve() -> None:
        await server.serve()

    def run() -> None:
        import asyncio

        asyncio.run(serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait_started() -> None:
        while not server.started and thread.is_alive():
            started.wait(0.01)

    wait_started()
    if not server.started:
        raise RuntimeError("stand-in server failed to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class RunningStandIn:
    url: str
    stand_in: StandIn

    @property
    def served(self) -> list[dict[str, Any]]:
        return self.stand_in.served


@pytest.fixture
def stand_in() -> Iterator[RunningStandIn]:
    provider = StandIn()
    with serve_in_thread(provider.app()) as url:
        yield RunningStandIn(url, provider)


@dataclass
class Spans:
    exporter: InMemorySpanExporter
    provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def llm(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.attributes and "gen_ai.operation.name" in s.attributes]


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(exporter, provider)
    provider.shutdown()
