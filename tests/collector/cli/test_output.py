"""What the CLI prints, read through a running collector's API: names from spans are
data (never rich markup, emoji or terminal escapes), money and months read as such, headers
name the dimension, tables fit 120 columns, and errors and empty results say what to do."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from featurecost.collector.cli.output import escape_controls, money, plain_decimal
from testsupport.cli import cli
from testsupport.harness import Collector, free_port, running_collector

FINE_TUNED = "ft:gpt-4o-mini:acme:notes:abc123"
MARKUP_FEATURE = "[/bold]"
LINK_TENANT = "[link=https://evil.example]acme[/link]"
ESCAPE_USER = "mallory\x1b[2J\x1b[31m"


def send_calls(collector: Collector) -> None:
    """Calls with hostile names, over the real OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"deployment.environment.name": "production"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces")))
    tracer = provider.get_tracer("tests.cli_output")
    calls = [
        (MARKUP_FEATURE, LINK_TENANT, ESCAPE_USER, "gpt-4o-mini", 1_000_000, 10_000),
        ("support-bot", "", "u1", "gpt-4o-mini", 2_000, 100),
        ("notes", "acme", "u2", FINE_TUNED, 1_000, 50),  # unknown fine-tune: unpriced
    ]
    for feature, tenant, user, model, input_tokens, output_tokens in calls:
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "featurecost.feature": feature,
            "user.id": user,
        }
        if tenant:
            attributes["featurecost.tenant"] = tenant
        tracer.start_span(f"chat {model}", attributes=attributes).end()
    provider.shutdown()
    collector.wait_for_calls(len(calls))
    collector.wait_drained()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("cli-output")
    with running_collector(base / "data", base / "logs") as running:
        send_calls(running)
        yield running


def test_names_are_printed_literally(collector: Collector) -> None:
    code, out, err = cli("report", "features", "--api", collector.api_url)
    assert code == 0, err
    assert MARKUP_FEATURE in out  # no MarkupError, printed as written
    code, out, err = cli("report", "breakdown", "--by", "tenant", "--api", collector.api_url)
    assert code == 0, err
    assert "[link=https://evil.example]acme" in out  # the markup text itself, not a terminal link
    assert "\x1b]8;" not in out
    code, out, err = cli("report", "breakdown", "--by", "user", "--api", collector.api_url)
    assert code == 0, err
    assert "\x1b" not in out
    assert "mallory\\x1b[2J\\x1b[31m" in out
    code, out, err = cli("report", "breakdown", "--by", "model", "--api", collector.api_url)
    assert code == 0, err
    assert FINE_TUNED in out  # ":notes:" stays text, not 🎶


def test_headers_name_the_dimension_and_no_tenant_is_named(collector: Collector) -> None:
    code, out, err = cli("report", "breakdown", "--by", "tenant", "--api", collector.api_url)
    assert code == 0, err
    header = next(line for line in out.splitlines() if "feature" in line and "spend" in line)
    assert "tenant" in header
    assert "value" not in header
    assert "(no tenant)" in out


def test_money_in_tables_and_plain_decimals_in_csv_and_json(collector: Collector) -> None:
    code, out, err = cli("report", "breakdown", "--by", "tenant", "--api", collector.api_url)
    assert code == 0, err
    # 1M input + 10k output tokens of gpt-4o-mini: $0.15 + $0.006
    assert "$0.1560" in out
    code, out, err = cli("report", "breakdown", "--by", "tenant", "--format", "csv", "--api", collector.api_url)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert "tenant" in rows[0]
    spends = {row["tenant"]: row["spend_usd"] for row in rows}
    assert spends[LINK_TENANT] == "0.156"
    assert all("E" not in value for value in spends.values()), spends
    code, out, err = cli("report", "breakdown", "--by", "tenant", "--format", "json", "--api", collector.api_url)
    assert code == 0, err
    json_spends = {row["value"]: row["spend_usd"] for row in json.loads(out)["rows"]}
    assert json_spends[LINK_TENANT] == "0.156"


def test_drift_months_read_as_months(collector: Collector) -> None:
    code, out, err = cli("report", "drift", "--api", collector.api_url)
    assert code == 0, err
    assert "202," not in out
    assert any(f"20{yy}-" in out for yy in range(26, 40))


def test_tables_fit_120_columns(collector: Collector) -> None:
    for report in ("weekly", "features", "outliers", "decomposition", "cache", "margin", "unit-costs"):
        code, out, err = cli("report", report, "--api", collector.api_url)
        assert code == 0, (report, err)
        # the table's lines; a long reason or savings line below it stays one line to copy
        widest = max(len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└")
        assert widest <= 120, (report, widest, out)


def test_empty_results_say_what_they_mean(collector: Collector) -> None:
    code, out, err = cli("report", "regressions", "--api", collector.api_url)
    assert code == 0, err
    assert "no regressions" in out
    code, out, err = cli("report", "features", "--env", "prod", "--api", collector.api_url)
    assert code == 0, err
    assert "no calls in environment prod" in out
    assert "production" in out  # what was seen instead


def test_errors_are_one_clear_line(collector: Collector) -> None:
    code, _, err = cli("report", "features", "--api", f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "cannot reach the collector API" in err
    assert "Invalid value" not in err
    code, _, err = cli("report", "weekly", "--days", "-3", "--api", collector.api_url)
    assert code == 2
    assert "--days" in err
    assert "--since must be before" not in err
    code, _, err = cli("report", "weekly", "--since", "last tuesday", "--api", collector.api_url)
    assert code == 2
    assert "e.g. 2026-11-01" in " ".join(err.replace("│", " ").split())  # typer boxes and wraps it


def test_version_and_flag_help() -> None:
    code, out, _ = cli("--version")
    assert code == 0
    assert out.startswith("featurecost ")
    code, out, _ = cli("prices", "reprice", "--help")
    assert code == 0
    assert "<bool>" not in out
    assert "--dry-run" in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1234.5678"), "$1,234.57"),
        (Decimal("0.0123456"), "$0.0123"),
        (Decimal("0.00001"), "<$0.0001"),
        (Decimal("0E-18"), "$0.00"),
        (Decimal("-2.5"), "-$2.50"),
        (None, "unpriced"),
    ],
)
def test_money(value: Decimal | None, expected: str) -> None:
    assert money(value) == expected


def test_plain_decimal_and_escapes() -> None:
    assert plain_decimal(Decimal("0E-18")) == "0"
    assert plain_decimal(Decimal("1.230000000000000000")) == "1.23"
    assert plain_decimal(Decimal("1E+3")) == "1000"
    assert escape_controls("a\x1b[31mb\n\u202e") == "a\\x1b[31mb\\n\\u202e"


def test_features_narrow_to_a_feature_or_tenant_and_name_what_exists(collector: Collector) -> None:
    code, out, err = cli("report", "features", "--tenant", "acme", "--api", collector.api_url, "--format", "json")
    assert code == 0, err
    assert [row["feature"] for row in json.loads(out)] == ["notes"]  # acme's only call
    api = collector.api_url
    code, out, err = cli("report", "features", "--feature", "support-bot", "--api", api, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["feature"], row["calls"]) == ("support-bot", 1)
    for report in (("features",), ("breakdown", "--by", "model")):
        code, out, err = cli("report", *report, "--feature", "nope", "--api", collector.api_url)
        assert code == 0, err
        flat = " ".join(out.split())
        assert "unknown feature nope — known:" in flat
        assert "support-bot" in flat.split("known:")[1]
