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

import concurrent.futures
import contextvars
import functools
import inspect
import itertools
import logging
import os
from collections.abc import AsyncGenerator, Callable, Collection, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context.context import Context
from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

# featurecost.latency travels and is copied like the named keys (never subject to the extras allow-list)
_NAMED_KEY_SET = frozenset((*attrs.ATTRIBUTION_KEYS, attrs.LATENCY))
_LATENCIES = (attrs.LATENCY_BATCH, attrs.LATENCY_INTERACTIVE)

StrictMode = Literal["off", "flag", "reject"]


class UnattributedCallError(RuntimeError):
    """Strict mode ``reject``: an LLM call was made with no ``featurecost.feature`` in its context."""


@dataclass
class Settings:
    """How attribution is read and enforced; change it with ``featurecost.configure``.

    Baggage crosses service boundaries, so anything read from it is untrusted: only
    the named keys plus allowed extra keys are copied onto spans, values are cut at
    ``max_value_length`` and at most ``max_extra_keys`` extras are kept.
    """

    strict: StrictMode = "off"
    extra_keys: frozenset[str] | None = None  # None: any featurecost.<key>
    max_value_length: int = 256
    max_extra_keys: int = 16
    _warned: set[str] = field(default_factory=set)


def _strict_from_env() -> StrictMode:
    value = os.environ.get("FEATURECOST_STRICT", "off").strip().lower()
    return cast(StrictMode, value) if value in ("off", "flag", "reject") else "off"


settings = Settings(strict=_strict_from_env())


def configure(
    *,
    strict: StrictMode | None = None,
    extra_keys: Collection[str] | None = None,
    allow_any_extra_key: bool = False,
    max_value_length: int | None = None,
    max_extra_keys: int | None = None,
) -> Settings:
    """Set strict mode (``off``/``flag``/``reject``, default from ``FEATURECOST_STRICT``),
    the allow-list of extra attribution keys (names without the ``featurecost.`` prefix)
    and the size caps. Returns the settings in force."""
    if strict is not None:
        if strict not in ("off", "flag", "reject"):
            raise ValueError(f"strict must be 'off', 'flag' or 'reject', not {strict!r}")
        settings.strict = strict
    if allow_any_extra_key:
        settings.extra_keys = None
    elif extra_keys is not None:
        settings.extra_keys = frozenset(attrs.EXTRA_PREFIX + key.removeprefix(attrs.EXTRA_PREFIX) for key in extra_keys)
    if max_value_length is not None:
        settings.max_value_length = max(1, max_value_length)
    if max_extra_keys is not None:
        settings.max_extra_keys = max(0, max_extra_keys)
    return settings


def is_attribution_key(key: str) -> bool:
    """Whether a baggage key is ours (and so must never reach an LLM provider)."""
    return key in _NAMED_KEY_SET or key.startswith(attrs.EXTRA_PREFIX)


# Span attributes the instrumentors write themselves: baggage from another service must
# never be able to set usage, request or response facts (and so the bill) of a call.
_RESERVED_PREFIXES = (
    "featurecost.usage.",
    "featurecost.request.",
    "featurecost.response.",
    "featurecost.prompt.",
    attrs.SUPERSEDED,
)


MAX_KEY_LENGTH = 64


def _allowed_extra(key: str) -> bool:
    if key.startswith(_RESERVED_PREFIXES) or len(key) > MAX_KEY_LENGTH:
        return False
    return settings.extra_keys is None or key in settings.extra_keys


def check_attribution(attribution: Mapping[str, str]) -> dict[str, AttributeValue]:
    """Apply strict mode to the attribution of an LLM call about to start.

    Returns the attributes that flag the span; raises ``UnattributedCallError`` in
    ``reject`` mode, before anything is sent to the provider.
    """
    if settings.strict == "off" or attribution.get(attrs.FEATURE):
        return {}
    if settings.strict == "reject":
        raise UnattributedCallError(
            "LLM call without featurecost.feature (strict mode 'reject'): wrap it in featurecost.attribute(feature=...)"
        )
    return {attrs.REQUEST_UNATTRIBUTED: True}


class _RootIds:
    """Unique 32-hex-digit ids, cheaply: a random per-process prefix and a counter.

    Root ids only need to be unique (they group one action's calls), not secret; a
    ``uuid4`` per attribution costs a ``urandom`` system call each time (half the cost of
    entering an attribution). A forked child draws a prefix of its own.
    """

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_root_ids = _RootIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_root_ids.reseed)


def _new_root_id(ctx: otel_context.Context | None = None) -> str:
    # Inside a traced request the trace is the user action; outside one (a script, a
    # worker without a server span) every LLM call would be its own trace, so the
    # action needs an id of its own to group its calls.
    span_context = trace.get_current_span(ctx).get_span_context()
    if span_context.is_valid:
        return format(span_context.trace_id, "032x")
    return _root_ids.next()


class Attribution:
    """A set of attribution values; a context manager and a decorator.

    Values left as ``None`` are inherited from the enclosing attribution. The first
    attribution entered in a context also fixes the request-tree root id, so every LLM
    call made under it groups into one user action. One instance may be entered in
    several threads or tasks at once: the tokens to detach live in a context variable.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._tokens: contextvars.ContextVar[tuple[list[Any], ...]] = contextvars.ContextVar(
            "featurecost-attribution-tokens", default=()
        )

    @property
    def values(self) -> dict[str, str]:
        return dict(self._values)

    def _context(self) -> otel_context.Context:
        # What ``baggage.set_baggage`` does once per key, as one new baggage dict in one new
        # context: entering an attribution runs once per request, often once per call.
        ctx = otel_context.get_current()
        found = ctx.get(_BAGGAGE_KEY)
        entries: dict[str, object] = dict(found) if isinstance(found, dict) else {}
        entries.update(self._values)
        if entries.get(attrs.ROOT_ID) is None:
            entries[attrs.ROOT_ID] = _new_root_id(ctx)
        values = dict(ctx)
        values[_BAGGAGE_KEY] = entries
        return Context(values)

    def __enter__(self) -> Attribution:
        entry: list[Any] = [otel_context.attach(self._context()), None]
        entry[1] = self._tokens.set((*self._tokens.get(), entry))
        return self

    def __exit__(self, *exc_info: object) -> None:
        *rest, (otel_token, var_token) = self._tokens.get()
        try:
            # reset, not set: a context that outlives many requests (a worker thread's)
            # must not keep one variable per attribution object ever entered in it.
            self._tokens.reset(var_token)
        except ValueError:  # exited in another context than it was entered in
            self._tokens.set(tuple(rest))
        otel_context.detach(otel_token)

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
        # send/throw/close are forwarded so the generator behaves as if undecorated.
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            gen = func(*args, **kwargs)
            ctx: otel_context.Context | None = None
            resume: Callable[[Any], Any] = gen.send
            value: Any = None
            try:
                while True:
                    if ctx is None:
                        ctx = self._context()
                    token = otel_context.attach(ctx)
                    try:
                        item = resume(value)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        otel_context.detach(token)
                    try:
                        value = yield item
                        resume = gen.send
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        resume, value = gen.throw, exc
            finally:
                token = otel_context.attach(ctx if ctx is not None else otel_context.get_current())
                try:
                    gen.close()
                finally:
                    otel_context.detach(token)

        return wrapper

    def _wrap_async_generator(self, func: Callable[..., AsyncGenerator[Any, Any]]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = func(*args, **kwargs)
            ctx: otel_context.Context | None = None
            resume: Callable[[Any], Any] = agen.asend
            value: Any = None
            try:
                while True:
                    if ctx is None:
                        ctx = self._context()
                    token = otel_context.attach(ctx)
                    try:
                        item = await resume(value)
                    except StopAsyncIteration:
                        return
                    finally:
                        otel_context.detach(token)
                    try:
                        value = yield item
                        resume = agen.asend
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        resume, value = agen.athrow, exc
            finally:
                token = otel_context.attach(ctx if ctx is not None else otel_context.get_current())
                try:
                    await agen.aclose()
                finally:
                    otel_context.detach(token)

        return wrapper


def _clip(value: str) -> str:
    limit = settings.max_value_length
    return value if len(value) <= limit else value[:limit]


def attribute(
    *,
    feature: str | None = None,
    tenant: str | None = None,
    user: str | None = None,
    plan: str | None = None,
    session: str | None = None,
    version: str | None = None,
    root_id: str | None = None,
    latency: str | None = None,
    **extra: str,
) -> Attribution:
    """Attribute the LLM calls made inside to a feature, tenant, user, ….

    ``latency="batch"`` says no user waits for these calls (a nightly job, a backfill):
    ``featurecost report batch`` prices them at the provider's Batch API discount;
    ``"interactive"`` says a user does, even without a traced request around them.

    ``extra`` keys become ``featurecost.<key>`` baggage entries and end up in the
    call's attributes map in storage; keys outside the allow-list (``configure``)
    are dropped with a warning, values are cut at the configured length.
    """
    if latency is not None and latency not in _LATENCIES:
        raise ValueError(f"latency must be 'batch' or 'interactive', not {latency!r}")
    values: dict[str, str] = {}
    # one pass over the named values, str and clipped: this runs per request, often per call
    for key, value in (
        (attrs.FEATURE, feature),
        (attrs.TENANT, tenant),
        (attrs.USER, user),
        (attrs.PLAN, plan),
        (attrs.SESSION, session),
        (attrs.VERSION, version),
        (attrs.ROOT_ID, root_id),
    ):
        if value is not None:
            values[key] = _clip(value if type(value) is str else str(value))
    if latency is not None:
        values[attrs.LATENCY] = latency
    kept = 0
    for key, value in extra.items():
        if value is None:
            continue
        full = attrs.EXTRA_PREFIX + key
        if full in _NAMED_KEY_SET:
            values[full] = _clip(str(value))
        elif _allowed_extra(full) and kept < settings.max_extra_keys:
            values[full] = _clip(str(value))
            kept += 1
        elif full not in settings._warned:
            settings._warned.add(full)
            log.warning("featurecost: attribution key %r dropped (not allowed or over max_extra_keys)", full)
    return Attribution(values)


def current_attribution(context: otel_context.Context | None = None) -> dict[str, str]:
    """The attribution in effect: featurecost baggage entries plus ``user.id``/``session.id``.

    Baggage may come from another service, so the allow-list and caps apply here too.
    """
    found: dict[str, str] = {}
    extras = 0
    limit = settings.max_value_length
    entries = (otel_context.get_current() if context is None else context).get(_BAGGAGE_KEY)
    if not entries or not isinstance(entries, dict):
        return found
    for key, value in entries.items():
        if key in _NAMED_KEY_SET:
            pass
        elif key.startswith(attrs.EXTRA_PREFIX) and _allowed_extra(key) and extras < settings.max_extra_keys:
            extras += 1
        else:
            continue
        text = value if isinstance(value, str) else str(value)
        found[key] = text if len(text) <= limit else text[:limit]
    return found


def bind_context(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` run in the OpenTelemetry context (attribution included) current now.

    Threads do not inherit context; hand work to a thread, a pool or a callback
    through this and its LLM calls keep the caller's attribution.
    """
    ctx = otel_context.get_current()

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        token = otel_context.attach(ctx)
        try:
            return func(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return bound


class ContextThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the submitter's context (attribution included)."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[R]:
        return super().submit(bind_context(fn), *args, **kwargs)
