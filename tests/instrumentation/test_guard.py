"""The budget guard on its own: estimates, the in-process session cap, and failing open or
closed when the collector cannot answer. Decisions from a real collector are covered in
tests/collector/budgets/test_in_collector.py."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import featurecost
from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation.attribution import current_attribution as featurecost_attribution
from featurecost.instrumentation.guard import BudgetExceeded, Guard, Price, estimate_tokens
from tests.conftest import RunningStandIn, Spans, serve_in_thread
from testsupport.harness import free_port

MINI = Price(Decimal("0.15"), Decimal("0.60"))


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session(name: str, feature: str = "support-bot") -> dict[str, str]:
    return {attrs.FEATURE: feature, attrs.SESSION: name, attrs.TENANT: "acme"}


def test_estimate_counts_message_text_and_the_output_cap() -> None:
    kwargs = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "x" * 400},
            {"role": "user", "content": [{"type": "text", "text": "y" * 41}]},
        ],
        "max_completion_tokens": 500,
    }
    assert estimate_tokens(kwargs) == (111, 500)
    assert estimate_tokens({"system": "abcd", "messages": []}, default_output_tokens=64) == (1, 64)
    guard = Guard(prices={"gpt-4o-mini": MINI})
    # 111 tokens at $0.15/M + 500 at $0.60/M
    assert guard.estimate(kwargs) == Decimal("0.00031665")
    assert Guard().estimate(kwargs) is None  # no price known: no number rather than $0


def test_session_cap_refuses_the_call_that_would_cross_it() -> None:
    guard = Guard(prices={"gpt-4o-mini": MINI}, session_cap_usd=Decimal("0.001"), default_output_tokens=1000)
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    first = guard.check(request, session("s-1"))  # estimate ≈ $0.00060015
    assert first.estimate_usd is not None
    assert first.decision.source == "not-configured"
    # The provider reported fewer tokens than estimated: the tally keeps the actual cost.
    assert guard.settle(first, 10, 100) == Decimal("0.0000615")
    assert guard.session_spend("s-1") == Decimal("0.0000615")
    guard.check(request, session("s-1"))
    with pytest.raises(BudgetExceeded, match="session s-1 has used") as refused:
        guard.check(request, session("s-1"))
    assert refused.value.reason == "session-cap"
    assert refused.value.remaining_usd is not None
    assert refused.value.remaining_usd < Decimal("0.0006")
    guard.check(request, session("s-2"))  # other sessions are untouched


def test_session_tally_forgets_the_oldest_sessions() -> None:
    guard = Guard(prices={"m": MINI}, session_cap_usd=Decimal(1), max_sessions=2)
    for name in ("a", "b", "c"):
        guard.check({"model": "m", "messages": []}, session(name))
    assert guard.session_spend("a") == Decimal(0)
    assert guard.session_spend("c") > 0


def test_unreachable_collector_fails_open_and_remembers_briefly() -> None:
    ticks = Ticks()
    guard = Guard(f"http://127.0.0.1:{free_port()}", clock=ticks, error_ttl=5, fetch_prices=False)
    ticket = guard.check({"model": "gpt-4o-mini", "messages": []}, session("s"))
    assert (ticket.decision.verdict, ticket.decision.source) == ("allow", "fail-open")
    guard.check({"model": "gpt-4o-mini", "messages": []}, session("s"))
    assert guard.api_requests == 1  # the failure is cached for error_ttl
    ticks.now += 5.1
    guard.check({"model": "gpt-4o-mini", "messages": []}, session("s"))
    assert guard.api_requests == 2


def test_fail_closed_refuses_without_a_decision() -> None:
    guard = Guard(f"http://127.0.0.1:{free_port()}", fail_closed=True, fetch_prices=False)
    with pytest.raises(BudgetExceeded, match="fails closed") as refused:
        guard.check({"model": "gpt-4o-mini", "messages": []}, session("s"))
    assert refused.value.reason == "unavailable"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURECOST_BUDGET_API", "http://collector:8787/")
    monkeypatch.setenv("FEATURECOST_BUDGET_FAIL_CLOSED", "true")
    monkeypatch.setenv("FEATURECOST_BUDGET_TTL", "12.5")
    monkeypatch.setenv("FEATURECOST_BUDGET_SESSION_CAP_USD", "0.25")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=x,deployment.environment.name=staging")
    guard = Guard.from_env()
    assert guard.api_url == "http://collector:8787"
    assert guard.fail_closed is True
    assert guard.ttl == 12.5
    assert guard.session_cap_usd == Decimal("0.25")
    assert guard.scope_of({}) == {"feature": "unattributed", "tenant": "", "user": "", "environment": "staging"}
    monkeypatch.setenv("FEATURECOST_BUDGET_SESSION_CAP_USD", "lots")
    with pytest.raises(ValueError, match="FEATURECOST_BUDGET_SESSION_CAP_USD"):
        Guard.from_env()


def test_instrumentor_hook_marks_the_current_span_and_settles(spans: Spans) -> None:
    from featurecost.instrumentation import guard as guard_module

    guard = Guard(prices={"gpt-4o-mini": MINI}, session_cap_usd=Decimal(1))
    previous = guard_module.configure(guard)
    try:
        tracer = spans.provider.get_tracer("test")
        request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 100}
        with featurecost.attribute(feature="support-bot", session="conv-9"), tracer.start_as_current_span("chat"):
            sent = guard_module.check_before_call(request, provider="openai")
            guard_module.after_call(sent, 12, 30, provider="openai")
    finally:
        guard_module.configure(Guard())
    assert previous is guard
    assert sent == request
    (span,) = spans.finished()
    assert span.attributes is not None
    # 10 tokens in, 100 out
    assert span.attributes[attrs.BUDGET_ESTIMATE_USD] == "0.0000615"
    assert span.attributes[attrs.BUDGET_DECISION] == "allow"
    assert attrs.BUDGET_DEGRADED not in span.attributes
    assert guard.session_spend("conv-9") == Decimal("0.0000198")  # 12 in, 30 out: the actual


def test_async_calls_ask_the_collector_without_blocking_the_event_loop(
    stand_in: RunningStandIn, instrumented: Spans
) -> None:
    """A decision not cached yet is fetched off the event loop: the loop keeps running the
    app's other tasks meanwhile (here, the one that lets the decision API answer)."""
    from featurecost.instrumentation import guard as guard_module

    asked, answer = threading.Event(), threading.Event()

    async def decision(request: Request) -> Response:
        asked.set()
        await asyncio.to_thread(answer.wait, 10)
        return JSONResponse({"decision": "allow", "budget": None})

    client = openai.AsyncOpenAI(base_url=f"{stand_in.url}/v1", api_key="k", max_retries=0)

    async def app() -> Any:
        call = asyncio.create_task(
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        )
        # runs only if the call's decision fetch leaves the loop free; else the guard times out
        assert await asyncio.to_thread(asked.wait, 10)
        answer.set()
        return await call

    with serve_in_thread(Starlette(routes=[Route("/api/v1/budgets/decision", decision)])) as url:
        guard = guard_module.configure(Guard(url, environment="test", fetch_prices=False, timeout=5))
        try:
            with featurecost.attribute(feature="support-bot", tenant="acme"):
                asyncio.run(app())
                cached = guard.decision(guard.scope_of(featurecost_attribution()))
        finally:
            guard_module.configure(Guard())
    assert (cached.verdict, cached.source) == ("allow", "collector")  # answered, not failed open
    assert guard.api_requests == 1
    (span,) = instrumented.llm()
    assert (span.attributes or {})[attrs.BUDGET_DECISION] == "allow"
