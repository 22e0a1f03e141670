"""Budget guard: ask the collector's budget decision API before an LLM call.

``check_before_call(request_kwargs)`` looks at the current attribution and:

* raises ``BudgetExceeded`` when an enforced budget covering the call is exhausted (deny),
  or when the call would take its session past the in-process per-session cap;
* at a soft limit, calls the app's ``on_soft`` callback, which may return changed request
  kwargs (a cheaper model, a lower ``max_tokens``) — the guard returns those;
* estimates the call's cost up front (rough token count times a price table the app gives or
  the collector serves) and records it on the current span as
  ``featurecost.budget.estimate_usd``, beside the usage the instrumentor records.

Decisions are cached per scope for ``ttl`` seconds, so the API is asked at most once per
scope per TTL. When the collector cannot answer, the guard fails open (the call goes
ahead, a warning is logged) unless ``fail_closed=True``.

Only the standard library is used (``urllib``): the instrumentation stays light.

The OpenAI, Anthropic, google-genai, Bedrock, Mistral and Cohere instrumentors consult it themselves (``check_call``)
whenever a guard is configured or ``FEATURECOST_BUDGET_API`` is set. Other instrumentors
call it before the SDK call::

    kwargs = guard.check_before_call(kwargs, provider="openai")
    response = wrapped(*args, **kwargs)
    guard.after_call(kwargs, input_tokens, output_tokens, provider="openai")

Apps opt in with ``guarded(client.chat.completions.create)`` (or as a decorator), plus
``BudgetSpanProcessor`` to put the estimate on the instrumentor's span.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._nested import PassiveSpanProcessor
from featurecost.instrumentation.attribution import current_attribution

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Clock = Callable[[], float]  # monotonic seconds; tests pass one they move by hand
SoftLimitCallback = Callable[["Decision", dict[str, Any]], "dict[str, Any] | None"]

ENV_API = "FEATURECOST_BUDGET_API"
ENV_API_TOKEN = "FEATURECOST_API_TOKEN"  # the collector's --api-token, sent as a bearer token
ENV_FAIL_CLOSED = "FEATURECOST_BUDGET_FAIL_CLOSED"
ENV_TTL = "FEATURECOST_BUDGET_TTL"
ENV_SESSION_CAP = "FEATURECOST_BUDGET_SESSION_CAP_USD"
ENV_ENVIRONMENT = "FEATURECOST_ENVIRONMENT"

_MILLION = Decimal(1_000_000)
_CHARS_PER_TOKEN = 4  # a rough, provider-neutral rule of thumb: estimates, not bills
_ESTIMATE = otel_context.create_key("featurecost-budget-estimate")


class BudgetExceeded(RuntimeError):
    """The call was refused before it reached the provider.

    ``reason`` is ``budget`` (an enforced budget is exhausted), ``session-cap`` (this
    session's in-process cap) or ``unavailable`` (no decision and ``fail_closed``).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        budget: str | None = None,
        scope: Mapping[str, str] | None = None,
        remaining_usd: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.budget = budget
        self.scope = dict(scope or {})
        self.remaining_usd = remaining_usd


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # allow | soft | deny
    budget: str | None = None
    remaining_usd: Decimal | None = None
    unpriced_calls: int = 0
    source: str = "collector"  # collector | fail-open | not-configured
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        verdict = str(data["decision"])
        if verdict not in ("allow", "soft", "deny"):
            raise ValueError(f"unknown decision {verdict!r}")
        remaining = data.get("remaining_usd")
        return cls(
            verdict,
            data.get("budget"),
            None if remaining is None else Decimal(str(remaining)),
            int(data.get("unpriced_calls") or 0),
            "collector",
            dict(data),
        )


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal


def _request_text_chars(kwargs: Mapping[str, Any]) -> int:
    # Counts characters locally; no text leaves the process.
    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, dict | Mapping):  # dict first: the ABC check is slow
            total = 0
            for key in ("content", "text", "input"):
                part = value.get(key)
                if part is not None:
                    total += size(part)
            return total
        if isinstance(value, list | tuple):
            return sum(size(v) for v in value)
        return 0

    return sum(size(kwargs.get(key)) for key in ("messages", "system", "input", "prompt", "instructions"))


def estimate_tokens(kwargs: Mapping[str, Any], default_output_tokens: int = 256) -> tuple[int, int]:
    """(input, output) tokens a request may use: characters / 4 in, the output cap out."""
    chars = _request_text_chars(kwargs)
    output = next(
        (
            int(kwargs[k])
            for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
            if isinstance(kwargs.get(k), int)
        ),
        default_output_tokens,
    )
    return math.ceil(chars / _CHARS_PER_TOKEN), output


def _default_environment() -> str:
    explicit = os.environ.get(ENV_ENVIRONMENT)
    if explicit:
        return explicit
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = item.partition("=")
        if key.strip() in (attrs.DEPLOYMENT_ENVIRONMENT, attrs.DEPLOYMENT_ENVIRONMENT_OLD) and value.strip():
            return urllib.parse.unquote(value.strip())
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    found = getattr(resource, "attributes", {}).get(attrs.DEPLOYMENT_ENVIRONMENT)
    return str(found) if found else "production"


def _env_decimal(name: str) -> Decimal | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {raw!r}") from None


@dataclass(slots=True)
class Ticket:
    """What ``check`` decided for one call; ``kwargs`` are the ones to send."""

    kwargs: dict[str, Any]
    decision: Decision
    estimate_usd: Decimal | None
    session_id: str | None
    model: str
    degraded: bool = False


class Guard:
    def __init__(
        self,
        api_url: str | None = None,
        *,
        ttl: float = 30.0,
        error_ttl: float = 5.0,
        timeout: float = 1.0,
        fail_closed: bool = False,
        on_soft: SoftLimitCallback | None = None,
        session_cap_usd: Decimal | None = None,
        prices: Mapping[str, Price] | None = None,
        fetch_prices: bool = True,
        environment: str | None = None,
        default_output_tokens: int = 256,
        max_sessions: int = 10_000,
        clock: Clock = time.monotonic,
        api_token: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/") if api_url else None
        self.api_token = api_token
        self.ttl = ttl
        self.error_ttl = error_ttl
        self.timeout = timeout
        self.fail_closed = fail_closed
        self.on_soft = on_soft
        self.session_cap_usd = session_cap_usd
        self.prices = dict(prices or {})
        self.fetch_prices = fetch_prices
        self.environment = environment
        self.default_output_tokens = default_output_tokens
        self.max_sessions = max_sessions
        self.clock = clock
        self.api_requests = 0  # how often the decision API was asked (the cache's effect)
        self._decisions: dict[tuple[str, ...], tuple[float, Decision]] = {}
        self._fetched_prices: dict[tuple[str, str], tuple[float, Price | None]] = {}
        self._sessions: OrderedDict[str, Decimal] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **overrides: Any) -> Guard:
        ttl = os.environ.get(ENV_TTL)
        settings: dict[str, Any] = {
            "api_url": os.environ.get(ENV_API) or None,
            "api_token": os.environ.get(ENV_API_TOKEN) or None,
            "fail_closed": os.environ.get(ENV_FAIL_CLOSED, "").lower() in ("1", "true", "yes"),
            "session_cap_usd": _env_decimal(ENV_SESSION_CAP),
        }
        if ttl:
            settings["ttl"] = float(ttl)
        settings.update(overrides)
        return cls(**settings)

    # --- the decision ---
    def scope_of(self, attribution: Mapping[str, str]) -> dict[str, str]:
        return {
            "feature": attribution.get(attrs.FEATURE) or attrs.DEFAULT_FEATURE,
            "tenant": attribution.get(attrs.TENANT, ""),
            "user": attribution.get(attrs.USER, ""),
            "environment": self.environment or self._resolve_environment(),
        }

    def _resolve_environment(self) -> str:
        # Resolved once: the resource does not change while the process runs.
        self.environment = _default_environment()
        return self.environment

    def _decision_key(self, scope: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(scope[k] for k in ("feature", "tenant", "user", "environment"))

    def would_ask(self, request_kwargs: Mapping[str, Any], attribution: Mapping[str, str], provider: str = "") -> bool:
        """True when ``check`` would have to ask the collector (a decision or price not cached)."""
        if self.api_url is None:
            return False
        now = self.clock()
        key = self._decision_key(self.scope_of(attribution))
        model = str(request_kwargs.get("model") or "")
        with self._lock:
            cached = self._decisions.get(key)
            price = self._fetched_prices.get((provider, model))
        if cached is None or cached[0] <= now:
            return True
        fetches_price = self.fetch_prices and bool(model) and model not in self.prices
        return fetches_price and (price is None or price[0] <= now)

    def decision(self, scope: Mapping[str, str]) -> Decision:
        if self.api_url is None:
            return Decision("allow", source="not-configured")
        key = self._decision_key(scope)
        now = self.clock()
        with self._lock:
            cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            decision = Decision.from_json(self._get("/api/v1/budgets/decision", scope))
            expires = now + self.ttl
        except (OSError, ValueError, KeyError) as exc:
            if self.fail_closed:
                raise BudgetExceeded(
                    f"no budget decision from {self.api_url} ({exc}) and the guard fails closed",
                    reason="unavailable",
                    scope=scope,
                ) from exc
            log.warning("budget decision unavailable from %s (%s); allowing the call (fail-open)", self.api_url, exc)
            # Remember the failure briefly: a dead collector must not add a timeout to every call.
            decision, expires = Decision("allow", source="fail-open", details={"error": str(exc)}), now + self.error_ttl
        with self._lock:
            self._decisions[key] = (expires, decision)
        return decision

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.api_url}{path}?{urllib.parse.urlencode(params)}"
        self.api_requests += 1
        headers = {"Accept": "application/json"}
        if self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = json.loads(response.read())
        if not isinstance(data, dict):
            raise ValueError("budget API answered with something other than a JSON object")
        return data

    # --- the estimate ---
    def price_of(self, model: str, provider: str = "") -> Price | None:
        if model in self.prices:
            return self.prices[model]
        if not (self.fetch_prices and self.api_url and model):
            return None
        now = self.clock()
        with self._lock:
            cached = self._fetched_prices.get((provider, model))
        if cached is not None and cached[0] > now:
            return cached[1]
        price: Price | None = None
        try:
            data = self._get("/api/v1/budgets/prices", {"provider": provider, "model": model})
            if data.get("input_usd_per_mtok") is not None and data.get("output_usd_per_mtok") is not None:
                price = Price(Decimal(data["input_usd_per_mtok"]), Decimal(data["output_usd_per_mtok"]))
            expires = now + 3600
        except (OSError, ValueError, KeyError, InvalidOperation) as exc:
            log.debug("no price for %s/%s from %s: %s", provider, model, self.api_url, exc)
            expires = now + self.error_ttl
        with self._lock:
            self._fetched_prices[(provider, model)] = (expires, price)
        return price

    def cost(self, model: str, provider: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        price = self.price_of(model, provider)
        if price is None:
            return None
        return (input_tokens * price.input_usd_per_mtok + output_tokens * price.output_usd_per_mtok) / _MILLION

    def estimate(self, kwargs: Mapping[str, Any], provider: str = "") -> Decimal | None:
        """Pre-flight cost estimate; None when the model has no known price."""
        input_tokens, output_tokens = estimate_tokens(kwargs, self.default_output_tokens)
        return self.cost(str(kwargs.get("model") or ""), provider, input_tokens, output_tokens)

    # --- the session cap ---
    def session_spend(self, session_id: str) -> Decimal:
        with self._lock:
            return self._sessions.get(session_id, Decimal(0))

    def _add_to_session(self, session_id: str | None, amount: Decimal | None) -> None:
        if session_id is None or amount is None:
            return
        with self._lock:
            self._sessions[session_id] = self._sessions.get(session_id, Decimal(0)) + amount
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)

    # --- the check ---
    def check(
        self,
        request_kwargs: Mapping[str, Any],
        attribution: Mapping[str, str] | None = None,
        *,
        provider: str = "",
    ) -> Ticket:
        attribution = current_attribution() if attribution is None else attribution
        scope = self.scope_of(attribution)
        kwargs = dict(request_kwargs)
        decision = self.decision(scope)
        if decision.verdict == "deny":
            remaining = "" if decision.remaining_usd is None else f" (${decision.remaining_usd} left)"
            raise BudgetExceeded(
                f"LLM call refused: budget {decision.budget!r} for "
                + ", ".join(f"{k}={v}" for k, v in scope.items() if v)
                + f" has reached its hard limit{remaining}",
                reason="budget",
                budget=decision.budget,
                scope=scope,
                remaining_usd=decision.remaining_usd,
            )
        degraded = False
        if decision.verdict == "soft" and self.on_soft is not None:
            changed = self.on_soft(decision, dict(kwargs))
            if changed is not None:
                degraded = changed != kwargs
                kwargs = dict(changed)
        estimate = self.estimate(kwargs, provider)
        session_id = attribution.get(attrs.SESSION) or attribution.get(attrs.ROOT_ID) or None
        if self.session_cap_usd is not None and session_id is not None:
            spent = self.session_spend(session_id)
            if spent + (estimate or Decimal(0)) > self.session_cap_usd:
                raise BudgetExceeded(
                    f"LLM call refused: session {session_id} has used ${spent:.6f} in this process; "
                    f"this call (estimated ${estimate or 0:.6f}) would pass its ${self.session_cap_usd} cap",
                    reason="session-cap",
                    scope={**scope, "session": session_id},
                    remaining_usd=max(self.session_cap_usd - spent, Decimal(0)),
                )
        self._add_to_session(session_id, estimate)
        return Ticket(kwargs, decision, estimate, session_id, str(kwargs.get("model") or ""), degraded)

    async def check_async(
        self,
        request_kwargs: Mapping[str, Any],
        attribution: Mapping[str, str] | None = None,
        *,
        provider: str = "",
    ) -> Ticket:
        """``check`` for coroutines: when the collector must be asked (a decision or price not
        cached), the blocking request runs in a worker thread, so the event loop keeps serving
        other tasks; otherwise it is answered here from the cache."""
        attribution = current_attribution() if attribution is None else attribution
        if self.would_ask(request_kwargs, attribution, provider):
            return await asyncio.to_thread(self.check, request_kwargs, attribution, provider=provider)
        return self.check(request_kwargs, attribution, provider=provider)

    def settle(self, ticket: Ticket, input_tokens: int, output_tokens: int, provider: str = "") -> Decimal | None:
        """Replace the ticket's estimate in its session's tally with the call's actual cost."""
        actual = self.cost(ticket.model, provider, input_tokens, output_tokens)
        if actual is not None:
            self._add_to_session(ticket.session_id, actual - (ticket.estimate_usd or Decimal(0)))
        return actual


def mark_span(span: trace.Span, ticket: Ticket) -> None:
    if not span.is_recording():
        return
    span.set_attribute(attrs.BUDGET_DECISION, ticket.decision.verdict)
    if ticket.estimate_usd is not None:
        span.set_attribute(attrs.BUDGET_ESTIMATE_USD, str(ticket.estimate_usd))
    if ticket.degraded:
        span.set_attribute(attrs.BUDGET_DEGRADED, True)


# --- the process-wide guard ---
_default: Guard | None = None
_default_lock = threading.Lock()


def configure(guard: Guard | None = None, **settings: Any) -> Guard:
    """Set the process-wide guard: pass one, or settings (read with the env as defaults)."""
    global _default
    with _default_lock:
        _default = guard if guard is not None else Guard.from_env(**settings)
        return _default


def guarded_ticket() -> Ticket | None:
    """The ticket of an enclosing ``guarded(...)`` call, which already checked this call."""
    ticket = otel_context.get_value(_ESTIMATE)
    return ticket if isinstance(ticket, Ticket) else None


def active_guard() -> Guard | None:
    """The guard instrumentors consult: the configured one, or one from the environment when
    ``FEATURECOST_BUDGET_API`` is set; None (no cost at all) otherwise."""
    if _default is not None:
        return _default
    return get_guard() if _env_api_set() else None


# Asked before every LLM call: ``os.environ.get`` encodes the key and goes through the Mapping
# machinery (a few µs in a real app); the process environment's own dict answers the same.
_environ = os.environ
_environ_data: Any = getattr(os.environ, "_data", None)
_env_api_key: Any = os.environ.encodekey(ENV_API) if hasattr(os.environ, "encodekey") else None


def _env_api_set() -> bool:
    if os.environ is _environ and _environ_data is not None and _env_api_key is not None:
        return bool(_environ_data.get(_env_api_key))
    return bool(os.environ.get(ENV_API))


def check_call(kwargs: dict[str, Any], provider: str = "") -> Ticket | None:
    """For instrumentors, before the call's span starts (the attribution is still visible).

    None when no guard is active or an enclosing ``guarded`` call already checked. Deny
    raises ``BudgetExceeded``; a soft-limit callback's changes replace ``kwargs`` in place.
    """
    guard = active_guard()
    if guard is None or guarded_ticket() is not None:
        return None
    return _sent_as_checked(kwargs, guard.check(kwargs, provider=provider))


async def check_call_async(kwargs: dict[str, Any], provider: str = "") -> Ticket | None:
    """``check_call`` for coroutines (``Guard.check_async``: the event loop is never blocked)."""
    guard = active_guard()
    if guard is None or guarded_ticket() is not None:
        return None
    return _sent_as_checked(kwargs, await guard.check_async(kwargs, provider=provider))


def _sent_as_checked(kwargs: dict[str, Any], ticket: Ticket) -> Ticket:
    """A soft-limit callback's changes replace the request's ``kwargs`` in place."""
    if ticket.kwargs != kwargs:
        kwargs.clear()
        kwargs.update(ticket.kwargs)
    return ticket


def mark_call_span(span: trace.Span, ticket: Ticket | None) -> None:
    """Put the budget decision and estimate on the call's span (``check_call``'s ticket, or
    the enclosing ``guarded`` call's)."""
    ticket = ticket or guarded_ticket()
    if ticket is not None:
        mark_span(span, ticket)


def get_guard() -> Guard:
    global _default
    with _default_lock:
        if _default is None:
            _default = Guard.from_env()
        return _default


def check_before_call(
    request_kwargs: Mapping[str, Any], attribution: Mapping[str, str] | None = None, *, provider: str = ""
) -> dict[str, Any]:
    """The hook instrumentors call inside their LLM span, before the SDK call.

    Returns the kwargs to send (changed when the soft-limit callback degraded the call);
    raises ``BudgetExceeded`` on deny or past the session cap.
    """
    ticket = get_guard().check(request_kwargs, attribution, provider=provider)
    mark_span(trace.get_current_span(), ticket)
    return ticket.kwargs


def after_call(
    request_kwargs: Mapping[str, Any],
    input_tokens: int,
    output_tokens: int,
    attribution: Mapping[str, str] | None = None,
    *,
    provider: str = "",
) -> None:
    """Count the call's actual cost (instead of its estimate) in its session's tally."""
    guard = get_guard()
    attribution = current_attribution() if attribution is None else attribution
    session_id = attribution.get(attrs.SESSION) or attribution.get(attrs.ROOT_ID) or None
    ticket = Ticket(
        dict(request_kwargs),
        Decision("allow"),
        guard.estimate(request_kwargs, provider),
        session_id,
        str(request_kwargs.get("model") or ""),
    )
    guard.settle(ticket, input_tokens, output_tokens, provider)


def usage_tokens(response: Any) -> tuple[int, int] | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    input_tokens = getattr(usage, "prompt_tokens", None)
    if input_tokens is not None:  # OpenAI: cached tokens are inside prompt_tokens
        return int(input_tokens), int(getattr(usage, "completion_tokens", 0) or 0)
    input_tokens = getattr(usage, "input_tokens", None)
    if input_tokens is None:
        return None
    # Anthropic reports input without the cache; count cache reads and writes in.
    extra = sum(
        int(getattr(usage, name, 0) or 0) for name in ("cache_read_input_tokens", "cache_creation_input_tokens")
    )
    return int(input_tokens) + extra, int(getattr(usage, "output_tokens", 0) or 0)


def guarded(func: F | None = None, *, provider: str = "", guard: Guard | None = None) -> Any:
    """Wrap an SDK method (``guarded(client.chat.completions.create)``) or decorate a
    function called with request kwargs: check before, settle the session tally after.

    While the call runs, the estimate sits in the OTel context, where
    ``BudgetSpanProcessor`` copies it onto the instrumentor's LLM span.
    """

    def decorate(fn: F) -> F:
        def begin(kwargs: dict[str, Any]) -> tuple[Guard, Ticket, object]:
            g = guard or get_guard()
            return enter(g, g.check(kwargs, provider=provider))

        async def begin_async(kwargs: dict[str, Any]) -> tuple[Guard, Ticket, object]:
            g = guard or get_guard()
            return enter(g, await g.check_async(kwargs, provider=provider))

        def enter(g: Guard, ticket: Ticket) -> tuple[Guard, Ticket, object]:
            mark_span(trace.get_current_span(), ticket)
            return g, ticket, otel_context.attach(otel_context.set_value(_ESTIMATE, ticket))

        def finish(g: Guard, ticket: Ticket, response: Any) -> None:
            tokens = usage_tokens(response)
            if tokens is not None:
                g.settle(ticket, *tokens, provider=provider)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                g, ticket, token = await begin_async(kwargs)
                try:
                    response = await fn(*args, **ticket.kwargs)
                finally:
                    otel_context.detach(token)  # type: ignore[arg-type]
                finish(g, ticket, response)
                return response

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g, ticket, token = begin(kwargs)
            try:
                response = fn(*args, **ticket.kwargs)
            finally:
                otel_context.detach(token)  # type: ignore[arg-type]
            if inspect.isawaitable(response):
                # An async SDK method behind a sync-looking proxy (e.g. an instrumentor's
                # wrapper): the call really runs when awaited, so settle then.
                return _settle_when_awaited(g, ticket, response)
            finish(g, ticket, response)
            return response

        async def _settle_when_awaited(g: Guard, ticket: Ticket, awaitable: Any) -> Any:
            token = otel_context.attach(otel_context.set_value(_ESTIMATE, ticket))
            try:
                response = await awaitable
            finally:
                otel_context.detach(token)
            finish(g, ticket, response)
            return response

        return cast(F, wrapper)

    return decorate(func) if func is not None else decorate


class BudgetSpanProcessor(PassiveSpanProcessor):
    """Copies a ``guarded`` call's estimate and decision onto the LLM span an
    instrumentor starts inside it. Add it to the SDK ``TracerProvider``
    (``provider.add_span_processor(BudgetSpanProcessor())``)."""

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        ticket = otel_context.get_value(_ESTIMATE, parent_context)
        attributes = getattr(span, "attributes", None) or {}
        if isinstance(ticket, Ticket) and attrs.GEN_AI_OPERATION_NAME in attributes:
            mark_span(span, ticket)
