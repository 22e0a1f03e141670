"""``featurecost.attribute(...)``: say which feature, tenant and user an LLM call serves.

Attribution travels as W3C baggage in the OpenTelemetry context, so it follows the
code through calls, ``asyncio`` tasks (which copy the context) and outgoing HTTP
requests instrumented with OTel propagators. The instrumentors copy it onto every
LLM span they start; nothing here touches spans.

Usage::

    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-42"):
        client.chat.completions.create(...)

    @featurecost.attribute(feature="draft-email")
    async def draft(...): ...
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, TypeVar, cast

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from featurecost.instrumentation import attributes as attrs

F = TypeVar("F", bound=Callable[..., Any])

_NAMED_KEYS: dict[str, str] = {
    "feature": attrs.FEATURE,
    "tenant": attrs.TENANT,
    "user": attrs.USER,
    "plan": attrs.PLAN,
    "root_id": attrs.ROOT_ID,
    "session": attrs.SESSION,
    "version": attrs.VERSION,
}


def _new_root_id() -> str:
    # Inside a traced request the trace is the user action; outside one (a script, a
    # worker without a server span) every LLM call would be its own trace, so the
    # action needs an id of its own to group its calls.
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return format(span_context.trace_id, "032x")
    return uuid.uuid4().hex


class Attribution:
    """A set of attribution values; a context manager and a decorator.

    Values left as ``None`` are inherited from the enclosing attribution. The first
    attribution entered in a context also fixes the request-tree root id, so every LLM
    call made under it groups into one user action.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._tokens: list[object] = []

    @property
    def values(self) -> dict[str, str]:
        return dict(self._values)

    def _context(self) -> otel_context.Context:
        ctx = otel_context.get_current()
        for key, value in self._values.items():
            ctx = baggage.set_baggage(key, value, context=ctx)
        if baggage.get_baggage(attrs.ROOT_ID, context=ctx) is None:
            ctx = baggage.set_baggage(attrs.ROOT_ID, _new_root_id(), context=ctx)
        return ctx

    def __enter__(self) -> Attribution:
        self._tokens.append(otel_context.attach(self._context()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __call__(self, func: F) -> F:
        if inspect.isasyncgenfunction(func):
            return cast(F, self._wrap_async_generator(func))
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = otel_context.attach(self._context())
                try:
                    return await func(*args, **kwargs)
                finally:
                    otel_context.detach(token)

            return cast(F, async_wrapper)
        if inspect.isgeneratorfunction(func):
            return cast(F, self._wrap_generator(func))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = otel_context.attach(self._context())
            try:
                return func(*args, **kwargs)
            finally:
                otel_context.detach(token)

        return cast(F, wrapper)

    def _wrap_generator(self, func: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
        # A generator runs in its consumer's context between yields: attach around each
        # resume and detach before yielding, so the attribution never leaks out of it.
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            ctx = None
            gen = func(*args, **kwargs)
            to_send: Any = None
            while True:
                if ctx is None:
                    ctx = self._context()
                token = otel_context.attach(ctx)
                try:
                    item = gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    otel_context.detach(token)
                to_send = yield item

        return wrapper

    def _wrap_async_generator(self, func: Callable[..., AsyncGenerator[Any, Any]]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            ctx = None
            agen = func(*args, **kwargs)
            to_send: Any = None
            while True:
                if ctx is None:
                    ctx = self._context()
                token = otel_context.attach(ctx)
                try:
                    item = await agen.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    otel_context.detach(token)
                to_send = yield item

        return wrapper


def attribute(
    *,
    feature: str | None = None,
    tenant: str | None = None,
    user: str | None = None,
    plan: str | None = None,
    session: str | None = None,
    version: str | None = None,
    root_id: str | None = None,
    **extra: str,
) -> Attribution:
    """Attribute the LLM calls made inside to a feature, tenant, user, ….

    ``extra`` keys become ``featurecost.<key>`` baggage entries and end up in the
    call's attributes map in storage.
    """
    named = {
        "feature": feature,
        "tenant": tenant,
        "user": user,
        "plan": plan,
        "session": session,
        "version": version,
        "root_id": root_id,
    }
    values = {_NAMED_KEYS[name]: str(value) for name, value in named.items() if value is not None}
    for key, value in extra.items():
        if value is not None:
            values[attrs.EXTRA_PREFIX + key] = str(value)
    return Attribution(values)


def current_attribution(context: otel_context.Context | None = None) -> dict[str, str]:
    """The attribution in effect: featurecost baggage entries plus ``user.id``/``session.id``."""
    found: dict[str, str] = {}
    for key, value in baggage.get_all(context=context).items():
        if key.startswith(attrs.EXTRA_PREFIX) or key in attrs.ATTRIBUTION_KEYS:
            found[key] = str(value)
    return found
