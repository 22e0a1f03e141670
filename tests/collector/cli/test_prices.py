"""``featurecost prices unpriced|explain|reprice`` against a running collector (embedded chDB),
through its API: the user's loop of finding an unpriced model, adding it to the prices file and
re-pricing, without stopping ingest. ``--storage`` on the running collector's directory is a
one-line error; outliers name the span to explain; after the reprice no count says unpriced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from testsupport.cli import cli
from testsupport.harness import Collector, running_collector

FINE_TUNED = "ft:gpt-4o-mini:acme:notes:abc123"
BEFORE = """
prices:
  - model: acme-llama-70b
    provider: vllm
    input_mtok: "0.40"
    output_mtok: "0.40"
"""
AFTER = (
    BEFORE
    + f"""
  - model: "{FINE_TUNED}"
    provider: openai
    input_mtok: "0.30"
    output_mtok: "1.20"
"""
)


@dataclass
class Running:
    collector: Collector
    prices: Path


def send(collector: Collector) -> None:
    provider = TracerProvider(resource=Resource.create({"deployment.environment.name": "production"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces")))
    tracer = provider.get_tracer("tests.prices_cli_api")
    for model, tokens in ((FINE_TUNED, (2_000, 1_000)), ("gpt-4o-mini", (1_000, 100))):
        tracer.start_span(
            f"chat {model}",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": tokens[0],
                "gen_ai.usage.output_tokens": tokens[1],
                "featurecost.feature": "notes",
                "featurecost.tenant": "acme",
            },
        ).end()
    provider.shutdown()
    collector.wait_for_calls(2)
    collector.wait_drained()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("prices-api")
    prices = base / "prices.yaml"
    prices.write_text(BEFORE)
    with running_collector(base / "data", base / "logs", ["--prices-file", str(prices)]) as collector:
        send(collector)
        yield Running(collector, prices)


def feature_row(api: str) -> dict[str, object]:
    code, out, err = cli("report", "features", "--api", api, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return next(r for r in rows if r["feature"] == "notes")


def test_storage_on_a_running_collectors_directory_is_a_one_line_error(running: Running) -> None:
    dsn = f"chdb://{(running.collector.data_dir / 'clickhouse').resolve()}"
    code, out, err = cli("prices", "unpriced", "--storage", dsn)
    assert code == 1
    assert "in use by a running collector" in err
    assert "--api" in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) <= 2  # one message (wrapped at most once)


def test_find_explain_add_reprice_through_the_api(running: Running) -> None:
    api = running.collector.api_url
    code, out, err = cli("prices", "unpriced", "--api", api)
    assert code == 0, err
    assert FINE_TUNED in out  # copied from here into the prices file: must be exact

    before = feature_row(api)
    assert before["unpriced_calls"] == 1

    code, out, err = cli("report", "outliers", "--api", api, "--format", "json")
    assert code == 0, err
    # each call is its own user action here; the unpriced one is the fine-tune's
    (action,) = [a for a in json.loads(out)["rows"] if a["unpriced_calls"] == 1]
    assert len(action["span_id"]) == 16
    code, out, err = cli("prices", "explain", action["span_id"], "--api", api)
    assert code == 0, err
    assert "unpriced because" in out
    assert FINE_TUNED in out

    running.prices.write_text(AFTER)
    code, out, err = cli("prices", "reprice", "--since", "2026-01-01", "--api", api)
    assert code == 0, err
    assert "restated 1" in out
    assert "0 still unpriced" in out

    code, out, err = cli("prices", "unpriced", "--api", api)
    assert code == 0, err
    assert FINE_TUNED not in out
    assert "every model priced" in out
    after = feature_row(api)
    assert after["unpriced_calls"] == 0
    assert after["unpriced_reasons"] == []
    known = Decimal(1_000) * Decimal("0.15") / 1_000_000 + Decimal(100) * Decimal("0.60") / 1_000_000
    fine_tuned = Decimal(2_000) * Decimal("0.30") / 1_000_000 + Decimal(1_000) * Decimal("1.20") / 1_000_000
    assert Decimal(str(after["cost_usd"])) == known + fine_tuned

    # every report's unpriced count follows, from the rollups and from the raw calls alike
    for report, extra in (("weekly", []), ("breakdown", ["--by", "model"]), ("outliers", []), ("margin", [])):
        for source in ("rollup", "raw"):
            code, out, err = cli("report", report, *extra, "--source", source, "--api", api, "--format", "json")
            assert code == 0, (report, err)
            payload = json.loads(out)
            assert payload["rows"], (report, source)
            assert all(row["unpriced_calls"] == 0 for row in payload["rows"]), (report, source, payload["rows"])
            spend = sum(Decimal(row["spend_usd"]) for row in payload["rows"])
            assert spend == known + fine_tuned, (report, source)


def test_a_prices_file_argument_is_refused_through_the_api(running: Running) -> None:
    code, _, err = cli(
        "prices", "reprice", "--since", "2026-01-01", "--api", running.collector.api_url,
        "--prices-file", str(running.prices),
    )  # fmt: skip
    assert code == 2
    assert "started with" in " ".join(err.replace("│", " ").split())
