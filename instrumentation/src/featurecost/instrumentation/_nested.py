"""Spans started inside a featurecost LLM call are marked ``featurecost.superseded``.

Another LLM instrumentation that wraps the same SDK method *inside* ours (the official
``opentelemetry-instrumentation-openai-v2`` checks no suppression key; which one wraps inside
depends on the order ``opentelemetry-instrument`` loads them) emits a second GenAI span for
the same call, and the collector would bill it twice. A span processor sees every span start
with its parent context: one started while our provider context is current is part of our
call, so it is marked superseded — the collector bills only the span that carries the
attribution. Non-LLM spans in there (the HTTP request) carry the mark harmlessly: the collector
only looks at it on LLM spans.

The processor is added once per SDK ``TracerProvider``; it does nothing outside our calls, so
``uninstrument`` can leave it in place (the SDK has no API to remove a processor).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from featurecost.instrumentation import attributes as attrs

# Set in the context the SDK talks to the provider in (``_spans._provider_context``).
IN_LLM_CALL = otel_context.create_key("featurecost-in-llm-call")
log = logging.getLogger(__name__)
_lock = threading.Lock()
# Providers already watched, by identity: a WeakSet would hash them, and some providers are
# unhashable (Logfire's proxy provider sets ``__hash__ = None``). Values hold a weak
# reference where the provider allows one, else the provider itself (kept alive: rare).
_watched: dict[int, Any] = {}
_global_watched = False
_next_global_try = 0.0


def watch_global_provider() -> None:
    """``watch_nested_spans`` for the global provider, until it has worked once.

    Called as every LLM call starts: while the global provider is still the API's proxy (no
    SDK set up yet, or an app that only passes providers explicitly), it asks at most once a
    second rather than on every call.
    """
    global _global_watched, _next_global_try
    if _global_watched:
        return
    now = time.monotonic()
    if now < _next_global_try:
        return
    _next_global_try = now + 1.0
    _global_watched = watch_nested_spans()


class PassiveSpanProcessor:
    """A span processor that acts only when spans start. Duck-typed (no opentelemetry-sdk
    import): the SDK's multi-processor calls all of these, ``_on_ending`` included."""

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# Set while we call an SDK method whose request is sent later (a stream helper's manager):
# a list that collects the spans started meanwhile. Another instrumentation wrapping the
# method inside ours starts its LLM span there without making it current (OpenLLMetry,
# OpenInference), so only the processor sees it; once our span is sure to exist, it is
# marked superseded (``supersede_foreign_llm_spans``).
STARTED_SPANS = otel_context.create_key("featurecost-started-spans")


_server_spans_seen = False


def server_spans_seen() -> bool:
    """Whether this process has started a SERVER span: its incoming requests are traced, so an
    LLM call with no enclosing span at all runs outside any request (``featurecost.latency =
    background``). Without traced requests nothing can be inferred."""
    return _server_spans_seen


# Keys (ids) of the featurecost calls in progress in this process: a span can only start inside
# one of our calls (or a stream helper's ``STARTED_SPANS`` window) while this is not empty. A key
# left behind (a stream never finished nor collected) only costs speed, never a missed mark.
LIVE: set[int] = set()
_live_lock = threading.Lock()
_markers: weakref.WeakSet[NestedSpanMarker] = weakref.WeakSet()
# Whether the markers watch (``on_start`` is ``watch``): only changed under ``_live_lock``.
_watching = True

# The marker's ``on_start`` while it has nothing to do: a builtin that takes any arguments and
# ignores them, so the SDK's call for every span of the app costs no Python frame.
_QUIET: Any = "".format


def call_started(key: int) -> None:
    """A featurecost call (key: an id unique while it runs) begins: the markers watch.

    Runs on every call, so the lock is only taken to wake resting markers. ``set.add`` is atomic;
    a marker put to rest concurrently is woken again by ``_rest_if_idle`` itself, which looks at
    ``LIVE`` once more after resting them (this call's key is in by then, or it saw
    ``_watching`` False and wakes them here).
    """
    LIVE.add(key)
    if not _watching:
        with _live_lock:
            _set_watching(True)


def call_ended(key: int) -> None:
    """The call ``key`` is over: with none left, and SERVER spans seen already, the markers rest."""
    LIVE.discard(key)
    if not LIVE and _server_spans_seen and _watching:
        with _live_lock:
            _rest_if_idle()


def _set_watching(watching: bool) -> None:
    global _watching
    _watching = watching
    for marker in _markers:
        marker.on_start = marker.watch if watching else _QUIET


def _rest_if_idle() -> None:
    """Under ``_live_lock``: rest the markers when no call runs and SERVER spans were seen."""
    if _watching and not LIVE and _server_spans_seen:
        _set_watching(False)
        if LIVE:  # a call started meanwhile and saw the markers watching: wake them again
            _set_watching(True)


class NestedSpanMarker(PassiveSpanProcessor):
    """Marks spans started inside a featurecost LLM call superseded (see the module docstring),
    and notes the first SERVER span (``server_spans_seen``).

    Every span of the app passes through the SDK's calls of ``on_start``, ``_on_ending`` and
    ``on_end``: the end hooks are a builtin that ignores its argument, and ``on_start`` is one
    too (``_QUIET``) while no featurecost call is in progress and the first SERVER span has been
    seen — an ordinary span then costs the marker no Python code at all.
    """

    _on_ending = on_end = staticmethod(id)  # type: ignore[assignment]

    def __init__(self) -> None:
        self.on_start: Any = self.watch
        with _live_lock:
            _markers.add(self)
            # the others rest (and nothing can need this one yet): join them
            if not _watching and _server_spans_seen and not LIVE:
                self.on_start = _QUIET
            _rest_if_idle()

    def watch(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        global _server_spans_seen
        if not _server_spans_seen and getattr(span, "kind", None) is SpanKind.SERVER:
            _server_spans_seen = True
            with _live_lock:
                _rest_if_idle()
        if not LIVE:
            return
        ctx = parent_context if parent_context is not None else otel_context.get_current()
        if ctx.get(IN_LLM_CALL):
            span.set_attribute(attrs.SUPERSEDED, True)
        started = ctx.get(STARTED_SPANS)
        if started is not None and isinstance(started, list):
            started.append(span)


def watch_nested_spans(tracer_provider: Any = None) -> bool:
    """Add the marking processor to ``tracer_provider`` (default: the global one) once.

    False when the provider takes no span processors (a no-op or proxy provider: no SDK yet);
    ``llm_span`` tries again with the global provider when a call starts.
    """
    try:
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        add = getattr(provider, "add_span_processor", None)
        if add is None:
            return False
        with _lock:
            if _is_watched(provider):
                return True
            try:
                _watched[id(provider)] = weakref.ref(provider)
            except TypeError:
                _watched[id(provider)] = provider
        add(NestedSpanMarker())
        return True
    except Exception:
        # Whatever provider another tool installed, instrumenting must never fail the app:
        # without the marker only nested-span de-duplication is lost (the collector still
        # reconciles by response id).
        log.warning("featurecost: could not add the nested-span marker to %r", tracer_provider, exc_info=True)
        return False


def _is_watched(provider: Any) -> bool:
    entry = _watched.get(id(provider))
    if entry is None:
        return False
    held = entry() if isinstance(entry, weakref.ref) else entry
    return held is provider
