"""Wrappers for SDK methods that make one billable LLM call, shared by the instrumentors.

An ``Endpoint`` says what one SDK method is (operation, how to read its request,
response and stream); ``sync_wrapper`` / ``async_wrapper`` turn it into a ``wrapt``
wrapper that opens the call's one span, hands streams to the stream proxies, and
passes straight through when instrumentation is suppressed or another featurecost
span is already billing this call (an SDK helper calling another wrapped method).

The Stainless-generated SDKs (openai, anthropic, …) share the result types this
handles: parsed models, ``Stream`` / ``AsyncStream``, and the raw responses of
``.with_raw_response`` (parsed value cached on them) and ``.with_streaming_response``
(body left unread), told apart by the ``X-Stainless-Raw-Response`` header they set.

Other SDKs (google-genai, Mistral, Cohere) describe a method with an ``SDKCall`` and
get the same spans from ``call_wrapper`` / ``stream_wrapper`` and their async twins;
every stream, whichever SDK made it, ends through ``_streams.py``.

Instrumentation never breaks a call: a failure of ours is logged and the call goes on
(strict mode ``reject`` is the one deliberate exception).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, Tracer
from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._lifecycle import (
    NO_FACTS,
    Check,
    CheckAsync,
    Facts,
    Method,
    Request,
    extract,
    extract_async,
    finish,
    hand_over,
    hand_over_async,
    open_call,
    open_call_async,
    passthrough,
    start_span,
    start_stream,
)
from featurecost.instrumentation._settle import settle
from featurecost.instrumentation._spans import (
    LLMCall,
    TokenUsage,
    begin_llm_span,
    clean_attributes,
    end_llm_span,
    record_usage,
    start_llm_call,
)
from featurecost.instrumentation._streams import AsyncTracedStream, StreamAccumulator, TracedStream
from featurecost.instrumentation.attribution import UnattributedCallError
from featurecost.instrumentation.guard import (
    Ticket,
    check_call,
    check_call_async,
    mark_call_span,
)

log = logging.getLogger(__name__)

__all__ = ["Endpoint", "Facts", "async_wrapper", "passthrough", "provider_by_client_class", "sync_wrapper"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of a Stainless SDK (openai, anthropic): its operation, whom it bills
    (``provider_of(client)``), its request and response extractors, and for streams a fresh
    accumulator per stream — its argument says whether ``prepare_stream`` changed the request
    to get usage the caller did not ask for."""

    operation: str
    provider_of: Callable[[Any], str]
    request_attributes: Callable[[Mapping[str, Any]], dict[str, Any]]
    response_facts: Callable[[Any], Facts]
    new_accumulator: Callable[[bool], StreamAccumulator] | None = None
    prepare_stream: Callable[[Any, dict[str, Any]], bool] | None = None  # (client, kwargs)

    def method(self, check: Check = check_call, check_async: CheckAsync = check_call_async) -> Method:
        """This endpoint as the lifecycle's ``Method``."""
        provider_of, request_attributes = self.provider_of, self.request_attributes

        def provider(instance: Any) -> str:
            return provider_of(getattr(instance, "_client", None))

        def request(instance: Any, kwargs: dict[str, Any]) -> Request:
            found = clean_attributes(request_attributes(kwargs))
            if kwargs.get("stream") is True:
                found[attrs.REQUEST_STREAM] = True
            model = kwargs.get("model")
            return Request(model if isinstance(model, str) else None, found, getattr(instance, "_client", None))

        return Method(self.operation, provider, request, check, check_async)


# Set by the SDKs' ``.with_raw_response`` ("raw", or "true" in openai's legacy wrapper)
# and ``.with_streaming_response`` ("stream") wrappers on the request they make.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def _raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    headers = kwargs.get("extra_headers")
    if not headers or not isinstance(headers, Mapping):
        return None
    mode = headers.get(_RAW_RESPONSE_HEADER)
    return mode if isinstance(mode, str) else None


def _parse_raw(result: Any) -> Any:
    """The parsed value of a ``.with_raw_response`` result (maybe awaitable), or None.

    Parsing is cached on the response, so the caller's own ``.parse()`` returns this
    very object without a second parse.
    """
    try:
        return result.parse()
    except Exception:  # the caller will see the same error from its own parse()
        log.debug("featurecost: could not parse a raw response", exc_info=True)
        return None


def _replace_parsed(result: Any, parsed: Any) -> None:
    try:
        result._parsed_by_type[result._cast_to] = parsed
    except Exception:
        log.debug("featurecost: could not hand a traced stream to a raw response", exc_info=True)


def _response_facts(endpoint: Endpoint, result: Any, mode: str | None) -> Facts:
    """The response extractor of a plain call, whatever wrapper the caller used."""
    if mode is None:
        return endpoint.response_facts(result)
    if mode == "stream":
        # ``.with_streaming_response``: the body is the caller's to read; we never read it.
        return NO_FACTS
    parsed = _parse_raw(result)
    return NO_FACTS if parsed is None else endpoint.response_facts(parsed)


async def _response_facts_async(endpoint: Endpoint, result: Any, mode: str | None) -> Facts:
    if mode is None or mode == "stream":
        return _response_facts(endpoint, result, mode)
    parsed = _parse_raw(result)
    if inspect.isawaitable(parsed):
        try:
            parsed = await parsed
        except Exception:
            log.debug("featurecost: could not parse a raw response", exc_info=True)
            parsed = None
    return NO_FACTS if parsed is None else endpoint.response_facts(parsed)


def _proxy(stream: Any, call: LLMCall, acc: StreamAccumulator, asynchronous: bool) -> Any:
    # The method called decides, not the object: another instrumentation's stream wrapper
    # (openai-v2's) has both __next__ and __anext__, and a sync caller iterates it with next().
    if asynchronous and hasattr(stream, "__anext__"):
        return AsyncTracedStream(stream, call, acc)
    if hasattr(stream, "__next__"):
        return TracedStream(stream, call, acc)
    if hasattr(stream, "__anext__"):
        return AsyncTracedStream(stream, call, acc)
    call.finish(None, complete=True)
    return stream


def trace_stream(
    result: Any, call: LLMCall, acc: StreamAccumulator, mode: str | None = None, *, asynchronous: bool = False
) -> Any:
    if mode is None:
        return _proxy(result, call, acc, asynchronous)
    if mode == "stream":
        # ``.with_streaming_response``: the caller reads the raw body; usage is not ours to see.
        call.finish(None, complete=True)
        return result
    stream = _parse_raw(result)
    if stream is None or inspect.isawaitable(stream):
        call.finish(None, complete=True)
        return result
    _replace_parsed(result, _proxy(stream, call, acc, asynchronous))
    return result


async def trace_stream_async(result: Any, call: LLMCall, acc: StreamAccumulator, mode: str | None) -> Any:
    if mode is None or mode == "stream":
        return trace_stream(result, call, acc, mode, asynchronous=True)
    stream = _parse_raw(result)
    if inspect.isawaitable(stream):
        stream = await stream
    if stream is None:
        call.finish(None, complete=True)
        return result
    _replace_parsed(result, _proxy(stream, call, acc, asynchronous=True))
    return result


class _Unread:
    """The accumulator of a stream whose extractor could not even be made: every item passes,
    the usage is missing."""

    def on_item(self, item: Any) -> bool:
        return True

    def usage(self) -> TokenUsage | None:
        return None

    def response_attributes(self) -> dict[str, Any]:
        return {}

    def saw_end(self) -> bool:
        return False


def stream_accumulator(endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> StreamAccumulator:
    """The stream's accumulator, after asking for the usage the caller did not (``prepare_stream``)."""
    try:
        injected = False
        if endpoint.prepare_stream is not None:
            injected = endpoint.prepare_stream(getattr(instance, "_client", None), kwargs)
        assert endpoint.new_accumulator is not None
        return endpoint.new_accumulator(injected)
    except Exception:
        log.debug("featurecost: could not prepare a stream's extractor", exc_info=True)
        return _Unread()


def sync_wrapper(tracer: Tracer, endpoint: Endpoint) -> Callable[..., Any]:
    """The lifecycle's wrapper for one Stainless method: plain calls, ``stream=True`` and the raw wrappers."""
    method = endpoint.method()
    streams = endpoint.new_accumulator is not None

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        opened = open_call(method, instance, kwargs)
        if streams and kwargs.get("stream") is True:
            call = start_stream(tracer, opened)
            if call is None:
                return wrapped(*args, **kwargs)
            acc = stream_accumulator(endpoint, instance, kwargs)
            with call.requesting():
                result = wrapped(*args, **kwargs)
            mode = _raw_mode(kwargs)
            return hand_over(lambda r, c: trace_stream(r, c, acc, mode), result, call)
        started = start_span(tracer, opened)
        if started is None or opened is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            end_llm_span(started[0], started[1], exc)
            raise
        finish(started, opened, extract(_response_facts, endpoint, result, _raw_mode(kwargs)))
        return result

    return wrapper


def async_wrapper(tracer: Tracer, endpoint: Endpoint) -> Callable[..., Any]:
    method = endpoint.method()
    streams = endpoint.new_accumulator is not None

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        opened = await open_call_async(method, instance, kwargs)
        if streams and kwargs.get("stream") is True:
            call = start_stream(tracer, opened)
            if call is None:
                return await wrapped(*args, **kwargs)
            acc = stream_accumulator(endpoint, instance, kwargs)
            with call.requesting():
                result = await wrapped(*args, **kwargs)
            mode = _raw_mode(kwargs)
            return await hand_over_async(lambda r, c: trace_stream_async(r, c, acc, mode), result, call)
        started = start_span(tracer, opened)
        if started is None or opened is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            end_llm_span(started[0], started[1], exc)
            raise
        finish(started, opened, await extract_async(_response_facts_async, endpoint, result, _raw_mode(kwargs)))
        return result

    return wrapper


def provider_by_client_class(names: Mapping[str, str], default: str) -> Callable[[Any], str]:
    """``provider_of`` that maps a client's class (or a base class) name to a provider name, cached per class."""
    cache: dict[type, str] = {}

    def provider_of(client: Any) -> str:
        cls = type(client)
        found = cache.get(cls)
        if found is None:
            found = next((names[c.__name__] for c in cls.__mro__ if c.__name__ in names), default)
            cache[cls] = found
        return found

    return provider_of


# --- SDKs without the Stainless shapes (google-genai, Mistral, Cohere) ---


@dataclass(frozen=True, slots=True)
class SDKCall:
    """What one method of such an SDK is: its operation, whom it bills, and how to read a
    request — ``request(instance, kwargs)`` gives the request model and span attributes.
    Read after the budget guard's check, so a degraded request is described as sent."""

    operation: str
    provider_of: Callable[[Any], str]
    request: Callable[[Any, Mapping[str, Any]], tuple[str | None, dict[str, AttributeValue]]]


def _open(sdk: SDKCall, instance: Any, kwargs: dict[str, Any]) -> tuple[Ticket | None, dict[str, Any] | None]:
    """The budget guard's check, then the span's arguments (None when our extractor failed)."""
    provider = _provider(sdk, instance)
    ticket = check_call(kwargs, provider)  # before the span: a denied call is never made
    return ticket, _span_args(sdk, instance, kwargs, provider)


async def _open_async(
    sdk: SDKCall, instance: Any, kwargs: dict[str, Any]
) -> tuple[Ticket | None, dict[str, Any] | None]:
    provider = _provider(sdk, instance)
    ticket = await check_call_async(kwargs, provider)
    return ticket, _span_args(sdk, instance, kwargs, provider)


def _provider(sdk: SDKCall, instance: Any) -> str:
    try:
        return sdk.provider_of(instance)
    except Exception:
        log.debug("featurecost: could not tell the provider", exc_info=True)
        return ""


def _span_args(sdk: SDKCall, instance: Any, kwargs: dict[str, Any], provider: str) -> dict[str, Any] | None:
    try:
        model, attributes = sdk.request(instance, kwargs)
    except Exception:  # the call goes out untraced rather than not at all
        log.debug("featurecost: could not read a request", exc_info=True)
        return None
    return {"operation": sdk.operation, "provider": provider, "request_model": model, "attributes": attributes}


def _record_quietly(record: Callable[[Span, Any], None], span: Span, response: Any) -> None:
    try:
        record(span, response)
    except Exception:  # never let instrumentation break the call; the usage is missing, not guessed
        log.debug("featurecost: could not read a response", exc_info=True)
        record_usage(span, None)


def begin_call_span(
    tracer: Tracer, ticket: Ticket | None, span_args: dict[str, Any] | None
) -> tuple[Span, object] | None:
    """Start a plain call's span marked with the guard's decision; None (the call goes on
    untraced) when there are no span arguments or our code fails."""
    if span_args is None:
        return None
    try:
        started = begin_llm_span(tracer, **span_args)
        mark_call_span(started[0], ticket)
    except UnattributedCallError:
        raise
    except Exception:
        log.debug("featurecost: could not start a span", exc_info=True)
        return None
    return started


def finish_call_span(
    started: tuple[Span, object],
    ticket: Ticket | None,
    provider: str,
    record: Callable[[Span, Any], None],
    response: Any,
) -> None:
    """Extract (quietly), settle the guard with the recorded usage, stop."""
    span, token = started
    _record_quietly(record, span, response)
    end_llm_span(span, token)
    settle(ticket, provider, span)


def call_wrapper(tracer: Tracer, sdk: SDKCall, record: Callable[[Span, Any], None]) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a method whose call is over when it returns."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        ticket, span_args = _open(sdk, instance, kwargs)
        started = begin_call_span(tracer, ticket, span_args)
        if started is None:
            return wrapped(*args, **kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            end_llm_span(started[0], started[1], exc)
            raise
        finish_call_span(started, ticket, span_args["provider"] if span_args else "", record, response)
        return response

    return wrapper


def async_call_wrapper(tracer: Tracer, sdk: SDKCall, record: Callable[[Span, Any], None]) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        ticket, span_args = await _open_async(sdk, instance, kwargs)
        started = begin_call_span(tracer, ticket, span_args)
        if started is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            end_llm_span(started[0], started[1], exc)
            raise
        finish_call_span(started, ticket, span_args["provider"] if span_args else "", record, response)
        return response

    return wrapper


def start_call(tracer: Tracer, sdk: SDKCall, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
    """The span of a streamed call (the budget guard checked first), for SDK-specific stream
    shapes; None (the stream goes on untraced) when our code fails."""
    return begin_call(tracer, *_open(sdk, instance, kwargs))


async def start_call_async(tracer: Tracer, sdk: SDKCall, instance: Any, kwargs: dict[str, Any]) -> LLMCall | None:
    return begin_call(tracer, *await _open_async(sdk, instance, kwargs))


def begin_call(tracer: Tracer, ticket: Ticket | None, span_args: dict[str, Any] | None) -> LLMCall | None:
    """A streamed call's ``LLMCall``, marked with the guard's decision and settled when its
    stream ends; None when there are no span arguments or our code fails."""
    if span_args is None:
        return None
    try:
        call = start_llm_call(tracer, **span_args)
        mark_call_span(call.span, ticket)
    except UnattributedCallError:
        raise
    except Exception:
        log.debug("featurecost: could not start a span", exc_info=True)
        return None
    if ticket is not None:
        call.settle_with = (ticket, span_args["provider"])
    return call


def stream_wrapper(
    tracer: Tracer,
    sdk: SDKCall,
    new_accumulator: Callable[[], StreamAccumulator],
    proxy: type[TracedStream] | type[AsyncTracedStream] = TracedStream,
) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a method that returns a stream (``proxy`` is the async one for
    a method returning an async generator). These SDKs' streams send the request or read
    the response while iterated, so each step runs in the call's context (``in_call``)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        call = start_call(tracer, sdk, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        with call.requesting():
            events = wrapped(*args, **kwargs)
        return proxy(events, call, new_accumulator(), in_call=True)

    return wrapper


def async_stream_wrapper(
    tracer: Tracer, sdk: SDKCall, new_accumulator: Callable[[], StreamAccumulator]
) -> Callable[..., Any]:
    """For a coroutine method that sends the request and returns an async stream."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        call = await start_call_async(tracer, sdk, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        with call.requesting():
            events = await wrapped(*args, **kwargs)
        return AsyncTracedStream(events, call, new_accumulator(), in_call=True)

    return wrapper
