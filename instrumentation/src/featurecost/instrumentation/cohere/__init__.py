"""Cohere SDK (``cohere``) instrumentation: v2 chat (plain and streamed) and embed.

Cohere reports two sets of counts: ``usage.tokens`` (what the model processed,
including the prompt template Cohere wraps around the messages) and
``usage.billed_units`` (what the invoice charges). We record the billed units and fall
back to the processed tokens only when a response has no billed units. ``cached_tokens``
(prompt tokens served from Cohere's cache) is recorded as the cache-read subset of the
input. Embeddings report their billed units in ``meta.billed_units``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from wrapt import ObjectProxy, wrap_function_wrapper

from featurecost.instrumentation import _transport
from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._lifecycle import (
    Facts,
    Kind,
    Method,
    Request,
    Target,
    open_call,
    open_call_async,
    passthrough,
    proxied,
    start_stream,
    unwrap_targets,
    wrap_targets,
)
from featurecost.instrumentation._nested import watch_nested_spans
from featurecost.instrumentation._spans import ResponseFacts, TokenUsage
from featurecost.instrumentation._streams import AsyncTracedStream, ResponseAccumulator, TracedStream
from featurecost.instrumentation.version import __version__

_instruments = ("cohere >= 5.9",)
PROVIDER = "cohere"
_MODULE = "cohere.v2.client"
_RAW_MODULE = "cohere.v2.raw_client"
_METHODS = ("chat", "chat_stream", "embed")


def _count(value: Any) -> int:
    # Cohere's schema types counts as floats (1234.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def usage_from_cohere(usage: Any) -> TokenUsage | None:
    """From a chat ``usage`` or an embed ``meta`` (same shape: billed_units, tokens, cached_tokens)."""
    if usage is None:
        return None
    billed = getattr(usage, "billed_units", None)
    counted = getattr(usage, "tokens", None)
    source = billed if billed is not None else counted
    if source is None:
        return None
    input_tokens = _count(getattr(source, "input_tokens", None))
    if not input_tokens:  # embed v4 bills images and text separately
        input_tokens = _count(getattr(source, "text_tokens", None)) + _count(getattr(source, "image_tokens", None))
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=_count(getattr(source, "output_tokens", None)),
        cache_read_tokens=min(_count(getattr(usage, "cached_tokens", None)), input_tokens),
    )


class _ChatAccumulator(ResponseAccumulator):
    """A chat response, whole or read from stream events (id first, usage in ``message-end``)."""

    def __init__(self) -> None:
        self.response_id: Any = None
        self.finish_reason: Any = None
        self.usage_seen: Any = None

    def on_response(self, response: Any) -> None:
        self.response_id = getattr(response, "id", None)
        self.finish_reason = getattr(response, "finish_reason", None)
        self.usage_seen = getattr(response, "usage", None)

    def on_item(self, item: Any) -> bool:
        kind = getattr(item, "type", None)
        if kind == "message-start":
            self.response_id = getattr(item, "id", None) or self.response_id
        elif kind == "message-end":
            delta = getattr(item, "delta", None)
            self.finish_reason = getattr(delta, "finish_reason", None)
            self.usage_seen = getattr(delta, "usage", None)
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_cohere(self.usage_seen)

    def response_facts(self) -> ResponseFacts:
        reasons = [str(self.finish_reason)] if self.finish_reason else None
        return ResponseFacts(response_id=self.response_id, finish_reasons=reasons)


def _chat_facts(response: Any) -> Facts:
    acc = _ChatAccumulator()
    acc.on_response(response)
    return acc.response_facts(), acc.usage()


def _embed_facts(response: Any) -> Facts:
    return ResponseFacts(response_id=getattr(response, "id", None)), usage_from_cohere(getattr(response, "meta", None))


def _server_address(instance: Any) -> str | None:
    wrapper = getattr(instance, "_client_wrapper", None)
    get_base_url = getattr(wrapper, "get_base_url", None)
    if get_base_url is None:
        return None
    return urlparse(str(get_base_url())).hostname


def _request(instance: Any, kwargs: Mapping[str, Any]) -> Request:
    model, max_tokens = kwargs.get("model"), kwargs.get("max_tokens")
    return Request(
        model=model if isinstance(model, str) else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        server_address=_server_address(instance),
    )


def _provider(instance: Any) -> str:
    return PROVIDER


# --- the raw clients: for clients made before instrument() ---
# A ``cohere.ClientV2`` binds ``chat``/``chat_stream`` on the instance when it is built
# (cohere.client's ``validate_args``), so one built before ``instrument()`` never reaches the
# wrapped ``V2Client`` methods. Every client calls its raw client's method at call time, though:
# wrapped there too, such a call is traced; the raw wrapper passes through when the client
# method's wrapper already traces the call.


def _data(response_facts: Callable[[Any], Facts]) -> Callable[[Any], Facts]:
    def from_http_response(response: Any) -> Facts:
        return response_facts(getattr(response, "data", None))

    return from_http_response


class _StreamResponse(ObjectProxy[Any]):  # type: ignore[misc]
    """The raw stream's ``HttpResponse`` with its ``data`` (the event iterator) traced."""

    def __init__(self, response: Any, data: Any) -> None:
        super().__init__(response)
        self._self_data = data

    @property
    def data(self) -> Any:
        return self._self_data


class _RawStreamContext:
    """``RawV2Client.chat_stream(...)``: a context manager whose ``HttpResponse.data`` streams events."""

    def __init__(
        self, tracer: trace.Tracer, chat: Method, wrapped: Any, instance: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        self._chat = chat
        self._start = (tracer, wrapped, instance, args, kwargs)
        self._context: Any = None
        self._stream: Any = None


class _TracedStreamContext(_RawStreamContext):
    def __enter__(self) -> Any:
        tracer, wrapped, instance, args, kwargs = self._start
        call = start_stream(tracer, open_call(self._chat, instance, kwargs))
        if call is None:  # our code failed: the stream goes on untraced
            self._context = wrapped(*args, **kwargs)
            return self._context.__enter__()
        with call.requesting():
            self._context = wrapped(*args, **kwargs)
            response = self._context.__enter__()
        self._stream = TracedStream(response.data, call, _ChatAccumulator(), in_call=True)
        return _StreamResponse(response, self._stream)

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._context.__exit__(*exc_info)
        finally:
            if self._stream is not None:
                self._stream.close()  # ends the span if the events were not read to the end


class _AsyncTracedStreamContext(_RawStreamContext):
    async def __aenter__(self) -> Any:
        tracer, wrapped, instance, args, kwargs = self._start
        call = start_stream(tracer, await open_call_async(self._chat, instance, kwargs))
        if call is None:  # our code failed: the stream goes on untraced
            self._context = wrapped(*args, **kwargs)
            return await self._context.__aenter__()
        with call.requesting():
            self._context = wrapped(*args, **kwargs)
            response = await self._context.__aenter__()
        self._stream = AsyncTracedStream(response.data, call, _ChatAccumulator(), in_call=True)
        return _StreamResponse(response, self._stream)

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._context.__aexit__(*exc_info)
        finally:
            if self._stream is not None:
                await self._stream.aclose()


def _raw_stream_wrapper(tracer: trace.Tracer, chat: Method, asynchronous: bool) -> Any:
    context: type[_RawStreamContext] = _AsyncTracedStreamContext if asynchronous else _TracedStreamContext

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        return context(tracer, chat, wrapped, instance, args, kwargs)

    return wrapper


def _chat() -> Method:
    return Method("chat", _provider, _request)


def _targets() -> tuple[Target, ...]:
    """What we wrap through the lifecycle, for ``instrument`` and ``uninstrument`` alike (built when called).

    ``chat_stream`` is a (sync or async) generator function: calling it sends nothing; the
    request goes out on the first step, which the proxy runs in the call's context.
    """
    chat, embed = _chat(), Method("embeddings", _provider, _request)
    found = [
        Target(_MODULE, "V2Client", "chat", chat, "call", _chat_facts),
        Target(_MODULE, "V2Client", "embed", embed, "call", _embed_facts),
        Target(_MODULE, "AsyncV2Client", "chat", chat, "async call", _chat_facts),
        Target(_MODULE, "AsyncV2Client", "embed", embed, "async call", _embed_facts),
        Target(_MODULE, "V2Client", "chat_stream", chat, "stream", proxied(_ChatAccumulator)),
        Target(_MODULE, "AsyncV2Client", "chat_stream", chat, "stream", proxied(_ChatAccumulator, AsyncTracedStream)),
    ]
    for owner, call in (("RawV2Client", "call"), ("AsyncRawV2Client", "async call")):
        kind: Kind = "call" if call == "call" else "async call"
        found.append(Target(_RAW_MODULE, owner, "chat", chat, kind, _data(_chat_facts)))
        found.append(Target(_RAW_MODULE, owner, "embed", embed, kind, _data(_embed_facts)))
    return tuple(found)


_RAW_STREAMS = (("RawV2Client", False), ("AsyncRawV2Client", True))


class CohereInstrumentor(SafeInstrumentor):
    """Instruments ``cohere`` v2 chat, chat_stream and embed (``ClientV2``/``AsyncClientV2``, ``client.v2``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        _transport.install("cohere")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        wrap_targets(tracer, _targets())
        chat = _chat()
        for owner, asynchronous in _RAW_STREAMS:
            wrap_function_wrapper(_RAW_MODULE, f"{owner}.chat_stream", _raw_stream_wrapper(tracer, chat, asynchronous))

    def _uninstrument(self, **kwargs: Any) -> None:
        _transport.uninstall("cohere")
        import cohere.v2.raw_client as raw

        unwrap_targets(_targets())
        for owner, _ in _RAW_STREAMS:
            unwrap(getattr(raw, owner), "chat_stream")
