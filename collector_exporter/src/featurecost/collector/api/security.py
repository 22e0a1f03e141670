"""Access control for the API port: tokens, cross-origin writes, body limits.

The API serves every tenant's costs, the budget decisions and two write endpoints
(usage import, rollup rebuild), so an operator exposing it expects:

- **tokens** — with a read token configured, every route but ``/healthz`` and
  ``/readyz`` (probes carry no credentials) needs ``Authorization: Bearer <token>``;
  ``/metrics`` too unless made public. Writes need the admin token (the read token
  when no admin token is set). The web page's static files are open (they hold no
  data); the page sends the token its user gives it with every report request;
- **no cross-site writes** — a page on another origin can make a browser POST to the
  API (a CSV is a "simple" request, no preflight). Writes whose ``Origin`` is not the
  API's own, or that the browser marks ``Sec-Fetch-Site: cross-site``/``same-site``,
  are refused whether or not tokens are configured (a loopback API has none);
- **a body limit on every route**, declared or streamed, so no request can make the
  process buffer more than ``max_body_bytes``.

A pure ASGI middleware: it wraps the app once, so routes added later are covered too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featurecost.collector.ingest.admission import bearer_matches

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_PAGE_PATHS = ("/web/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_API_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiAccess:
    read_token: str | None = None
    admin_token: str | None = None
    metrics_public: bool = False
    max_body_bytes: int = DEFAULT_API_MAX_BODY_BYTES

    @property
    def write_token(self) -> str | None:
        return self.admin_token or self.read_token

    def allows_read(self, authorization: str | None) -> bool:
        tokens = [t for t in (self.read_token, self.admin_token) if t]
        return not tokens or any(bearer_matches(authorization, token) for token in tokens)

    def allows_write(self, authorization: str | None) -> bool:
        token = self.write_token
        return token is None or bearer_matches(authorization, token)


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}


def cross_site_problem(headers: dict[str, str], scheme: str) -> str | None:
    """Why a write with these headers came from another site's page, or None."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site in ("cross-site", "same-site"):
        return f"cross-site write refused (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin is None:
        return None  # not a browser (CLI, curl, services): tokens protect those
    parts = urlsplit(origin)
    host = headers.get("host", "")
    if origin == "null" or parts.netloc.lower() != host.lower() or parts.scheme not in (scheme, ""):
        return f"cross-origin write refused (Origin: {origin})"
    return None


class ApiSecurity:
    def __init__(self, app: ASGIApp, access: ApiAccess) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"].upper()
        headers = _headers(scope)
        authorization = headers.get("authorization")
        write = method not in _SAFE_METHODS
        if write:
            problem = cross_site_problem(headers, scope.get("scheme", "http"))
            if problem is not None:
                await _error(send, 403, problem)
                return
            if not self.access.allows_write(authorization):
                await _error(send, 401, "admin token required (Authorization: Bearer <token>)")
                return
        elif not self._open(path) and not self.access.allows_read(authorization):
            await _error(send, 401, "API token required (Authorization: Bearer <token>)")
            return
        declared = headers.get("content-length")
        limit = self.access.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _error(send, 413, f"request body over {limit} bytes")
            return
        # Read the body here, up to the limit, and replay it: the app never buffers more.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _error(send, 413, f"request body over {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _open(self, path: str) -> bool:
        if path in OPEN_PATHS or path == "/" or path.startswith(_PAGE_PATHS):
            return True
        return path == "/metrics" and self.access.metrics_public


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="featurecost"'))
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
