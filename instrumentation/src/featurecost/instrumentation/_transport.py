"""Our attribution never reaches a provider, whoever sends the request.

Our wrappers hide featurecost baggage from the SDK while *they* run a call. But requests
leave at moments our wrappers do not cover: a call we pass through (inside another
instrumentation's stream manager we do not know, or nested), a stream helper's deferred
request, an SDK's own tracing injecting ``baggage`` into its headers (recent ``anthropic``),
an HTTP client instrumentation injecting the current context in the transport. So the last
step before the bytes go out is checked too:

* **httpx / httpx2** (openai, anthropic, mistral, cohere, google-genai): ``Client.send`` and
  ``AsyncClient.send`` are wrapped once while any of our instrumentors is on. A request whose
  headers carry an instrumented SDK's signature (``SDK_SIGNATURES``) has featurecost entries
  removed from its ``baggage`` header, and is sent in a context without them, so an httpx
  instrumentation injecting inside the transport finds none either. Other requests (the
  app's calls to its own services, which *should* carry the attribution) are untouched:
  the cost is one header lookup per signature.
* **botocore** (Bedrock): a ``before-send`` handler on each Bedrock Runtime client.

The application's other baggage entries stay, in order.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from opentelemetry import context as otel_context
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context.context import Context
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation._nested import IN_LLM_CALL
from featurecost.instrumentation.attribution import is_attribution_key

# How each instrumented SDK's requests can be told apart: (header, substring of its value).
SDK_SIGNATURES: Final[Mapping[str, tuple[str, str]]] = {
    "openai": ("x-stainless-lang", ""),  # Stainless SDKs (openai, anthropic) all send it
    "anthropic": ("x-stainless-lang", ""),
    "mistralai": ("user-agent", "mistralai"),
    "cohere": ("x-fern-sdk-name", "cohere"),
    "google_genai": ("x-goog-api-client", "google-genai-sdk"),
}
_HTTP_MODULES = ("httpx", "httpx2")
_BAGGAGE_HEADER = "baggage"

_lock = threading.Lock()
_active: dict[str, tuple[str, str]] = {}
# header name -> marker, as the bytes httpx keeps (one pass over a request's raw headers)
_signatures: dict[bytes, bytes] = {}
_wrapped: list[Any] = []


def _compile(active: Mapping[str, tuple[str, str]]) -> dict[bytes, bytes]:
    # one marker per header name in SDK_SIGNATURES (the Stainless SDKs share theirs)
    return {header.lower().encode(): marker.encode() for header, marker in active.values()}


def strip_baggage_value(value: str) -> str | None:
    """``value`` (a W3C ``baggage`` header) without our entries; None when nothing is left."""
    kept = []
    for member in value.split(","):
        key = unquote(member.split("=", 1)[0].strip())
        if key and not is_attribution_key(key):
            kept.append(member.strip())
    return ",".join(kept) if kept else None


def _has_ours(value: str) -> bool:
    return any(is_attribution_key(unquote(m.split("=", 1)[0].strip())) for m in value.split(","))


def strip_headers(headers: Any) -> None:
    """Remove our entries from every ``baggage`` header of an httpx/httpx2/botocore header map."""
    get_list = getattr(headers, "get_list", None) or getattr(headers, "get_all", None)  # httpx / http.client
    values = (get_list(_BAGGAGE_HEADER) or []) if get_list is not None else [headers.get(_BAGGAGE_HEADER)]
    values = [v.decode() if isinstance(v, bytes) else v for v in values if v]
    if not values or not any(_has_ours(v) for v in values):
        return
    kept = [s for s in (strip_baggage_value(v) for v in values) if s]
    del headers[_BAGGAGE_HEADER]
    if kept:
        headers[_BAGGAGE_HEADER] = ",".join(kept)


def context_without_ours(ctx: Context | None = None) -> Context | None:
    """``ctx`` (default: current) without our baggage entries; None when it has none."""
    ctx = otel_context.get_current() if ctx is None else ctx
    entries = ctx.get(_BAGGAGE_KEY)
    if not isinstance(entries, Mapping) or not any(is_attribution_key(k) for k in entries):
        return None
    values = dict(ctx)
    values[_BAGGAGE_KEY] = {k: v for k, v in entries.items() if not is_attribution_key(k)}
    return Context(values)


def _is_sdk_request(headers: Any) -> bool:
    raw = getattr(headers, "raw", None)
    if raw is None:
        return False
    signatures = _signatures
    for key, value in raw:
        marker = signatures.get(key.lower())
        if marker is not None and marker in value:
            return True
    return False


_BAGGAGE_KEY_BYTES = _BAGGAGE_HEADER.encode()


def _has_baggage_header(headers: Any) -> bool:
    """``"baggage" in headers``, cheaply for httpx/httpx2: their ``in`` first works out the
    headers' encoding by decoding every header of the request (~3 µs per request, measured, and
    each request is a new object), while they keep (raw key, lowercased key, value) triples that
    answer the same question as they are."""
    entries = getattr(headers, "_list", None)
    if type(entries) is list:
        try:
            return _BAGGAGE_KEY_BYTES in [entry[1] for entry in entries]
        except (IndexError, TypeError):  # another layout: ask the public way
            pass
    return _BAGGAGE_HEADER in headers


def _request_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    return args[0] if args else kwargs.get("request")


def _context_has_ours(ctx: Context) -> bool:
    entries = ctx.get(_BAGGAGE_KEY)
    return isinstance(entries, Mapping) and any(is_attribution_key(k) for k in entries)


def _prepare(request: Any) -> Context | None:
    """For an instrumented SDK's request: strip its header; the context to send it in
    (None: the current one has none of our baggage)."""
    headers = getattr(request, "headers", None)
    if headers is None:
        return None
    ctx = otel_context.get_current()
    has_header = _has_baggage_header(headers)
    # The common case costs one header lookup: no baggage header, and a context without our
    # entries (inside our own call the provider context has them removed already).
    if not has_header and (ctx.get(IN_LLM_CALL) or not _context_has_ours(ctx)):
        return None
    if not _is_sdk_request(headers):
        return None
    if has_header:
        _guarded(strip_headers, headers)
    return context_without_ours(ctx)


def _send(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    clean = _prepare(_request_of(args, kwargs))
    if clean is None:
        return wrapped(*args, **kwargs)
    token = otel_context.attach(clean)
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


async def _send_async(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    clean = _prepare(_request_of(args, kwargs))
    if clean is None:
        return await wrapped(*args, **kwargs)
    token = otel_context.attach(clean)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


def _guarded(function: Callable[[Any], None], value: Any) -> None:
    # Stripping must never break the user's request: a header map we cannot edit is sent as is.
    try:
        function(value)
    except Exception:
        return


def install(sdk: str) -> None:
    """Strip our baggage from ``sdk``'s requests (called by its instrumentor's ``_instrument``)."""
    global _signatures
    with _lock:
        _active[sdk] = SDK_SIGNATURES[sdk]
        _signatures = _compile(_active)
        if _wrapped:
            return
        for name in _HTTP_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            wrap_function_wrapper(module, "Client.send", _send)
            wrap_function_wrapper(module, "AsyncClient.send", _send_async)
            _wrapped.append(module)


def uninstall(sdk: str) -> None:
    """Undo ``install`` for ``sdk``; the send wrappers go with the last one."""
    global _signatures
    with _lock:
        _active.pop(sdk, None)
        _signatures = _compile(_active)
        if _active:
            return
        for module in _wrapped:
            unwrap(module.Client, "send")
            unwrap(module.AsyncClient, "send")
        _wrapped.clear()


# --- botocore ---
_BEFORE_SEND = "before-send.bedrock-runtime"


def _strip_botocore_request(request: Any, **_: Any) -> None:
    _guarded(strip_headers, request.headers)
    # None: botocore goes on and sends the request


def watch_botocore_client(client: Any) -> None:
    """Register the ``before-send`` handler on a Bedrock Runtime client (once per client)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None or getattr(client, "_featurecost_strips_baggage", False):
        return
    events.register_first(_BEFORE_SEND, _strip_botocore_request, unique_id="featurecost-strip-baggage")
    try:
        client._featurecost_strips_baggage = True
    except AttributeError:
        return
