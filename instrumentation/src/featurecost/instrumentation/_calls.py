"""The Stainless-generated SDKs (openai, anthropic) on the one call lifecycle (``_lifecycle.py``).

An ``Endpoint`` says what one of their methods is (operation, whom it bills, its request,
response and stream extractors); ``sync_wrapper`` / ``async_wrapper`` run it through the
lifecycle's rules. What is particular to these SDKs lives here: the result types they share —
parsed models, ``Stream`` / ``AsyncStream``, and the raw responses of ``.with_raw_response``
(parsed value cached on them) and ``.with_streaming_response`` (body left unread), told apart
by the ``X-Stainless-Raw-Response`` header they set — and asking a stream for the usage the
caller did not (``prepare_stream``), hidden from the caller again by the accumulator.

Instrumentation never breaks a call: a failure of ours is logged and the call goes on
(strict mode ``reject`` and the budget guard's deny are the deliberate exceptions).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Tracer

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
from featurecost.instrumentation._spans import (
    LLMCall,
    ResponseFacts,
    TokenUsage,
    end_llm_span,
)
from featurecost.instrumentation._streams import AsyncTracedStream, StreamAccumulator, TracedStream
from featurecost.instrumentation.guard import (
    check_call,
    check_call_async,
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
    request_facts: Callable[[Mapping[str, Any]], Request]
    response_facts: Callable[[Any], Facts]
    new_accumulator: Callable[[bool], StreamAccumulator] | None = None
    prepare_stream: Callable[[Any, dict[str, Any]], bool] | None = None  # (client, kwargs)

    def method(self, check: Check = check_call, check_async: CheckAsync = check_call_async) -> Method:
        """This endpoint as the lifecycle's ``Method``."""
        provider_of, request_facts = self.provider_of, self.request_facts

        def provider(instance: Any) -> str:
            return provider_of(getattr(instance, "_client", None))

        def request(instance: Any, kwargs: dict[str, Any]) -> Request:
            found = request_facts(kwargs)
            model = kwargs.get("model")
            found.model = model if isinstance(model, str) else None
            found.stream = kwargs.get("stream") is True
            found.client = getattr(instance, "_client", None)
            return found

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

    def response_facts(self) -> ResponseFacts:
        return ResponseFacts()

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
