"""Stream proxies that end an LLM call's span however the stream ends — for every SDK.

A streamed call is billed when its stream ends, and a stream can end in many ways:
read to the end, failed mid-way, closed by the caller or by an SDK helper (which
closes the HTTP response directly), left by an early ``with`` exit, abandoned after an
early ``break`` and garbage collected. Each path ends the span exactly once (``LLMCall``
is idempotent and thread-safe), with the usage reported so far and
``featurecost.usage.partial`` when the end came early.

The proxies are ``wrapt.ObjectProxy`` objects, so the application (and SDK helpers
such as ``MessageStream`` or ``ChatCompletionStream``) still sees the SDK's stream. They
take SDK streams (openai/anthropic ``Stream``, mistral ``EventStream``), plain
generators (cohere, google-genai) and iterables that are not iterators (botocore's
``EventStream``).

Some streams do their I/O while being iterated — a generator that sends the request on
its first step, an event stream that reads the response as it goes. ``in_call=True``
runs each step in the call's provider context (``LLMCall.provider_context``): our span
current (HTTP spans nest under it, SDK-native GenAI spans stand aside) and our
attribution baggage hidden from whatever the SDK sends.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from wrapt import ObjectProxy

from featurecost.instrumentation._nested import IN_LLM_CALL
from featurecost.instrumentation._settle import settle_call
from featurecost.instrumentation._spans import LLMCall, ResponseFacts, TokenUsage

log = logging.getLogger(__name__)


class StreamAccumulator(Protocol):
    """Reads usage and response facts off the items of one stream, as they pass."""

    def on_item(self, item: Any) -> bool:
        """Take what matters from ``item``; False hides it from the consumer (an item we asked for)."""
        ...

    def usage(self) -> TokenUsage | None: ...

    def response_facts(self) -> ResponseFacts: ...

    def saw_end(self) -> bool:
        """Whether the provider's end-of-answer event came (the usage after it is final)."""
        ...


class ResponseAccumulator:
    """Base for accumulators that read every item and for which running out is the end.

    The same object reads a whole (non-streamed) response (``_lifecycle.accumulated``), so
    a call and a stream of the same API are recorded alike.
    """

    def on_item(self, item: Any) -> bool:
        raise NotImplementedError

    def usage(self) -> TokenUsage | None:
        raise NotImplementedError

    def response_facts(self) -> ResponseFacts:
        return ResponseFacts()

    def saw_end(self) -> bool:
        return True


def _undo_leaked_context(call: LLMCall) -> None:
    """Give the consumer its context back if a peer's stream end restored ours into it.

    An instrumentation wrapping inside ours that attaches its span context when the call
    starts and detaches it when its stream ends (``opentelemetry-util-genai``, so openai-v2)
    resets the context to what was current at its attach — our provider context, which only
    lives while the request is sent. Left there, every later call of the consumer would look
    nested in ours and go untraced. The signature is exact: our call's span is current.
    """
    if trace.get_current_span() is call.span and otel_context.get_value(IN_LLM_CALL):
        otel_context.attach(call.call_context)


def _finish(call: LLMCall, acc: StreamAccumulator, *, complete: bool, error: BaseException | None = None) -> None:
    _undo_leaked_context(call)
    if call.finished:
        return
    try:
        complete = complete and acc.saw_end()
        usage, response = acc.usage(), acc.response_facts()
    except Exception:  # our extractor failed: the stream still ends, the usage is recorded missing
        log.debug("featurecost: could not read a stream's usage", exc_info=True)
        usage, response, complete = None, None, False
    if call.finish(usage, complete=complete, response=response, error=error):
        settle_call(call, usage)


def _take(on_item: Any, item: Any) -> bool:
    try:
        return bool(on_item(item))
    except Exception:  # a surprise in a chunk must not break the caller's stream
        log.debug("featurecost: could not read a stream item", exc_info=True)
        return True


def _finish_quietly(call: LLMCall, acc: StreamAccumulator) -> None:
    # Runs from the garbage collector, possibly at interpreter exit: an exception here
    # could only be printed as "ignored", so it is logged instead.
    try:
        _finish(call, acc, complete=False)
    except Exception:
        log.debug("featurecost: could not end the span of an abandoned stream", exc_info=True)


class _ClosingResponse(ObjectProxy[Any]):  # type: ignore[misc]
    """The stream's HTTP response: SDK helpers close this, not the stream, when they are done."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)


class _CallStream(ObjectProxy[Any]):  # type: ignore[misc]
    """What the sync and async stream proxies share: the call, its accumulator, the
    ``response`` whose close ends the call, and ending it when abandoned."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator, *, in_call: bool = False) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc
        self._self_in_call = in_call
        self._self_response: Any = None

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ClosingResponse(self.__wrapped__.response, self._self_call, self._self_acc)
        return self._self_response

    def __del__(self) -> None:
        # Abandoned after an early break and never closed: bill what was reported.
        _finish_quietly(self._self_call, self._self_acc)


class TracedStream(_CallStream):
    """A synchronous stream whose end ends the call's span."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator, *, in_call: bool = False) -> None:
        super().__init__(wrapped, call, acc, in_call=in_call)
        # The common case (an SDK iterator read in the caller's context) steps without a detour.
        # botocore's EventStream is iterable, not an iterator: its iterator is made on the first step.
        self._self_next: Any = getattr(wrapped, "__next__", None)
        self._self_direct: Any = None if in_call else self._self_next

    def __iter__(self) -> TracedStream:
        return self

    def _step(self) -> Any:
        token = otel_context.attach(self._self_call.provider_context()) if self._self_in_call else None
        try:
            step = self._self_next
            if step is None:
                step = self._self_next = iter(self.__wrapped__).__next__
                if not self._self_in_call:
                    self._self_direct = step
            return step()
        finally:
            if token is not None:
                otel_context.detach(token)

    def __next__(self) -> Any:
        on_item = self._self_acc.on_item
        while True:
            try:
                step = self._self_direct
                item = step() if step is not None else self._step()
            except StopIteration:
                _finish(self._self_call, self._self_acc, complete=True)
                raise
            except BaseException as exc:
                _finish(self._self_call, self._self_acc, complete=False, error=exc)
                raise
            if _take(on_item, item):
                return item

    def close(self) -> Any:
        try:
            close = getattr(self.__wrapped__, "close", None)
            return close() if close is not None else None
        finally:
            _finish(self._self_call, self._self_acc, complete=False)

    def __enter__(self) -> TracedStream:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(*exc_info) if exit_ is not None else self.close()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)


class AsyncTracedStream(_CallStream):
    """An asynchronous stream whose end ends the call's span."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator, *, in_call: bool = False) -> None:
        super().__init__(wrapped, call, acc, in_call=in_call)
        self._self_next: Any = getattr(wrapped, "__anext__", None)

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def _step(self) -> Any:
        step = self._self_next
        if step is None:
            step = self._self_next = aiter(self.__wrapped__).__anext__
        if not self._self_in_call:
            return await step()
        token = otel_context.attach(self._self_call.provider_context())
        try:
            return await step()
        finally:
            otel_context.detach(token)

    async def __anext__(self) -> Any:
        on_item = self._self_acc.on_item
        while True:
            try:
                item = await self._step()
            except StopAsyncIteration:
                _finish(self._self_call, self._self_acc, complete=True)
                raise
            except BaseException as exc:
                _finish(self._self_call, self._self_acc, complete=False, error=exc)
                raise
            if _take(on_item, item):
                return item

    async def _close(self, *names: str) -> Any:
        try:
            close = next((m for m in (getattr(self.__wrapped__, n, None) for n in names) if m is not None), None)
            return await close() if close is not None else None
        finally:
            _finish(self._self_call, self._self_acc, complete=False)

    async def close(self) -> Any:
        # SDK streams close with close(), async generators with aclose()
        return await self._close("close", "aclose")

    async def aclose(self) -> Any:
        return await self._close("aclose", "close")

    async def __aenter__(self) -> AsyncTracedStream:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(*exc_info) if exit_ is not None else await self.close()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)


class BoundIterator(ObjectProxy[Any]):  # type: ignore[misc]
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


class BoundAsyncIterator(ObjectProxy[Any]):  # type: ignore[misc]
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
