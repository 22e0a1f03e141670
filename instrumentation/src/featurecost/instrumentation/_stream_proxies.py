"""Spans for LLM calls whose response arrives in pieces (streams).

A streamed call's span cannot be a ``with`` block around the SDK call: the call returns
at once and the tokens (and the usage, usually in the last event) arrive while the
application iterates. So the span is started when the call is made — copying the
attribution in effect *then* — and ended exactly once by whichever exit comes first:
the stream runs out, raises, is closed, is left early (``break`` out of a ``with``), or
is garbage-collected unclosed. Every exit but the first leaves ``featurecost.usage.partial``
set, so the collector knows the counts are what had arrived, not what was billed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._spans import _IN_LLM_CALL, TokenUsage, record_usage
from featurecost.instrumentation.attribution import current_attribution


def start_llm_span(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    server_address: str | None = None,
) -> Span:
    """Start (without activating) the one billable span of a streamed call."""
    attributes: dict[str, AttributeValue] = {
        attrs.GEN_AI_OPERATION_NAME: operation,
        attrs.GEN_AI_PROVIDER_NAME: provider,
    }
    if request_model:
        attributes[attrs.GEN_AI_REQUEST_MODEL] = request_model
    if server_address:
        attributes[attrs.SERVER_ADDRESS] = server_address
    attributes.update(current_attribution())
    name = f"{operation} {request_model}" if request_model else operation
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False)


def enter(span: Span) -> object:
    """Make ``span`` current (and mark 'inside an LLM call') while the SDK does I/O for it,
    so HTTP spans nest under it and SDK-native GenAI spans know to stand aside.
    Returns the token for :func:`leave`."""
    return otel_context.attach(otel_context.set_value(_IN_LLM_CALL, True, trace.set_span_in_context(span)))


def leave(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


@contextmanager
def inside(span: Span) -> Iterator[None]:
    token = enter(span)
    try:
        yield
    finally:
        leave(token)


def record_error(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.set_attribute(attrs.ERROR_TYPE, type(exc).__qualname__)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:256]))


class StreamRecorder:
    """Collects what a stream's events say and ends its span exactly once.

    ``observe`` is called with each event; ``finish`` writes the response attributes
    and returns the usage seen so far (None when the provider sent none).
    """

    def __init__(
        self,
        span: Span,
        observe: Callable[[Any], None],
        finish: Callable[[Span], TokenUsage | None],
    ) -> None:
        self.span = span
        self._observe = observe
        self._finish = finish
        self._lock = threading.Lock()
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def observe(self, item: Any) -> None:
        with contextlib.suppress(Exception):  # a parsing slip must never break the application's stream
            self._observe(item)

    def _end(self, *, partial: bool, error: BaseException | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        span = self.span
        try:
            usage = self._finish(span)
        except Exception:
            usage = None
        record_usage(span, usage)
        if partial and span.is_recording():
            span.set_attribute(attrs.USAGE_PARTIAL, True)
        if error is not None:
            record_error(span, error)
        span.end()

    def complete(self) -> None:
        self._end(partial=False)

    def fail(self, error: BaseException) -> None:
        self._end(partial=True, error=error)

    def abandon(self) -> None:
        self._end(partial=True)


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A sync stream (generator, SDK event stream) that reports to a :class:`StreamRecorder`.

    It stays the SDK's object for everything else (``isinstance``, attributes, ``with``).
    """

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        # some SDK streams are iterables (botocore's EventStream), not iterators
        self._self_iterator: Any = None

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        recorder = self._self_recorder
        token = enter(recorder.span)
        try:
            if self._self_iterator is None:
                self._self_iterator = iter(self.__wrapped__)
            item = next(self._self_iterator)
        except StopIteration:
            recorder.complete()
            raise
        except BaseException as exc:
            recorder.fail(exc)
            raise
        finally:
            leave(token)
        recorder.observe(item)
        return item

    def __enter__(self) -> StreamProxy:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(*exc_info) if exit_ is not None else None
        finally:
            self._self_recorder.abandon()

    def close(self) -> None:
        try:
            close = getattr(self.__wrapped__, "close", None)
            if close is not None:
                close()
        finally:
            self._self_recorder.abandon()

    def __del__(self) -> None:
        # never let a finalizer raise (late GC, interpreter shutdown): it could only be reported, not handled
        with contextlib.suppress(Exception):
            self._self_recorder.abandon()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """The asyncio twin of :class:`StreamProxy`."""

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_iterator: Any = None

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        recorder = self._self_recorder
        token = enter(recorder.span)
        try:
            if self._self_iterator is None:
                self._self_iterator = aiter(self.__wrapped__)
            item = await anext(self._self_iterator)
        except StopAsyncIteration:
            recorder.complete()
            raise
        except BaseException as exc:
            recorder.fail(exc)
            raise
        finally:
            leave(token)
        recorder.observe(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(*exc_info) if exit_ is not None else None
        finally:
            self._self_recorder.abandon()

    async def aclose(self) -> None:
        try:
            close = getattr(self.__wrapped__, "aclose", None) or getattr(self.__wrapped__, "close", None)
            if close is not None:
                await close()
        finally:
            self._self_recorder.abandon()

    async def close(self) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # never let a finalizer raise (late GC, interpreter shutdown): it could only be reported, not handled
        with contextlib.suppress(Exception):
            self._self_recorder.abandon()


class BoundIterator(wrapt.ObjectProxy[Any]):
    """Runs each step of a lazy iterator in the context of the call that created it.

    Some SDK methods return a generator that sends its request only on the first
    ``next()``; without this, the span would take the attribution in effect wherever
    the application happens to iterate rather than where it made the call.
    """

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)
        self._self_context = otel_context.get_current()

    def __iter__(self) -> BoundIterator:
        return self

    def __next__(self) -> Any:
        token = otel_context.attach(self._self_context)
        try:
            return next(self.__wrapped__)
        finally:
            otel_context.detach(token)


class BoundAsyncIterator(wrapt.ObjectProxy[Any]):
    """The asyncio twin of :class:`BoundIterator`."""

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)
        self._self_context = otel_context.get_current()

    def __aiter__(self) -> BoundAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        token = otel_context.attach(self._self_context)
        try:
            return await self.__wrapped__.__anext__()
        finally:
            otel_context.detach(token)
