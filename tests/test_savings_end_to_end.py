"""The savings finder end to end: the real ``openai`` and ``anthropic`` SDKs, instrumented,
against the stand-in; spans over OTLP into a real collector; ``featurecost report batch`` and
``cache-opportunity`` through its API. Token counts are read from what the stand-in served;
prices are the published ones (USD per million tokens): gpt-4o-mini 0.15 in / 0.60 out and
Batch API 0.075 / 0.30; claude-haiku-4-5 1 in / 0.10 cache read / 1.25 cache write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anthropic
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from typer.testing import CliRunner

import featurecost
from featurecost.collector.cli.app import app
from featurecost.instrumentation import _nested
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import RunningStandIn
from testsupport.harness import Collector, running_collector

pytestmark = pytest.mark.e2e

ENV = "savings-e2e"
MTOK = Decimal(1_000_000)
SYSTEM = "x" * 8192  # an 8,192-character system prompt: length class 8192, about 2,048 tokens


@pytest.fixture
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("savings-e2e")
    with running_collector(base / "data", base / "logs") as running:
        yield running


def report(collector: Collector, name: str) -> list[dict[str, str]]:
    now = datetime.now(UTC)
    since, until = (now - timedelta(days=7)).isoformat(), (now + timedelta(minutes=1)).isoformat()
    args = ["report", name, "--api", collector.api_url, "--env", ENV, "--format", "json", "--since", since,
            "--until", until]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, str]] = json.loads(result.stdout)["rows"]
    return rows


def test_instrumented_calls_become_batch_and_cache_opportunities(
    collector: Collector, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_nested, "_server_spans_seen", False)
    provider = TracerProvider(resource=Resource.create({"deployment.environment.name": ENV}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces")))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    try:
        gpt = openai.OpenAI(base_url=f"{stand_in.url}/v1", api_key="sk-test", max_retries=0)
        claude = anthropic.Anthropic(base_url=stand_in.url, api_key="sk-ant-test", max_retries=0)
        tracer = provider.get_tracer("app")
        chat = [{"role": "user", "content": "Summarize yesterday's tickets."}]
        # the app's requests are traced
        with (
            tracer.start_as_current_span("GET /tickets", kind=SpanKind.SERVER),
            featurecost.attribute(feature="support-bot"),
        ):
            gpt.chat.completions.create(model="gpt-4o-mini", messages=chat)  # type: ignore[arg-type]
        with featurecost.attribute(feature="nightly-digest"):  # a job: no request around it
            gpt.chat.completions.create(model="gpt-4o-mini", messages=chat)  # type: ignore[arg-type]
        digest_usage = stand_in.served[-1]["usage"]
        with (
            tracer.start_as_current_span("POST /answer", kind=SpanKind.SERVER),
            featurecost.attribute(feature="answer"),
        ):
            for question in ("a", "b", "c"):  # one system prompt, no cache_control: never cached
                claude.messages.create(model="claude-haiku-4-5", max_tokens=32, system=SYSTEM,
                                       messages=[{"role": "user", "content": question}])  # fmt: skip
        answer_usage = [s["usage"] for s in stand_in.served[-3:]]
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        provider.shutdown()
    collector.wait_for_calls(5)

    batch = {r["feature"]: r for r in report(collector, "batch")}
    assert set(batch) == {"nightly-digest"}  # support-bot ran inside a request, answer too
    standard = digest_usage["prompt_tokens"] * Decimal("0.15") + digest_usage["completion_tokens"] * Decimal("0.60")
    digest = batch["nightly-digest"]
    assert digest["basis"] == ["no parent span"]
    assert Decimal(digest["standard_usd"]) == standard / MTOK
    assert Decimal(digest["saving_usd"]) == standard / 2 / MTOK

    cache = {r["feature"]: r for r in report(collector, "cache-opportunity")}
    answer = cache["answer"]
    assert all(u["cache_read_input_tokens"] == 0 for u in answer_usage)
    assert all(u["input_tokens"] >= 2048 for u in answer_usage)  # the whole prefix fits in every call
    assert (answer["repeated_prefix_calls"], answer["cacheable_tokens"]) == (2, 4096)
    # two reads instead of input, one write at the write premium
    assert Decimal(answer["saving_usd"]) == (4096 * Decimal("0.90") - 2048 * Decimal("0.25")) / MTOK
    assert cache["nightly-digest"]["fingerprinted_calls"] == 0  # no system prompt, no fingerprint
