"""The built-in web page, rendered by headless Chromium against a real collector.

The collector runs as a subprocess (testsupport/harness.py) and receives real OTLP spans
from the OpenTelemetry SDK's exporter. The page is checked twice: its rendered DOM
must show what the report API answers (features, calls, costs rounded from the API's
decimal strings here, with Decimal), and its screenshot must actually contain the
charts (pixels of the bar colours, not a blank page).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette

from featurecost.collector.api.web import web_routes
from tests.collector.api.headless import TableRows, console_messages, decode_png, rendered_dom, screenshot
from testsupport.harness import Collector, start_collector
from testsupport.servers import serve_in_thread

# feature (None: outside any attribution), tenant, session, model, input tokens, output tokens
CALLS: list[tuple[str | None, str, str, str, int, int]] = [
    ("support-bot", "acme", "s1", "gpt-4o-mini-2024-07-18", 12_000, 800),
    ("support-bot", "acme", "s1", "gpt-4o-mini-2024-07-18", 15_000, 900),
    (None, "", "s6", "gpt-4o-mini-2024-07-18", 2_000, 100),
    ("support-bot", "globex", "s2", "gpt-4o-mini-2024-07-18", 9_000, 400),
    ("draft-email", "acme", "s3", "gpt-4.1-mini-2025-04-14", 3_000, 2_500),
    ("summarize & <b>rank</b>", "initech", "s4", "gpt-4.1-mini-2025-04-14", 40_000, 1_000),
    ("private-model", "initech", "s5", "acme-private-llm", 5_000, 500),
    # a tenant whose only call has no price: "unpriced" in the tenant table, not $0
    ("private-model", "umbrella", "s7", "acme-private-llm", 1_000, 100),
]
# Bar colours of app.js's palette, in the order features are ranked by cost.
PALETTE = [(0x2F, 0x6F, 0xDE), (0xE8, 0x83, 0x3A), (0x3A, 0xA7, 0x6D)]
TENANT_BAR = (0x1B, 0x99, 0x8B)  # app.js TENANT_COLOR
NO_QUANTILE = "\N{EN DASH}"  # no session of the feature had every call priced


def send_spans(collector: Collector) -> None:
    provider = TracerProvider(resource=Resource.create({"deployment.environment.name": "web-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_endpoint}/v1/traces")))
    tracer = provider.get_tracer("web-test")
    for feature, tenant, session, model, input_tokens, output_tokens in CALLS:
        with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": output_tokens,
                    # the support bot's long system prompt is served from the cache
                    "gen_ai.usage.cache_read.input_tokens": input_tokens // 2 if feature == "support-bot" else 0,
                    "featurecost.tenant": tenant,
                    "session.id": session,
                }
            )
            if feature is not None:
                span.set_attribute("featurecost.feature", feature)
    provider.shutdown()


@dataclass
class Page:
    collector: Collector
    report: list[dict[str, Any]]
    weekly: list[dict[str, Any]]
    by_tenant: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return f"{self.collector.api_url}/?environment=web-test&days=7"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    base = tmp_path_factory.mktemp("web")
    collector = start_collector(base / "data", base / "logs")
    try:
        send_spans(collector)
        collector.wait_for_calls(len(CALLS))
        response = httpx.get(
            f"{collector.api_url}/api/v1/reports/feature-costs", params={"environment": "web-test"}, timeout=30
        )
        response.raise_for_status()
        # the window the page asks for with days=7: seven whole UTC days ending tomorrow 00:00
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        until = today + timedelta(days=1)
        since = until - timedelta(days=7)
        window = {"environment": "web-test", "since": since.isoformat(), "until": until.isoformat()}

        def rows(name: str, **extra: str) -> list[dict[str, Any]]:
            answer = httpx.get(f"{collector.api_url}/api/v1/reports/{name}", params={**window, **extra}, timeout=30)
            answer.raise_for_status()
            found: list[dict[str, Any]] = answer.json()["rows"]
            return found

        yield Page(collector, response.json()["rows"], rows("weekly"), rows("breakdown", dimension="tenant"))
    finally:
        assert collector.process.stop() == 0, collector.process.log()


def api_rows(page: Page, name: str, **extra: str) -> list[dict[str, Any]]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    until = today + timedelta(days=1)
    window = {"environment": "web-test", "since": (until - timedelta(days=7)).isoformat(), "until": until.isoformat()}
    answer = httpx.get(f"{page.collector.api_url}/api/v1/reports/{name}", params={**window, **extra}, timeout=30)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["rows"]
    return found


def usd(text: str | None) -> str:
    return "unpriced" if text is None else "$" + str(Decimal(text).quantize(Decimal("0.000001"), ROUND_HALF_UP))


def test_page_and_assets_are_served(page: Page) -> None:
    index = httpx.get(f"{page.collector.api_url}/", timeout=10)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert 'src="web/app.js"' in index.text
    script = httpx.get(f"{page.collector.api_url}/web/app.js", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(f"{page.collector.api_url}/web/missing.js", timeout=10).status_code == 404


def test_rendered_page_shows_the_report(page: Page) -> None:
    sent = Counter(feature or "unattributed" for feature, *_ in CALLS)
    assert {row["feature"] for row in page.report} == set(sent)
    dom = rendered_dom(page.url)
    assert 'data-ready="true"' in dom
    parser = TableRows()
    parser.feed(dom)
    assert set(parser.rows) == set(sent)
    for row in page.report:
        cells = parser.rows[row["feature"]]
        assert cells["feature"] == row["feature"]
        assert cells["calls"] == f"{sent[row['feature']]:,}"
        assert cells["sessions"] == f"{row['sessions']:,}"
        assert cells["input_tokens"] == f"{row['input_tokens']:,}"
        assert cells["cost_usd"] == usd(row["cost_usd"])
    # the unknown model is shown as unpriced, never as $0
    assert parser.rows["private-model"]["cost_usd"] == "unpriced"
    assert parser.rows["private-model"]["unpriced_calls"] == "2"
    assert "acme-private-llm" in dom
    # a feature name is text, never markup
    assert "<b>rank</b>" not in dom
    assert "summarize &amp; &lt;b&gt;rank&lt;/b&gt;" in dom
    total = sum((Decimal(r["cost_usd"]) for r in page.report if r["cost_usd"] is not None), Decimal(0))
    assert usd(str(total)) in parser.texts_by_id["kpi-spend"]
    assert parser.texts_by_id["kpi-calls"].endswith(str(len(CALLS)))
    # both charts drew one bar per priced feature
    priced = [r for r in page.report if r["cost_usd"] is not None]
    assert dom.count("<rect ") >= 2 * len(priced)


def percent_value(text: str) -> float:
    assert text.endswith("%"), text
    return float(text[:-1])


def test_coverage_and_cache_figures(page: Page) -> None:
    parser = TableRows()
    parser.feed(rendered_dom(page.url))
    rows = {row["feature"]: row for row in page.report}
    calls = sum(row["calls"] for row in rows.values())
    assert calls == len(CALLS)
    unattributed = rows["unattributed"]
    assert unattributed["calls"] == 1
    expected = {
        "coverage-unpriced": 100 * sum(row["unpriced_calls"] for row in rows.values()) / calls,
        "coverage-unattributed-calls": 100 * unattributed["calls"] / calls,
        "coverage-unattributed-spend": float(Decimal(unattributed["share"]) * 100),
        "kpi-unattributed": float(Decimal(unattributed["share"]) * 100),
        "kpi-cache": 100
        * sum(row["cache_read_tokens"] for row in rows.values())
        / sum(row["input_tokens"] for row in rows.values()),
    }
    assert rows["support-bot"]["cache_read_tokens"] > 0
    for element_id, value in expected.items():
        shown = parser.texts_by_id[element_id].removeprefix("Unattributed spend").removeprefix("Cache hit rate")
        assert percent_value(shown) == pytest.approx(value, abs=0.051), element_id


def test_session_cost_quantiles_are_the_weekly_report(page: Page) -> None:
    parser = TableRows("data-session-row")
    parser.feed(rendered_dom(page.url))
    assert len(parser.rows) == len(page.weekly)
    sessions_sent = {(feature or "unattributed", session) for feature, _, session, *_ in CALLS}
    for row in page.weekly:
        cells = parser.rows[f"{row['week']} {row['feature']}"]
        assert cells["feature"] == row["feature"]
        assert cells["sessions"] == str(row["sessions"])
        assert row["sessions"] == sum(1 for feature, _ in sessions_sent if feature == row["feature"])
        for key in ("session_p50_usd", "session_p95_usd"):
            assert cells[key] == (NO_QUANTILE if row[key] is None else usd(row[key])), key
    # the unknown model's session has no price: counted, no quantile, never $0
    private = next(row for row in page.weekly if row["feature"] == "private-model")
    assert (private["unpriced_sessions"], private["session_p50_usd"]) == (2, None)
    assert parser.rows[f"{private['week']} private-model"]["unpriced_sessions"] == "2"
    priced = [row for row in page.weekly if row["session_p50_usd"] is not None]
    assert priced
    assert all(parser.rows[f"{row['week']} {row['feature']}"]["session_p50_usd"].startswith("$") for row in priced)


def test_top_tenants_are_the_breakdown_report(page: Page) -> None:
    parser = TableRows("data-tenant")
    dom = rendered_dom(page.url)
    parser.feed(dom)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    calls: Counter[str] = Counter()
    unpriced: Counter[str] = Counter()
    for row in page.by_tenant:
        spend[row["value"]] += Decimal(row["spend_usd"])
        calls[row["value"]] += row["calls"]
        unpriced[row["value"]] += row["unpriced_calls"]
    assert set(calls) == {tenant for _, tenant, *_ in CALLS}
    assert calls == Counter(tenant for _, tenant, *_ in CALLS)
    assert set(parser.rows) == set(calls)
    for tenant, cells in parser.rows.items():
        assert cells["tenant"] == (tenant or "(no tenant)")
        assert cells["calls"] == str(calls[tenant])
        nothing_priced = calls[tenant] == unpriced[tenant] and not spend[tenant]
        assert cells["spend_usd"] == ("unpriced" if nothing_priced else usd(str(spend[tenant]))), tenant
    ranked = [t for t, _ in sorted(spend.items(), key=lambda item: (-item[1], item[0]))]
    assert dom.index(f'data-tenant="{ranked[0]}"') < dom.index(f'data-tenant="{ranked[-1]}"')
    # one bar per tenant with a positive spend, none for the unpriced ones
    bars = re.findall(r'<rect [^>]*data-tenant="([^"]*)"', dom)
    assert sorted(bars) == sorted(t for t in calls if spend[t] > 0)
    assert len(bars) >= 3
    assert parser.rows["umbrella"]["spend_usd"] == "unpriced"


def test_screenshot_shows_the_charts(page: Page, tmp_path: Path) -> None:
    image = decode_png(screenshot(page.url, tmp_path / "page.png").read_bytes())
    assert (image.width, image.height) == (1280, 900)
    colours = Counter(image.rgb(x, y) for y in range(0, image.height, 2) for x in range(0, image.width, 2))
    assert len(colours) > 50, "the page looks blank"
    most_common_share = colours.most_common(1)[0][1] / sum(colours.values())
    assert most_common_share < 0.9, "one colour covers almost the whole page"
    # the three most expensive features have wide bars (the fourth, unattributed, is a sliver)
    for colour in PALETTE[:3]:
        assert colours[colour] > 100, f"no bars of colour {colour} in the screenshot"


def test_full_page_screenshot_shows_the_tenant_bars(page: Page, tmp_path: Path) -> None:
    image = decode_png(screenshot(page.url, tmp_path / "full.png", height=1600).read_bytes())
    colours = Counter(image.rgb(x, y) for y in range(0, image.height, 2) for x in range(0, image.width, 2))
    assert colours[TENANT_BAR] > 100, "no tenant bars in the screenshot"


def test_empty_environment_says_so(page: Page) -> None:
    dom = rendered_dom(f"{page.collector.api_url}/?environment=nothing-here&days=1")
    assert 'data-ready="true"' in dom
    assert "No calls stored for nothing-here" in dom


def test_page_reports_an_api_failure_instead_of_blank_charts() -> None:
    # the page alone, without the report API behind it: every report call answers 404
    with serve_in_thread(Starlette(routes=web_routes())) as url:
        dom = rendered_dom(f"{url}/?environment=production&days=1")
    assert 'data-ready="error"' in dom
    assert "Could not load the report: report API answered 404" in dom


def short_usd(value: Decimal) -> str:
    """app.js shortMoney: cents from a dollar up, four decimals below."""
    places = Decimal("0.01") if abs(value) >= 1 else Decimal("0.0001")
    return f"${value.quantize(places, ROUND_HALF_UP):,}"


def test_drill_down_shows_a_features_tenants_models_versions_and_costliest_actions(page: Page) -> None:
    # ?feature= opens the drill-down by clicking the feature's row (the click handler under test)
    dom = rendered_dom(page.url + "&feature=support-bot")
    assert 'data-ready="true"' in dom
    assert 'data-state="loaded"' in dom
    parser = TableRows("data-row")
    parser.feed(dom)
    sent = [c for c in CALLS if c[0] == "support-bot"]
    for tenant in {c[1] for c in sent}:
        assert parser.rows[tenant]["calls"] == str(sum(1 for c in sent if c[1] == tenant)), tenant
    (model,) = {c[3] for c in sent}
    assert parser.rows[model]["calls"] == str(len(sent))
    assert parser.rows[model]["spend_usd"] == usd(
        next(r for r in page.report if r["feature"] == "support-bot")["cost_usd"]
    )
    assert parser.rows[""]["version"] == "(none)"  # no featurecost.version set
    # the costliest actions are the outliers report's, each with its costliest call's span id
    actions = [row for row in api_rows(page, "outliers", n="100") if row["feature"] == "support-bot"]
    rows = TableRows("data-action")
    rows.feed(dom)
    assert set(rows.rows) == {a["root_id"] for a in actions}
    for action in actions:
        assert rows.rows[action["root_id"]]["span_id"] == action["span_id"]
        assert re.fullmatch(r"[0-9a-f]{16}", action["span_id"])
    # other features' actions are not listed
    assert "draft-email" not in dom.split('id="drilldown"')[1].split("</section>")[0]


def test_a_span_link_shows_how_that_call_was_priced(page: Page) -> None:
    action = max(
        (row for row in api_rows(page, "outliers", n="100") if row["feature"] == "support-bot"),
        key=lambda row: Decimal(row["spend_usd"]),
    )
    dom = rendered_dom(page.url + f"&feature=support-bot&span={action['span_id']}")
    explained = dom.split('id="explain-lines"')[1].split("</dl>")[0]
    assert action["span_id"] in explained
    assert "genai-prices" in explained  # how it was priced when stored
    assert "gpt-4o-mini" in explained
    assert "priced now" in explained


def test_pickers_list_the_environments_and_windows(page: Page) -> None:
    dom = rendered_dom(page.url)
    picker = dom.split('id="environment"')[1].split("</select>")[0]
    assert '<option value="web-test">web-test</option>' in picker
    days = dom.split('id="days"')[1].split("</select>")[0]
    assert re.findall(r'value="(\d+)"', days) == ["1", "7", "14", "30", "90"]


def test_daily_chart_has_axis_values_and_legend(page: Page) -> None:
    dom = rendered_dom(page.url)
    chart = dom.split('id="chart-daily"')[1].split("</figure>")[0]
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', chart)
    assert ticks[0] == "$0.00"
    assert sum(1 for t in ticks if t.startswith("$")) >= 3
    assert sum(1 for t in ticks if re.fullmatch(r"\d\d-\d\d", t)) == 7  # one label per day
    total = sum((Decimal(r["cost_usd"]) for r in page.report if r["cost_usd"] is not None), Decimal(0))
    today = datetime.now(UTC).date().isoformat()
    assert re.search(rf'data-day-total="{today}"[^>]*>{re.escape(short_usd(total))}<', chart)
    legend = re.findall(r'class="legend-item" data-feature="([^"]*)"', chart)
    assert set(legend) == {
        r["feature"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for r in page.report
    }


def test_cost_by_model_cache_savings_and_margin(page: Page) -> None:
    dom = rendered_dom(page.url)
    parser = TableRows()
    parser.feed(dom)
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    for row in api_rows(page, "breakdown", dimension="model"):
        by_model[row["value"]] += Decimal(row["spend_usd"])
    chart = dom.split('id="chart-models"')[1].split("</figure>")[0]
    bars = re.findall(r'data-model="([^"]*)"', chart)
    assert bars == [m for m, v in sorted(by_model.items(), key=lambda kv: (-kv[1], kv[0])) if v > 0]
    for model, spend in by_model.items():
        if spend > 0:
            assert short_usd(spend) in chart, model
    assert "acme-private-llm" in chart  # unpriced: named, no bar
    saved = sum((Decimal(r["saved_usd"]) for r in api_rows(page, "cache")), Decimal(0))
    assert saved > 0  # the support bot read half its input from the cache
    assert parser.texts_by_id["kpi-cache-saved"].endswith(short_usd(saved))
    # no revenue imported for this environment: said so, not $0
    assert parser.texts_by_id["kpi-revenue"].endswith("not imported")
    margin = TableRows("data-margin-tenant")
    margin.feed(dom)
    assert margin.rows["umbrella"]["spend_usd"] == "unpriced"


def test_the_page_logs_nothing_to_the_console(page: Page) -> None:
    for url in (page.url, page.url + "&feature=support-bot"):
        messages = [m for m in console_messages(url) if "favicon" not in m]
        assert messages == [], messages


def test_screenshot_of_the_drill_down(page: Page, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Saved for a person to look at (the path is printed with -s); checked here for the drill-down's pixels.
    action = next(row for row in api_rows(page, "outliers", n="100") if row["feature"] == "support-bot")
    path = tmp_path_factory.mktemp("screenshots") / "page-drill-down.png"
    url = page.url + f"&feature=support-bot&span={action['span_id']}"
    image = decode_png(screenshot(url, path, height=2600).read_bytes())
    print(f"page screenshot: {path}")
    colours = Counter(image.rgb(x, y) for y in range(0, image.height, 2) for x in range(0, image.width, 2))
    assert colours[(0x48, 0x65, 0x81)] > 50, "no cost-by-model bars"  # app.js MODEL_COLOR
    assert colours[TENANT_BAR] > 100
