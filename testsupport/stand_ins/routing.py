"""Reach a stand-in while the SDK talks to the provider's real base URL.

The collector places the provider from the endpoint a span names (``server.address``), so a
test of "an openai client pointed at api.deepseek.com" must leave the client's base URL
at api.deepseek.com. These httpx transports send each request over real HTTP to a
stand-in on loopback instead, keeping the path the SDK built (under ``/<host>`` when one
stand-in plays several providers). The SDK, its retries, headers and SSE parsing run as
they do against the provider.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import httpx


def _rerouted(request: Any, target: Any, by_host: bool) -> None:
    prefix = target.path.rstrip("/") + (f"/{request.url.host}" if by_host else "")
    raw_path = (prefix + request.url.raw_path.decode()).encode()
    request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port, raw_path=raw_path)
    request.headers["host"] = f"{target.host}:{target.port}"


def routed_client(target: str, *, by_host: bool = False, httpx_module: ModuleType = httpx) -> Any:
    """A client for an SDK's ``http_client=``: every request goes to ``target``.

    ``httpx_module``: the SDK's own HTTP package (the anthropic SDK ships on ``httpx2``).
    """
    url = httpx_module.URL(target)

    class RouteTo(httpx_module.HTTPTransport):  # type: ignore[name-defined,misc]
        def handle_request(self, request: Any) -> Any:
            _rerouted(request, url, by_host)
            return super().handle_request(request)

    return httpx_module.Client(transport=RouteTo())


def routed_async_client(target: str, *, by_host: bool = False, httpx_module: ModuleType = httpx) -> Any:
    url = httpx_module.URL(target)

    class AsyncRouteTo(httpx_module.AsyncHTTPTransport):  # type: ignore[name-defined,misc]
        async def handle_async_request(self, request: Any) -> Any:
            _rerouted(request, url, by_host)
            return await super().handle_async_request(request)

    return httpx_module.AsyncClient(transport=AsyncRouteTo())


def anthropic_http() -> ModuleType:
    """The HTTP package the installed anthropic SDK builds its clients with."""
    import anthropic._base_client as base

    module: ModuleType = getattr(base, "httpx2")  # noqa: B009 - not re-exported by anthropic
    return module
