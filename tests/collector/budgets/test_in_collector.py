"""Budgets end to end: a collector subprocess with a budgets file, seeded with real OTLP
spans from the instrumented OpenAI SDK; the guard asks its decision API, the alerts reach
a real local webhook, and `featurecost budgets status` reads it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

import featurecost
from featurecost.collector.cli.app import app
from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation.guard import (
    BudgetExceeded,
    BudgetSpanProcessor,
    Decision,
    Guard,
    estimate_tokens,
    guarded,
)
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn
from testsupport.budgets import Receiver
from testsupport.harness import Collector, start_collector, wait_until
from testsupport.servers import serve_in_thread

pytestmark = pytest.mark.e2e

ENV = "guard-e2e"


@dataclass
class Stack:
    collector: Collector
    receiver: Receiver
    memory: InMemorySpanExporter
    client: openai.OpenAI
    stand_in: RunningStandIn


def budgets_file(path: Path, hook: str) -> Path:
    path.write_text(
        f"""
budgets:
  - name: expensive-daily
    scope: {{feature: expensive, environment: {ENV}}}
    period: day
    limit_usd: "0.000001"
  - name: pricey-watch
    scope: {{feature: pricey, environment: {ENV}}}
    period: day
    limit_usd: "0.000001"
    enforce: false
  - name: private-monthly
    scope: {{feature: private, environment: {ENV}}}
    period: month
    limit_usd: "100"
alerts:
  rules: {{regressions: false, anomalous_sessions: false}}
  webhooks:
    - url: {hook}
      format: slack
"""
    )
    return path


def decision(collector: Collector, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{collector.api_url}/api/v1/budgets/decision", params={"environment": ENV, **params})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from testsupport.stand_ins.openai_anthropic import StandIn

    base = tmp_path_factory.mktemp("budgets-e2e")
    receiver = Receiver()
    provider_stand_in = StandIn()
    with serve_in_thread(receiver.app()) as hook_url, serve_in_thread(provider_stand_in.app()) as llm_url:
        path = budgets_file(base / "budgets.yaml", f"{hook_url}/hook")
        collector = start_collector(
            base / "data", base / "logs", ["--budgets-file", str(path), "--budget-interval", "0.2"]
        )
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"deployment.environment.name": ENV}))
        provider.add_span_processor(BudgetSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces"))
        )
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url=f"{llm_url}/v1", api_key="sk-test", max_retries=0)
        try:
            # Seed: one real call per budget scope, exported over OTLP to the collector.
            for feature, model in (
                ("expensive", "gpt-4o-mini"),
                ("pricey", "gpt-4o-mini"),
                ("private", "acme-private-llm"),
            ):
                with featurecost.attribute(feature=feature, tenant="acme", session=f"seed-{feature}"):
                    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "seed"}])
            collector.wait_for_calls(3)

            def evaluated_after_seeding() -> bool:
                # The snapshot read may predate the last stored call: wait for one that shows all three.
                return (
                    decision(collector, feature="expensive")["decision"] == "deny"
                    and decision(collector, feature="pricey")["decision"] == "soft"
                    and decision(collector, feature="private")["unpriced_calls"] == 1
                )

            wait_until(evaluated_after_seeding, 60, "an evaluation that saw every seeded call")
            yield Stack(collector, receiver, memory, client, RunningStandIn(llm_url, provider_stand_in))
        finally:
            OpenAIInstrumentor().uninstrument()
            provider.shutdown()
            assert collector.process.stop() == 0, collector.process.log()


def test_deny_raises_before_the_provider_is_called(stack: Stack) -> None:
    guard = Guard(stack.collector.api_url, environment=ENV)
    served = len(stack.stand_in.served)
    create = guarded(stack.client.chat.completions.create, provider="openai", guard=guard)
    with featurecost.attribute(feature="expensive", tenant="acme"), pytest.raises(BudgetExceeded) as refused:
        create(model="gpt-4o-mini", messages=[{"role": "user", "content": "one more"}])
    assert refused.value.reason == "budget"
    assert refused.value.budget == "expensive-daily"
    assert refused.value.remaining_usd == Decimal(0)
    assert "expensive-daily" in str(refused.value)
    assert "hard limit" in str(refused.value)
    assert len(stack.stand_in.served) == served


def test_soft_limit_callback_degrades_the_call(stack: Stack) -> None:
    seen: list[Decision] = []

    def cheaper(decision: Decision, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.append(decision)
        return {**kwargs, "model": "gpt-4o-mini", "max_completion_tokens": 16}

    guard = Guard(stack.collector.api_url, environment=ENV, on_soft=cheaper)
    create = guarded(stack.client.chat.completions.create, provider="openai", guard=guard)
    messages = [{"role": "user", "content": "please write me a long essay about budgets"}]
    with featurecost.attribute(feature="pricey", tenant="acme", session="soft-1"):
        response = create(model="gpt-4.1-mini", messages=messages, max_completion_tokens=2000)
    assert [d.verdict for d in seen] == ["soft"]
    assert seen[0].budget == "pricey-watch"
    served = stack.stand_in.served[-1]
    assert served["model"].startswith("gpt-4o-mini")
    assert response.usage is not None
    assert response.usage.completion_tokens <= 16

    span = stack.memory.get_finished_spans()[-1]
    assert span.attributes is not None
    assert span.attributes[attrs.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert span.attributes[attrs.BUDGET_DECISION] == "soft"
    assert span.attributes[attrs.BUDGET_DEGRADED] is True
    # The estimate (published gpt-4o-mini prices, fetched from the collector) sits beside the usage.
    input_tokens, output_tokens = estimate_tokens({"messages": messages, "max_completion_tokens": 16})
    expected = (input_tokens * Decimal("0.15") + output_tokens * Decimal("0.60")) / 1_000_000
    assert Decimal(str(span.attributes[attrs.BUDGET_ESTIMATE_USD])) == expected
    assert span.attributes[attrs.GEN_AI_USAGE_INPUT_TOKENS] == served["usage"]["prompt_tokens"]
    # The session tally now holds the actual cost, not the estimate.
    actual = (
        served["usage"]["prompt_tokens"] * Decimal("0.15") + served["usage"]["completion_tokens"] * Decimal("0.60")
    ) / 1_000_000
    assert guard.session_spend("soft-1") == actual


def test_allowed_decisions_are_cached_for_the_ttl(stack: Stack) -> None:
    ticks = [0.0]
    guard = Guard(stack.collector.api_url, environment=ENV, ttl=30, clock=lambda: ticks[0], fetch_prices=False)
    with featurecost.attribute(feature="cheap", tenant="acme"):
        for _ in range(3):
            assert guard.check({"model": "gpt-4o-mini", "messages": []}).decision.verdict == "allow"
        assert guard.api_requests == 1
        ticks[0] = 30.5
        guard.check({"model": "gpt-4o-mini", "messages": []})
        assert guard.api_requests == 2
    with featurecost.attribute(feature="expensive", tenant="acme"), pytest.raises(BudgetExceeded):
        guard.check({"model": "gpt-4o-mini", "messages": []})  # another scope: asked, denied
    assert guard.api_requests == 3


def test_decision_lists_the_budgets_and_their_unpriced_calls(stack: Stack) -> None:
    private = decision(stack.collector, feature="private", tenant="acme")
    assert private["decision"] == "allow"
    assert private["unpriced_calls"] == 1
    (budget,) = private["budgets"]
    assert budget["budget"] == "private-monthly"
    assert budget["calls"] == 1
    assert Decimal(budget["spend_usd"]) == 0
    other_env = httpx.get(
        f"{stack.collector.api_url}/api/v1/budgets/decision", params={"feature": "expensive", "environment": "prod"}
    ).json()
    assert other_env["decision"] == "allow"


def test_alerts_reach_the_webhook_once(stack: Stack) -> None:
    def evaluated_at() -> datetime:
        return datetime.fromisoformat(
            httpx.get(f"{stack.collector.api_url}/api/v1/budgets/status").json()["evaluated_at"]
        )

    wait_until(lambda: len(stack.receiver.received) >= 3, 60, "three alerts at the webhook")
    # Let several more evaluations run (0.2 s apart): none may deliver the same alert again.
    later = evaluated_at() + timedelta(seconds=1)
    wait_until(lambda: evaluated_at() > later, 60, "five more evaluations")
    titles = sorted(r["body"]["text"].split("\n")[0] for r in stack.receiver.received)
    assert len(titles) == 3, titles
    assert titles[0].startswith("Budget expensive-daily: hard limit reached (")
    assert titles[1].startswith("Budget pricey-watch: hard limit reached (")
    assert titles[2] == "Budget private-monthly: 1 unpriced calls"
    first = stack.receiver.received[0]["body"]
    assert set(first) == {"text", "blocks"}


def test_budgets_status_and_alerts_cli_read_the_collector(stack: Stack) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["budgets", "status", "--api", stack.collector.api_url])
    assert result.exit_code == 0, result.output
    assert "expensive-daily" in result.output
    assert "hard" in result.output
    assert "private-monthly: 1 unpriced calls are not in the spend" in result.output
    as_json = runner.invoke(app, ["budgets", "status", "--api", stack.collector.api_url, "--format", "json"])
    levels = {b["budget"]: b["level"] for b in json.loads(as_json.output)["budgets"]}
    assert levels == {"expensive-daily": "hard", "pricey-watch": "hard", "private-monthly": "ok"}
    alerts = runner.invoke(app, ["budgets", "alerts", "--api", stack.collector.api_url, "--format", "json"])
    assert alerts.exit_code == 0, alerts.output
    assert {a["status"] for a in json.loads(alerts.output)} <= {"delivered", "pending"}


def test_async_clients_are_guarded_too(stack: Stack) -> None:
    guard = Guard(stack.collector.api_url, environment=ENV)
    client = openai.AsyncOpenAI(base_url=f"{stack.stand_in.url}/v1", api_key="sk-test", max_retries=0)
    create = guarded(client.chat.completions.create, provider="openai", guard=guard)

    async def ask(feature: str) -> Any:
        with featurecost.attribute(feature=feature, session=f"async-{feature}"):
            return await create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])

    response = asyncio.run(ask("cheap"))
    assert response.usage is not None
    span = stack.memory.get_finished_spans()[-1]
    assert span.attributes is not None
    assert span.attributes[attrs.BUDGET_DECISION] == "allow"
    assert (
        Decimal(str(span.attributes[attrs.BUDGET_ESTIMATE_USD]))
        == (2 * Decimal("0.15") + 256 * Decimal("0.60")) / 1_000_000
    )
    assert (
        guard.session_spend("async-cheap")
        == (response.usage.prompt_tokens * Decimal("0.15") + response.usage.completion_tokens * Decimal("0.60"))
        / 1_000_000
    )
    with pytest.raises(BudgetExceeded, match="expensive-daily"):
        asyncio.run(ask("expensive"))


def test_without_a_budgets_file_every_call_is_allowed() -> None:
    from starlette.applications import Starlette

    from featurecost.collector.api.budgets import budget_routes

    with serve_in_thread(Starlette(routes=budget_routes(None))) as url:
        guard = Guard(url, environment=ENV, fetch_prices=False)
        ticket = guard.check({"model": "gpt-4o-mini", "messages": []}, {attrs.FEATURE: "expensive"})
        assert (ticket.decision.verdict, ticket.decision.source) == ("allow", "collector")
        assert httpx.get(f"{url}/api/v1/budgets/status").status_code == 404


@pytest.fixture
def process_guard(stack: Stack) -> Iterator[Guard]:
    """The process-wide guard the instrumentors consult, reset after the test."""
    from featurecost.instrumentation import guard as guard_module

    configured = guard_module.configure(
        Guard(stack.collector.api_url, environment=ENV, on_soft=lambda d, kw: {**kw, "model": "gpt-4.1-nano"})
    )
    yield configured
    guard_module._default = None


def test_instrumented_call_is_refused_by_the_configured_guard(stack: Stack, process_guard: Guard) -> None:
    served = len(stack.stand_in.served)
    with featurecost.attribute(feature="expensive", tenant="acme"), pytest.raises(BudgetExceeded):
        stack.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert len(stack.stand_in.served) == served  # the provider never saw the call


def test_instrumented_call_is_degraded_at_a_soft_limit(stack: Stack, process_guard: Guard) -> None:
    stack.memory.clear()
    with featurecost.attribute(feature="pricey", tenant="acme"):
        stack.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert stack.stand_in.served[-1]["model"] == "gpt-4.1-nano"
    (span,) = [s for s in stack.memory.get_finished_spans() if s.attributes and "gen_ai.operation.name" in s.attributes]
    assert span.attributes is not None
    assert span.attributes[attrs.BUDGET_DECISION] == "soft"
    assert span.attributes[attrs.BUDGET_DEGRADED] is True
    assert Decimal(str(span.attributes[attrs.BUDGET_ESTIMATE_USD])) > 0
    assert span.attributes["gen_ai.request.model"] == "gpt-4.1-nano"  # what was actually sent


def test_other_sdk_instrumentors_consult_the_guard_too(stack: Stack, process_guard: Guard) -> None:
    import cohere

    from featurecost.instrumentation.cohere import CohereInstrumentor
    from testsupport.stand_ins.cohere import CohereStandIn

    co = CohereStandIn()
    CohereInstrumentor().instrument()
    try:
        with serve_in_thread(co.app()) as url:
            client = cohere.ClientV2(api_key="test-key", base_url=url)
            messages: Any = [{"role": "user", "content": "hi"}]
            with featurecost.attribute(feature="expensive", tenant="acme"), pytest.raises(BudgetExceeded):
                client.chat(model="command-a-03-2025", messages=messages)
            with featurecost.attribute(feature="private", tenant="acme"):
                client.chat(model="command-a-03-2025", messages=messages)
    finally:
        CohereInstrumentor().uninstrument()
    assert len(co.served) == 1  # only the allowed call reached the provider


def test_bedrock_instrumentor_consults_the_guard(stack: Stack) -> None:
    import boto3
    import botocore.client

    from featurecost.instrumentation import guard as guard_module
    from featurecost.instrumentation.bedrock import BedrockInstrumentor
    from testsupport.stand_ins.bedrock import BedrockStandIn

    haiku, llama = "us.anthropic.claude-haiku-4-5-20251001-v1:0", "meta.llama3-1-8b-instruct-v1:0"
    guard_module.configure(
        Guard(stack.collector.api_url, environment=ENV, on_soft=lambda d, kw: {**kw, "model": llama})
    )
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    stand_in = BedrockStandIn()
    messages: Any = [{"role": "user", "content": [{"text": "hi"}]}]
    invoke_body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16, "messages": messages})
    BedrockInstrumentor().instrument(tracer_provider=provider)
    try:
        with serve_in_thread(stand_in.app()) as url:
            client = boto3.client(
                "bedrock-runtime",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                config=botocore.client.Config(retries={"max_attempts": 1}),
            )
            with featurecost.attribute(feature="expensive", tenant="acme"):
                with pytest.raises(BudgetExceeded):
                    client.converse(modelId=haiku, messages=messages)
                with pytest.raises(BudgetExceeded):
                    client.invoke_model(modelId=haiku, body=invoke_body)
                with pytest.raises(BudgetExceeded):
                    client.converse_stream(modelId=haiku, messages=messages)
            assert stand_in.served == []  # denied calls never reached the provider
            assert memory.get_finished_spans() == ()  # and no span bills them

            with featurecost.attribute(feature="private", tenant="acme"):
                client.converse(modelId=haiku, messages=messages)
                client.invoke_model(modelId=haiku, body=invoke_body)
            with featurecost.attribute(feature="pricey", tenant="acme"):
                client.converse(modelId=haiku, messages=messages)
    finally:
        BedrockInstrumentor().uninstrument()
        guard_module._default = None
    assert len(stand_in.served) == 3
    allowed_converse, allowed_invoke, degraded = memory.get_finished_spans()
    for span in (allowed_converse, allowed_invoke):
        assert span.attributes is not None
        assert span.attributes[attrs.BUDGET_DECISION] == "allow"
        assert span.attributes[attrs.GEN_AI_REQUEST_MODEL] == haiku
    assert degraded.attributes is not None
    assert degraded.attributes[attrs.BUDGET_DECISION] == "soft"
    assert degraded.attributes[attrs.BUDGET_DEGRADED] is True
    assert degraded.attributes[attrs.GEN_AI_REQUEST_MODEL] == llama  # the model the request was sent to
