"""The whole path with real processes: the sample app (real SDKs, instrumented from
outside by ``opentelemetry-instrument``) → real OTLP exporter → collector (WAL, chDB)
→ report API. Expected numbers are computed here from what the provider stand-in
served and the providers' published prices, not by featurecost's pricing code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
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

import featurecost
from featurecost.instrumentation.openai import OpenAIInstrumentor
from testsupport.harness import (
    Collector,
    StandIn,
    app_environment,
    run_instrumented,
    start_collector,
    start_stand_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# USD per million tokens, from the providers' public price pages:
# (input, cached input read, cache write, output)
PUBLISHED = {
    "gpt-4o-mini-2024-07-18": (Decimal("0.15"), Decimal("0.075"), None, Decimal("0.60")),
    "gpt-4.1-mini-2025-04-14": (Decimal("0.40"), Decimal("0.10"), None, Decimal("1.60")),
    "claude-haiku-4-5-20251001": (Decimal("1"), Decimal("0.10"), Decimal("1.25"), Decimal("5")),
    "claude-sonnet-4-6": (Decimal("3"), Decimal("0.30"), Decimal("3.75"), Decimal("15")),
}


@dataclass
class Expected:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal = Decimal(0)


def expected_by_feature(served: list[dict[str, Any]]) -> dict[str, Expected]:
    result: dict[str, Expected] = defaultdict(Expected)
    for response in served:
        usage = response["usage"]
        price_in, price_read, price_write, price_out = PUBLISHED[response["model"]]
        if response["provider"] == "anthropic":
            feature = "summarize-thread"
            uncached, read, write = (
                usage["input_tokens"],
                usage["cache_read_input_tokens"],
                usage["cache_creation_input_tokens"],
            )
            output = usage["output_tokens"]
        else:
            feature = "support-bot" if response["system"].startswith("You are the support") else "draft-email"
            read, write = usage["prompt_tokens_details"]["cached_tokens"], 0
            uncached = usage["prompt_tokens"] - read
            output = usage["completion_tokens"]
        e = result[feature]
        e.calls += 1
        e.input_tokens += uncached + read + write
        e.output_tokens += output
        e.cache_read_tokens += read
        e.cache_write_tokens += write
        dollars_per_m = uncached * price_in + read * price_read + write * (price_write or 0) + output * price_out
        e.cost += dollars_per_m / 1_000_000
    return dict(result)


def report(collector: Collector, environment: str = "production") -> dict[str, dict[str, Any]]:
    response = httpx.get(
        f"{collector.api_url}/api/v1/reports/feature-costs", params={"environment": environment}, timeout=30
    )
    response.raise_for_status()
    return {row["feature"]: row for row in response.json()["rows"]}


@dataclass
class Stack:
    collector: Collector
    stand_in: StandIn
    log_dir: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("e2e")
    collector = start_collector(base / "data", base / "logs")
    stand_in = start_stand_in(base / "logs")
    try:
        yield Stack(collector, stand_in, base / "logs")
    finally:
        stand_in.process.stop()
        assert collector.process.stop() == 0, collector.process.log()


@pytest.fixture(scope="module")
def demo_run(stack: Stack) -> list[dict[str, Any]]:
    run_instrumented("demo.app", app_environment(stack.collector, stack.stand_in), stack.log_dir)
    stack.collector.wait_drained()
    return stack.stand_in.served()


def test_feature_costs_match_what_the_providers_served(stack: Stack, demo_run: list[dict[str, Any]]) -> None:
    expected = expected_by_feature(demo_run)
    assert set(expected) == {"support-bot", "summarize-thread", "draft-email"}
    rows = report(stack.collector)
    assert set(rows) == set(expected)
    for feature, e in expected.items():
        row = rows[feature]
        assert row["calls"] == e.calls, feature
        assert row["input_tokens"] == e.input_tokens, feature
        assert row["output_tokens"] == e.output_tokens, feature
        assert row["cache_read_tokens"] == e.cache_read_tokens, feature
        assert row["cache_write_tokens"] == e.cache_write_tokens, feature
        assert Decimal(row["cost_usd"]) == e.cost, feature
        assert row["unpriced_calls"] == 0
    total = sum(e.cost for e in expected.values())
    assert sum(Decimal(r["share"]) for r in rows.values()) == pytest.approx(Decimal(1))
    assert Decimal(rows["summarize-thread"]["share"]) == pytest.approx(expected["summarize-thread"].cost / total)
    # caching happened, and both kinds of cache usage reached the table
    assert expected["support-bot"].cache_read_tokens > 0
    assert expected["summarize-thread"].cache_write_tokens > 0


def test_actions_and_sessions_group_the_call_chains(stack: Stack, demo_run: list[dict[str, Any]]) -> None:
    rows = report(stack.collector)
    # draft-email: outline → draft → polish, one action per topic and no session of its own
    assert rows["draft-email"]["calls"] == 3 * rows["draft-email"]["actions"]
    assert rows["draft-email"]["sessions"] == rows["draft-email"]["actions"]
    # support-bot: each turn is an action; two conversations (sessions) per user, 6 users
    assert rows["support-bot"]["actions"] == rows["support-bot"]["calls"]
    assert rows["support-bot"]["sessions"] == 12
    # summarize-thread: one action per user, several chunk calls plus a final one
    assert rows["summarize-thread"]["actions"] == 6
    assert rows["summarize-thread"]["calls"] > rows["summarize-thread"]["actions"]


def test_unknown_model_is_unpriced_not_free(stack: Stack, demo_run: list[dict[str, Any]]) -> None:
    env = app_environment(stack.collector, stack.stand_in, environment="staging")
    run_instrumented("tests.apps.unpriced_app", env, stack.log_dir)
    stack.collector.wait_drained()
    row = report(stack.collector, "staging")["private-model"]
    assert row["calls"] == 2
    assert row["unpriced_calls"] == 1
    assert any("acme-private-llm" in reason for reason in row["unpriced_reasons"])
    known = stack.stand_in.served()[-1]["usage"]
    assert (
        Decimal(row["cost_usd"])
        == (known["prompt_tokens"] * Decimal("0.15") + known["completion_tokens"] * Decimal("0.60")) / 1_000_000
    )
    assert "private-model" not in report(stack.collector)  # production stays separate


def test_redelivered_spans_count_once(stack: Stack, demo_run: list[dict[str, Any]]) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"deployment.environment.name": "redelivery"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=f"{stack.stand_in.url}/v1", api_key="sk-test", max_retries=0)
        with featurecost.attribute(feature="retried"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "once"}])
    finally:
        OpenAIInstrumentor().uninstrument()
    exporter = OTLPSpanExporter(endpoint=f"{stack.collector.otlp_endpoint}/v1/traces")
    spans = memory.get_finished_spans()
    for _ in range(3):  # an SDK retry after a lost ack, twice
        assert exporter.export(spans).name == "SUCCESS"
        stack.collector.wait_drained()
    row = report(stack.collector, "redelivery")["retried"]
    assert row["calls"] == 1
    served = stack.stand_in.served()[-1]["usage"]
    assert row["input_tokens"] == served["prompt_tokens"]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "application/x-protobuf"}, b"\xff\xff\xff\xff garbage", 400),
        ({"content-type": "application/x-protobuf", "content-encoding": "gzip"}, b"not gzip", 400),
        ({"content-type": "text/plain"}, b"hello", 415),
        ({"content-type": "application/x-protobuf"}, b"\x00" * (17 * 1024 * 1024), 413),
    ],
)
def test_bad_requests_get_4xx_and_the_collector_stays_up(
    stack: Stack, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = httpx.post(f"{stack.collector.otlp_endpoint}/v1/traces", content=body, headers=headers, timeout=30)
    assert response.status_code == status
    assert stack.collector.process.alive()
    assert httpx.get(f"{stack.collector.api_url}/healthz", timeout=5).status_code == 200


def test_stored_calls_survive_a_restart(tmp_path: Path) -> None:
    stand_in = start_stand_in(tmp_path / "logs")
    collector = start_collector(tmp_path / "data", tmp_path / "logs")
    try:
        run_instrumented("demo.app", app_environment(collector, stand_in), tmp_path / "logs")
        collector.wait_drained()
        before = report(collector)
        assert collector.process.stop() == 0
        collector = start_collector(tmp_path / "data", tmp_path / "logs")
        assert report(collector) == before
        assert sum(r["calls"] for r in before.values()) == len(stand_in.served())
    finally:
        stand_in.process.stop()
        collector.process.stop()
