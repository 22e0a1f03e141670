"""ASGI and WSGI middleware: attribution from incoming request headers.

A gateway or frontend often knows the feature and tenant of a request better than
the service that makes the LLM call. These middlewares turn request headers
(``X-Feature-Name``, ``X-Tenant-ID``, … — configurable) into ``featurecost.attribute``
for the duration of the request, so every LLM call it makes is attributed.

Incoming W3C ``baggage`` is honoured too (when no server instrumentation extracted it
already), but only for our keys and under the allow-list and size caps of
``featurecost.configure``: headers come from outside and are not trusted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from featurecost.instrumentation.attribution import attribute, current_attribution

# header (lower case) -> featurecost.attribute keyword
DEFAULT_HEADERS: Mapping[str, str] = {
    "x-feature-name": "feature",
    "x-tenant-id": "tenant",
    "x-user-id": "user",
    "x-plan": "plan",
    "x-session-id": "session",
    "x-feature-version": "version",
}

_BAGGAGE_PROPAGATOR = W3CBaggagePropagator()
_ATTRIBUTE_NAMES = {"feature", "tenant", "user", "plan", "session", "version", "root_id"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header_map(headers: Mapping[str, str] | None) -> dict[str, str]:
    mapping = {k.lower(): v for k, v in (headers if headers is not None else DEFAULT_HEADERS).items()}
    for name in mapping.values():
        if not name.isidentifier():
            raise ValueError(f"header target {name!r} is not an attribution keyword")
    return mapping


def _request_context(raw: Mapping[str, str], mapping: Mapping[str, str]) -> otel_context.Context:
    """The context a request runs in: incoming baggage (ours only, capped), then header attribution."""
    ctx = otel_context.get_current()
    baggage_header = raw.get("baggage")
    if baggage_header and not current_attribution(ctx):
        incoming = _BAGGAGE_PROPAGATOR.extract({"baggage": baggage_header})
        for key, value in current_attribution(incoming).items():
            ctx = baggage.set_baggage(key, value, context=ctx)
    values: dict[str, str] = {}
    for header, name in mapping.items():
        found = raw.get(header)
        if found and found.strip():
            values[name] = found.strip()
    named = {k: v for k, v in values.items() if k in _ATTRIBUTE_NAMES}
    extra = {k: v for k, v in values.items() if k not in _ATTRIBUTE_NAMES}
    token = otel_context.attach(ctx)
    try:
        with attribute(**named, **extra):
            return otel_context.get_current()
    finally:
        otel_context.detach(token)


class AttributionMiddleware:
    """ASGI middleware: ``app = AttributionMiddleware(app, headers={"x-feature": "feature"})``."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = _header_map(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw: dict[str, str] = {}
        for key, value in scope.get("headers") or ():
            name = key.decode("latin-1").lower()
            if name in self.headers or name == "baggage":
                raw[name] = value.decode("latin-1")
        token = otel_context.attach(_request_context(raw, self.headers))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


class WSGIAttributionMiddleware:
    """WSGI middleware: ``app.wsgi_app = WSGIAttributionMiddleware(app.wsgi_app)``.

    The attribution stays in force while the response body is produced, since a
    streaming WSGI response may call the LLM from inside its iterator.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = _header_map(headers)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw: dict[str, str] = {}
        for header in (*self.headers, "baggage"):
            value = environ.get("HTTP_" + header.upper().replace("-", "_"))
            if isinstance(value, str):
                raw[header] = value
        ctx = _request_context(raw, self.headers)
        token = otel_context.attach(ctx)
        try:
            result = self.app(environ, start_response)
        finally:
            otel_context.detach(token)
        return _AttributedBody(result, ctx)


class _AttributedBody:
    """The WSGI body: each chunk is produced (and ``close`` runs) inside the request's context."""

    def __init__(self, result: Iterable[bytes], ctx: otel_context.Context) -> None:
        self._result = result
        self._ctx = ctx

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self._result)
        while True:
            token = otel_context.attach(self._ctx)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                otel_context.detach(token)
            yield chunk

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            token = otel_context.attach(self._ctx)
            try:
                close()
            finally:
                otel_context.detach(token)
