"""One call lifecycle for every SDK: the rule set every featurecost wrapper follows.

Each SDK module describes its methods declaratively — a ``Method`` (operation, whom it bills,
how to read a request) plus extractors that return facts — and the wrappers here run them,
with one rule set for plain calls and streams, sync and async:

1. **pass through** when instrumentation is suppressed or another featurecost span already
   bills this call (an SDK helper calling another wrapped method);
2. **guard check**: the budget guard, when one is configured, is asked before anything else
   (a denied call raises ``BudgetExceeded`` and is never sent: the one deliberate raise,
   with strict mode's ``UnattributedCallError``);
3. **start**: the request facts are read and the call's one span starts; if our code fails
   here the call goes out untraced rather than not at all;
4. **call** the SDK; its exceptions end the span (``error.type``) and propagate unchanged;
5. **extract** the response facts (a whole response now, a stream as it is read): a failing
   extractor records the usage as missing — never guessed — and the caller gets the result;
6. **settle** the guard's estimate with the reported usage;
7. **stop** the span (streams: however the stream ends, see ``_streams.py``).

Only ``_spans.py`` turns facts into span attribute names. Our code never raises into the
user's call or stream.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.trace import Span, Tracer
from wrapt import wrap_function_wrapper

from featurecost.instrumentation._settle import settle_usage
from featurecost.instrumentation._spans import (
    LLMCall,
    Request,
    ResponseFacts,
    TokenUsage,
    begin_llm_span,
    end_attributes,
    end_llm_span,
    in_llm_call,
    request_attributes,
    start_llm_call,
)
from featurecost.instrumentation._streams import AsyncTracedStream, ResponseAccumulator, StreamAccumulator, TracedStream
from featurecost.instrumentation.attribution import UnattributedCallError
from featurecost.instrumentation.guard import Ticket, check_call, check_call_async, mark_call_span

log = logging.getLogger(__name__)

__all__ = [
    "NO_FACTS",
    "Facts",
    "Kind",
    "Method",
    "Request",
    "ResponseFacts",
    "Target",
    "accumulated",
    "async_call_wrapper",
    "async_stream_wrapper",
    "call_wrapper",
    "open_call",
    "open_call_async",
    "passthrough",
    "proxied",
    "run_call",
    "run_stream",
    "start_span",
    "start_stream",
    "stream_wrapper",
    "unwrap_targets",
    "wrap_targets",
]

# What an extractor returns about a response: its facts and the usage the provider reported
# (None: not reported, recorded as missing).
Facts = tuple[ResponseFacts | None, TokenUsage | None]
NO_FACTS: Facts = (None, None)


Check = Callable[[dict[str, Any], str], Ticket | None]
CheckAsync = Callable[[dict[str, Any], str], Awaitable[Ticket | None]]


@dataclass(frozen=True, slots=True)
class Method:
    """One SDK method that makes one billable call: its operation, whom it bills
    (``provider_of(instance)``) and how to read its request (``request(instance, kwargs)``).
    ``check`` asks the budget guard (an SDK whose request is not in the common shape
    passes a view of it); the request is read after the check, so a degraded request is
    described as sent."""

    operation: str
    provider_of: Callable[[Any], str]
    request: Callable[[Any, dict[str, Any]], Request]
    check: Check = check_call
    check_async: CheckAsync = check_call_async


class Opened:
    """A call past the guard, its request read: what starting its span needs."""

    __slots__ = ("method", "provider", "request", "ticket")

    def __init__(self, method: Method, provider: str, request: Request, ticket: Ticket | None) -> None:
        self.method = method
        self.provider = provider
        self.request = request
        self.ticket = ticket


def passthrough() -> bool:
    """Rule 1: suppressed, or inside a featurecost LLM call already (it bills this one)."""
    return in_llm_call() or not is_instrumentation_enabled()


def _provider(method: Method, instance: Any) -> str:
    try:
        return method.provider_of(instance)
    except Exception:
        log.debug("featurecost: could not tell the provider", exc_info=True)
        return ""


def _read(method: Method, instance: Any, kwargs: dict[str, Any], provider: str, ticket: Ticket | None) -> Opened | None:
    try:
        return Opened(method, provider, method.request(instance, kwargs), ticket)
    except Exception:  # the call goes out untraced rather than not at all
        log.debug("featurecost: could not read a request", exc_info=True)
        return None


def open_call(method: Method, instance: Any, kwargs: dict[str, Any]) -> Opened | None:
    """Rules 2 and 3a: the guard's check (may raise ``BudgetExceeded``), then the request
    facts; None when our request extractor failed."""
    provider = _provider(method, instance)
    ticket = method.check(kwargs, provider)
    return _read(method, instance, kwargs, provider, ticket)


async def open_call_async(method: Method, instance: Any, kwargs: dict[str, Any]) -> Opened | None:
    provider = _provider(method, instance)
    ticket = await method.check_async(kwargs, provider)
    return _read(method, instance, kwargs, provider, ticket)


def start_span(tracer: Tracer, opened: Opened | None) -> tuple[Span, object] | None:
    """Rule 3b for a call that is over when the SDK method returns: its span, current."""
    if opened is None:
        return None
    try:
        request = opened.request
        started = begin_llm_span(
            tracer,
            operation=opened.method.operation,
            provider=opened.provider,
            request_model=request.model,
            client=request.client,
            attributes=request_attributes(request),
        )
        mark_call_span(started[0], opened.ticket)
    except UnattributedCallError:
        raise
    except Exception:
        log.debug("featurecost: could not start a span", exc_info=True)
        return None
    return started


def start_stream(tracer: Tracer, opened: Opened | None) -> LLMCall | None:
    """Rule 3b for a streamed call: an ``LLMCall`` whose span outlives the SDK method, settled
    when its stream ends."""
    if opened is None:
        return None
    try:
        request = opened.request
        call = start_llm_call(
            tracer,
            operation=opened.method.operation,
            provider=opened.provider,
            request_model=request.model,
            client=request.client,
            attributes=request_attributes(request),
        )
        mark_call_span(call.span, opened.ticket)
    except UnattributedCallError:
        raise
    except Exception:
        log.debug("featurecost: could not start a span", exc_info=True)
        return None
    if opened.ticket is not None:
        call.settle_with = (opened.ticket, opened.provider)
    return call


def finish(started: tuple[Span, object], opened: Opened, facts: Facts | None) -> None:
    """Rules 5-7 once the facts are extracted (None: the extractor failed)."""
    span, token = started
    response, usage = facts if facts is not None else NO_FACTS
    try:
        if span.is_recording():
            span.set_attributes(end_attributes(response, usage))
    except Exception:
        log.debug("featurecost: could not record a response", exc_info=True)
    end_llm_span(span, token)
    settle_usage(opened.ticket, opened.provider, usage)


def extract(extractor: Callable[..., Facts], *args: Any) -> Facts | None:
    """Rule 5: ``extractor(*args)``, or None when it fails."""
    try:
        return extractor(*args)
    except Exception:  # never let instrumentation break the call; the usage is missing, not guessed
        log.debug("featurecost: could not read a response", exc_info=True)
        return None


async def extract_async(extractor: Callable[..., Any], *args: Any) -> Facts | None:
    """``extract`` for extractors that may need to await (a raw response's parse)."""
    try:
        facts = extractor(*args)
        if inspect.isawaitable(facts):
            facts = await facts
        return facts  # type: ignore[no-any-return]
    except Exception:
        log.debug("featurecost: could not read a response", exc_info=True)
        return None


def hand_over(trace_result: Callable[[Any, LLMCall], Any], result: Any, call: LLMCall) -> Any:
    """The caller's stream, traced by ``trace_result``; if that fails, the stream untraced and
    the call ended with its usage missing."""
    try:
        return trace_result(result, call)
    except Exception:
        log.debug("featurecost: could not trace a stream", exc_info=True)
        call.finish(None, complete=False)
        return result


async def hand_over_async(trace_result: Callable[[Any, LLMCall], Any], result: Any, call: LLMCall) -> Any:
    try:
        traced = trace_result(result, call)
        if inspect.isawaitable(traced):
            traced = await traced
        return traced
    except Exception:
        log.debug("featurecost: could not trace a stream", exc_info=True)
        call.finish(None, complete=False)
        return result


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def run_call(
    tracer: Tracer,
    method: Method,
    response: Callable[[Any], Facts],
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    request: dict[str, Any],
) -> Any:
    """Rules 2-7 for one call (the caller checked rule 1): ``request`` is what the guard and
    the request extractor read — the SDK method's ``kwargs`` for most SDKs."""
    opened = open_call(method, instance, request)
    started = start_span(tracer, opened)
    if started is None or opened is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        end_llm_span(started[0], started[1], exc)
        raise
    finish(started, opened, extract(response, result))
    return result


def run_stream(
    tracer: Tracer,
    method: Method,
    trace_result: Callable[[Any, LLMCall], Any],
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    request: dict[str, Any],
) -> Any:
    """``run_call`` for a method that returns a stream: the span ends when the stream does."""
    call = start_stream(tracer, open_call(method, instance, request))
    if call is None:
        return wrapped(*args, **kwargs)
    with call.requesting():
        result = wrapped(*args, **kwargs)
    return hand_over(trace_result, result, call)


def call_wrapper(tracer: Tracer, method: Method, response: Callable[[Any], Facts]) -> Wrapper:
    """A ``wrapt`` wrapper for a method whose call is over when it returns."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        return run_call(tracer, method, response, wrapped, instance, args, kwargs, kwargs)

    return wrapper


def async_call_wrapper(tracer: Tracer, method: Method, response: Callable[[Any], Any]) -> Wrapper:
    """The coroutine twin of ``call_wrapper`` (``response`` may return an awaitable)."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        opened = await open_call_async(method, instance, kwargs)
        started = start_span(tracer, opened)
        if started is None or opened is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            end_llm_span(started[0], started[1], exc)
            raise
        finish(started, opened, await extract_async(response, result))
        return result

    return wrapper


def stream_wrapper(tracer: Tracer, method: Method, trace_result: Callable[[Any, LLMCall], Any]) -> Wrapper:
    """A ``wrapt`` wrapper for a method that returns a stream; ``trace_result(result, call)``
    gives the caller the result with its stream proxied (``_streams.py``)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        return run_stream(tracer, method, trace_result, wrapped, instance, args, kwargs, kwargs)

    return wrapper


def async_stream_wrapper(tracer: Tracer, method: Method, trace_result: Callable[[Any, LLMCall], Any]) -> Wrapper:
    """For a coroutine method that sends the request and returns a stream (``trace_result`` may
    return an awaitable)."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        call = start_stream(tracer, await open_call_async(method, instance, kwargs))
        if call is None:
            return await wrapped(*args, **kwargs)
        with call.requesting():
            result = await wrapped(*args, **kwargs)
        return await hand_over_async(trace_result, result, call)

    return wrapper


def proxied(
    new_accumulator: Callable[[], StreamAccumulator],
    proxy: type[TracedStream] | type[AsyncTracedStream] = TracedStream,
) -> Callable[[Any, LLMCall], Any]:
    """``trace_result`` for an SDK whose method returns the stream itself. These SDKs' streams
    send the request or read the response while iterated, so each step runs in the call's
    context (``in_call``)."""

    def trace_result(result: Any, call: LLMCall) -> Any:
        return proxy(result, call, new_accumulator(), in_call=True)

    return trace_result


def accumulated(new_accumulator: Callable[[], ResponseAccumulator]) -> Callable[[Any], Facts]:
    """The response extractor of an SDK whose whole response reads like one stream item."""

    def response(result: Any) -> Facts:
        acc = new_accumulator()
        acc.on_item(result)
        return acc.response_facts(), acc.usage()

    return response


Kind = Literal["call", "async call", "stream", "async stream"]
_WRAPPERS: dict[str, Callable[[Tracer, Method, Any], Wrapper]] = {
    "call": call_wrapper,
    "async call": async_call_wrapper,
    "stream": stream_wrapper,
    "async stream": async_stream_wrapper,
}


@dataclass(frozen=True, slots=True)
class Target:
    """One SDK method to wrap: where it is (``module``, ``owner`` class, ``name``), what it is
    (``method``), its ``kind`` and its extractor — ``response(result) -> Facts`` for calls,
    ``trace_result(result, call)`` for streams (see ``proxied``). An SDK module lists its
    targets once; ``wrap_targets`` and ``unwrap_targets`` both read that list."""

    module: str
    owner: str
    name: str
    method: Method
    kind: Kind
    extractor: Callable[..., Any]


def wrap_targets(tracer: Tracer, targets: Iterable[Target]) -> None:
    for target in targets:
        wrapper = _WRAPPERS[target.kind](tracer, target.method, target.extractor)
        wrap_function_wrapper(target.module, f"{target.owner}.{target.name}", wrapper)


def unwrap_targets(targets: Iterable[Target]) -> None:
    for target in targets:
        owner = getattr(importlib.import_module(target.module), target.owner, None)
        if owner is not None:
            unwrap(owner, target.name)
