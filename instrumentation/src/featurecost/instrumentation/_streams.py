"""Stream proxies that end an LLM call's span however the stream ends.

A streamed call is billed when its stream ends, and a stream can end in many ways:
read to the end, failed mid-way, closed by the caller or by an SDK helper (which
closes the HTTP response directly), abandoned after an early ``break`` and garbage
collected. Each path ends the span exactly once (``LLMCall`` is idempotent), with the
usage reported so far and ``featurecost.usage.partial`` when the end came early.

The proxies are ``wrapt.ObjectProxy`` objects, so the application (and SDK helpers
such as ``MessageStream`` or ``ChatCompletionStream``) still sees the SDK's stream.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from wrapt import ObjectProxy

from featurecost.instrumentation._spans import LLMCall, TokenUsage

log = logging.getLogger(__name__)


class StreamAccumulator(Protocol):
    """Reads usage and response facts off the items of one stream, as they pass."""

    def on_item(self, item: Any) -> bool:
        """Take what matters from ``item``; False hides it from the consumer (an item we asked for)."""
        ...

    def usage(self) -> TokenUsage | None: ...

    def response_attributes(self) -> dict[str, Any]: ...

    def saw_end(self) -> bool:
        """Whether the provider's end-of-answer event came (the usage after it is final)."""
        ...


def _finish(call: LLMCall, acc: StreamAccumulator, *, complete: bool, error: BaseException | None = None) -> None:
    if call.finished:
        return
    complete = complete and acc.saw_end()
    call.finish(acc.usage(), complete=complete, response=acc.response_attributes(), error=error)


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


class TracedStream(ObjectProxy[Any]):  # type: ignore[misc]
    """A synchronous SDK stream whose end ends the call's span."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc
        self._self_response: Any = None

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        on_item = self._self_acc.on_item
        while True:
            try:
                item = self.__wrapped__.__next__()
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
            return self.__wrapped__.close()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ClosingResponse(self.__wrapped__.response, self._self_call, self._self_acc)
        return self._self_response

    def __del__(self) -> None:
        # Abandoned after an early break and never closed: bill what was reported.
        _finish_quietly(self._self_call, self._self_acc)


class AsyncTracedStream(ObjectProxy[Any]):  # type: ignore[misc]
    """An asynchronous SDK stream whose end ends the call's span."""

    def __init__(self, wrapped: Any, call: LLMCall, acc: StreamAccumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc
        self._self_response: Any = None

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        on_item = self._self_acc.on_item
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                _finish(self._self_call, self._self_acc, complete=True)
                raise
            except BaseException as exc:
                _finish(self._self_call, self._self_acc, complete=False, error=exc)
                raise
            if _take(on_item, item):
                return item

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            _finish(self._self_call, self._self_acc, complete=False)

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ClosingResponse(self.__wrapped__.response, self._self_call, self._self_acc)
        return self._self_response

    def __del__(self) -> None:
        _finish_quietly(self._self_call, self._self_acc)
