"""The savings finder through a real collector: spans over OTLP from the OpenTelemetry SDK,
the batch opportunity on the built-in page (headless Chromium), and ``report whatif`` through
the collector's report API — numbers worked out by hand from gpt-4o-mini's published prices
(USD per million tokens: 0.15 in / 0.60 out, Batch API 0.075 / 0.30) and gpt-4o's (2.50 / 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from tests.collector.api.headless import rendered_dom
from testsupport.harness import Collector, running_collector

ENV = "savings-test"
# feature, featurecost.latency (None: not set), input tokens, output tokens
CALLS = [
    # no parent span: 1M in + 100k out = 0.15 + 0.06 = 0.21 standard, 0.075 + 0.03 = 0.105 batch
    ("nightly-digest", "background", 1_000_000, 100_000),
    ("support-bot", None, 1_000_000, 100_000),  # a user waits for this one
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("savings")
    with running_collector(base / "data", base / "logs") as running:
        provider = TracerProvider(resource=Resource.create({"deployment.environment.name": ENV}))
        exporter = OTLPSpanExporter(endpoint=f"{running.otlp_endpoint}/v1/traces")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("savings-test")
        for feature, latency, input_tokens, output_tokens in CALLS:
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.input_tokens": input_tokens,
                        "gen_ai.usage.output_tokens": output_tokens,
                        "featurecost.feature": feature,
                    }
                )
                if latency is not None:
                    span.set_attribute("featurecost.latency", latency)
        provider.shutdown()
        running.wait_for_calls(len(CALLS))
        yield running


def page_window() -> tuple[datetime, datetime]:
    """The window the page asks for with days=7: seven whole UTC days ending tomorrow 00:00."""
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return until - timedelta(days=7), until


def test_page_shows_the_top_savings(collector: Collector) -> None:
    since, until = page_window()
    params = {"since": since.isoformat(), "until": until.isoformat(), "environment": ENV, "n": "3"}
    answer = httpx.get(f"{collector.api_url}/api/v1/reports/opportunities", params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    assert [(r["kind"], r["feature"], Decimal(r["saving_per_week_usd"])) for r in rows] == [
        ("batch", "nightly-digest", Decimal("0.105"))  # a 7-day window: the saving is the weekly one
    ]
    dom = rendered_dom(f"{collector.api_url}/?environment={ENV}&days=7")
    assert 'data-ready="true"' in dom
    row = dom.split('data-saving-row="batch nightly-digest"', 1)[1].split("</tr>", 1)[0]
    assert '<td data-key="saving_per_week_usd">$0.105000</td>' in row
    assert "Batch API" in row
    assert 'data-saving-row="batch support-bot"' not in dom


def test_whatif_through_the_report_api(collector: Collector) -> None:
    since, until = page_window()
    args = ["report", "whatif", "--api", collector.api_url, "--env", ENV, "--since", since.isoformat(),
            "--until", until.isoformat(), "--feature", "support-bot"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--model", "openai/gpt-4o", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert Decimal(payload["totals"]["actual_usd"]) == Decimal("0.21")
    assert Decimal(payload["totals"]["whatif_usd"]) == Decimal("3.5")  # 2.50 + 100k x 10 / 1M
    assert "tokenizer" in payload["caveat"]
    bad = CliRunner().invoke(app, [*args, "--model", "openai/gpt-9-imaginary"])
    assert bad.exit_code == 2  # the API's 400: a usage error, as for a bad option
    assert "gpt-9-imaginary" in " ".join(bad.output.replace("│", " ").split())  # the API's 400 message


def test_page_reprices_a_feature_at_another_model(collector: Collector) -> None:
    dom = rendered_dom(f"{collector.api_url}/?environment={ENV}&days=7&feature=support-bot&whatif=openai/gpt-4o")
    assert 'data-ready="true"' in dom
    box = dom.split('<div id="whatif" data-state="loaded">', 1)[1].split("</div>", 1)[0]
    # 1M in + 100k out: 0.21 at gpt-4o-mini, 2.50 + 1.00 at gpt-4o
    assert "1 calls: $0.210000 actual → $3.500000 at openai/gpt-4o" in box
    assert "tokenizer" in box
    bad = rendered_dom(
        f"{collector.api_url}/?environment={ENV}&days=7&feature=support-bot&whatif=openai/gpt-9-imaginary"
    )
    error = bad.split('<div id="whatif" data-state="error">', 1)[1].split("</div>", 1)[0]
    assert "openai/gpt-9-imaginary" in error
