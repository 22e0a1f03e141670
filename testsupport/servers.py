"""Serving an ASGI app (a stand-in, a webhook receiver) over real HTTP on loopback, in a thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from testsupport.harness import free_port


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
