"""Every Grafana panel's SQL, run against the real engine.

The panels' rawSql goes through Grafana's variable interpolation and the ClickHouse
plugin's macro expansion (tests/dashboards/grafana_sql.py), then runs on chDB holding calls and
restatement deltas seeded through featurecost's own storage layer (the rollups fill from
them through their materialized views). Expected values are computed here from the seeded
records, in Python, not by another query. The cache panel reads the report API: its URL is
interpolated the same way and answered by the API's own window/options parsing and report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import genai_prices
import pytest

from dashboards import build
from featurecost.collector.api.app import window_from_query
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.reports import ReportOptions, run_report
from featurecost.collector.storage.client import Storage
from tests.collector.reports.seed import RESTATEMENT_COLUMNS, Restatement, Seed, restatement_rows
from tests.dashboards.grafana_sql import ALL, TimeRange, Variable, interpolate, interpolate_globals, to_clickhouse

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
RANGE = TimeRange(NOW - timedelta(days=21), NOW, interval_seconds=86400)


def _call(
    n: int,
    when: datetime,
    feature: str,
    tenant: str,
    session: str,
    cost: Decimal | None,
    environment: str = "production",
    cache_read: int = 0,
    model: str = "gpt-4o-mini",
) -> CallRecord:
    return CallRecord(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        start_time=when,
        end_time=when + timedelta(seconds=2),
        environment=environment,
        service_name="app",
        feature=feature,
        tenant=tenant,
        user_id=f"user-{n % 3}",
        plan="pro",
        root_id=f"root-{n // 2}",
        session_id=session,
        version="",
        operation="chat",
        provider="openai",
        request_model=model,
        response_model=model,
        input_tokens=1000 + n,
        output_tokens=100 + n,
        cache_read_tokens=cache_read,
        cache_write_tokens=0,
        reasoning_tokens=0,
        usage_source="response",
        status="ok",
        cost_usd=cost,
        input_cost_usd=None if cost is None else cost / 2,
        output_cost_usd=None if cost is None else cost / 2,
        price_source="" if cost is None else "genai-prices",
        unpriced_reason="no price for acme-llm" if cost is None else "",
    )


def seed_records() -> list[CallRecord]:
    records = []
    n = 0
    features = {"support-bot": ("acme", "globex"), "draft-email": ("acme", "initech"), "unattributed": ("",)}
    for day in range(1, 20):
        when = NOW - timedelta(days=day, hours=3)
        for feature, tenants in features.items():
            for tenant in tenants:
                n += 1
                session = f"{feature}-{tenant}-{day // 2}"
                cost = Decimal(f"0.{n:03d}123456789012345")  # 18 decimals, distinct per call
                records.append(_call(n, when, feature, tenant, session, cost, cache_read=(n % 4) * 100))
    # unpriced calls, a tenant with a quote in its name, another environment, and one call out of range
    records.append(_call(900, NOW - timedelta(days=2), "support-bot", "o'reilly", "s-x", None, model="acme-llm"))
    records.append(_call(901, NOW - timedelta(days=2), "support-bot", "o'reilly", "s-x", Decimal("1.5")))
    records.append(_call(902, NOW - timedelta(days=3), "support-bot", "acme", "s-y", Decimal(5), environment="staging"))
    records.append(_call(903, NOW - timedelta(days=40), "support-bot", "acme", "s-z", Decimal(7)))
    # a tenant whose only call has no price: spend NULL, not $0
    records.append(_call(904, NOW - timedelta(days=4), "draft-email", "umbrella", "s-u", None, model="acme-llm"))
    return records


SEEDED = seed_records()
# Re-pricing deltas: spend on every panel is calls.cost_usd + sum(deltas).
RESTATED = Seed(
    restatements=[
        Restatement(SEEDED[0], Decimal("0.250000000000000001"), "r1"),
        Restatement(SEEDED[4], Decimal("-0.000100000000000001"), "r2"),
        Restatement(SEEDED[0], Decimal("0.5"), "r3"),
    ]
)


def delta(record: CallRecord) -> Decimal:
    return RESTATED.delta_of(record)


def cost(record: CallRecord) -> Decimal:
    """What the call costs in the reports: its price plus its restatement deltas."""
    return (record.cost_usd or Decimal(0)) + delta(record)


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage) -> Storage:
    store = chdb_storage
    store.insert_calls(SEEDED, "dashboards-seed")
    store.insert_rows("cost_restatements", restatement_rows(RESTATED), RESTATEMENT_COLUMNS)
    return store


def run(storage: Storage, sql: str, **variables: Variable) -> list[dict[str, Any]]:
    defaults = {
        "environment": Variable(["production"]),
        "feature": Variable([ALL], build.ALL_VALUE),
        "tenant": Variable([ALL], build.ALL_VALUE),
    }
    expanded = to_clickhouse(sql, {**defaults, **variables}, RANGE)
    result = storage.client.query(expanded)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def in_range(environment: str = "production") -> list[CallRecord]:
    return [r for r in SEEDED if r.environment == environment and RANGE.start <= r.start_time <= RANGE.end]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(build.OUTPUT.read_text())
    return data


def panel_sql(title: str) -> str:
    for panel in dashboard()["panels"]:
        if panel["title"] == title:
            sql: str = panel["targets"][0]["rawSql"]
            return sql
    raise AssertionError(f"no panel {title!r}")


def variable_sql(name: str) -> str:
    for variable in dashboard()["templating"]["list"]:
        if variable["name"] == name:
            sql: str = variable["query"]
            return sql
    raise AssertionError(f"no variable {name!r}")


def panel(title: str) -> dict[str, Any]:
    for item in dashboard()["panels"]:
        if item["title"] == title:
            found: dict[str, Any] = item
            return found
    raise AssertionError(f"no panel {title!r}")


def monday(moment: datetime) -> date:
    return (moment - timedelta(days=moment.weekday())).date()


def quantile(values: list[Decimal], level: float) -> Decimal:
    """quantileExact: the sorted value at 0-based index floor(level * n)."""
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


@dataclass
class Week:
    spend: Decimal = Decimal(0)
    calls: int = 0
    unpriced_calls: int = 0
    sessions: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    unpriced_sessions: set[str] = field(default_factory=set)

    def priced(self) -> list[Decimal]:
        return [c for s, c in self.sessions.items() if s not in self.unpriced_sessions]


def weeks_expected() -> dict[tuple[date, str], Week]:
    """Per (week, feature) over the whole weeks the time range touches."""
    first, last = monday(RANGE.start), monday(RANGE.end)
    weeks: dict[tuple[date, str], Week] = defaultdict(Week)
    for r in SEEDED:
        if r.environment != "production" or not first <= monday(r.start_time) <= last:
            continue
        week = weeks[(monday(r.start_time), r.feature)]
        week.spend += cost(r)
        week.calls += 1
        week.sessions[r.session_id] += cost(r)
        if r.cost_usd is None:
            week.unpriced_calls += 1
            week.unpriced_sessions.add(r.session_id)
    return weeks


def test_every_panel_and_variable_query_runs_on_the_engine(storage: Storage) -> None:
    board = dashboard()
    queries = [t["rawSql"] for p in board["panels"] for t in p["targets"] if "rawSql" in t]
    queries += [v["query"] for v in board["templating"]["list"]]
    assert len(queries) == len(build.PANELS) - 1 + 3  # all but the report API panel
    for sql in queries:
        run(storage, sql)  # raises on any SQL error
        run(storage, sql, feature=Variable(["support-bot", "draft-email"]), tenant=Variable(["o'reilly"]))


def test_variables_list_what_was_seeded(storage: Storage) -> None:
    assert [r["environment"] for r in run(storage, variable_sql("environment"))] == ["production", "staging"]
    assert [r["feature"] for r in run(storage, variable_sql("feature"))] == sorted({r.feature for r in in_range()})
    tenants = run(storage, variable_sql("tenant"), feature=Variable(["draft-email"]))
    assert [r["tenant"] for r in tenants] == ["acme", "initech", "umbrella"]


def test_weekly_table_matches_the_seeded_calls(storage: Storage) -> None:
    rows = run(storage, panel_sql("Weekly cost by feature"))
    expected = weeks_expected()
    got = {(row["week"], row["feature"]): row for row in rows}
    assert set(got) == set(expected)
    for key, week in expected.items():
        row = got[key]
        priced = week.priced()
        assert row["spend_usd"] == week.spend, key
        assert row["restated_usd"] == sum((delta(r) for r in SEEDED if r.environment == "production"
                                            and (monday(r.start_time), r.feature) == key), Decimal(0))  # fmt: skip
        assert (row["calls"], row["unpriced_calls"]) == (week.calls, week.unpriced_calls), key
        assert (row["sessions"], row["unpriced_sessions"]) == (len(week.sessions), len(week.unpriced_sessions)), key
        assert row["session_p50_usd"] == (quantile(priced, 0.5) if priced else None), key
        assert row["session_p95_usd"] == (quantile(priced, 0.95) if priced else None), key
        previous = expected.get((key[0] - timedelta(days=7), key[1]))
        if previous is None or not previous.priced():
            assert row["p50_change_wow"] is None, key
        else:
            change = float(quantile(priced, 0.5)) / float(quantile(previous.priced(), 0.5)) - 1
            assert row["p50_change_wow"] == pytest.approx(change), key
    assert any(row["p50_change_wow"] is not None for row in rows)
    assert any(row["restated_usd"] for row in rows)


def test_weekly_table_is_the_weekly_report(storage: Storage) -> None:
    """Same named query: the panel's rows equal the `weekly` report's over the same range."""
    rows = run(storage, panel_sql("Weekly cost by feature"))
    window = window_from_query({"since": RANGE.start.isoformat(), "until": RANGE.end.isoformat()})
    report = run_report("weekly", storage, window, ReportOptions())["rows"]
    assert len(report) == len(rows)
    panel_rows = {(row["week"].isoformat(), row["feature"]): row for row in rows}
    for r in report:
        row = panel_rows[(r["week"], r["feature"])]
        assert Decimal(r["spend_usd"]) == row["spend_usd"]
        assert r["sessions"] == row["sessions"]
        for name in ("session_p50_usd", "session_p95_usd"):
            assert (None if r[name] is None else Decimal(r[name])) == row[name]
        assert r["anomalous_sessions"] == row["anomalous_sessions"]


def test_unpriced_calls_are_counted_not_free(storage: Storage) -> None:
    (oreilly,) = run(storage, panel_sql("Top tenants"), tenant=Variable(["o'reilly"]))
    assert (oreilly["unpriced_calls"], oreilly["spend_usd"]) == (1, Decimal("1.5"))
    (umbrella,) = run(storage, panel_sql("Top tenants"), tenant=Variable(["umbrella"]))
    assert (umbrella["calls"], umbrella["unpriced_calls"], umbrella["spend_usd"]) == (1, 1, None)
    (spend,) = run(storage, panel_sql("Spend in range"), tenant=Variable(["umbrella"]))
    assert (spend["calls"], spend["unpriced_calls"], spend["spend_usd"]) == (1, 1, None)
    reasons = run(storage, panel_sql("Unpriced calls by model"))
    assert [(reason["model"], reason["calls"]) for reason in reasons] == [("acme-llm", 2)]
    assert reasons[0]["unpriced_reason"] == "no price for acme-llm"
    # the weekly row of a session with an unpriced call counts it, and keeps it out of p50/p95
    weekly = run(storage, panel_sql("Weekly cost by feature"), feature=Variable(["draft-email"]))
    assert sum(row["unpriced_sessions"] for row in weekly) == 1


def test_cost_over_time_adds_up_to_the_total_per_feature(storage: Storage) -> None:
    rows = run(storage, panel_sql("Cost over time by feature"))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in in_range():
        totals[r.feature] += cost(r)
    by_feature: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        by_feature[row["feature"]] += row["cost_usd"] or Decimal(0)
        assert row["time"].hour == 0  # one-day buckets from $__timeInterval with a 1d interval
    assert by_feature == totals
    (spend,) = run(storage, panel_sql("Spend in range"))
    assert spend["spend_usd"] == sum(totals.values())
    assert spend["restated_usd"] == sum((delta(r) for r in in_range()), Decimal(0)) != 0
    assert spend["calls"] == len(in_range())
    assert spend["sessions"] == len({r.session_id for r in in_range()})
    assert spend["unpriced_calls"] == 2


def test_feature_and_tenant_variables_filter(storage: Storage) -> None:
    rows = run(
        storage,
        panel_sql("Cost over time by feature"),
        feature=Variable(["support-bot"]),
        tenant=Variable(["acme"]),
    )
    assert {row["feature"] for row in rows} == {"support-bot"}
    expected = sum((cost(r) for r in in_range() if r.feature == "support-bot" and r.tenant == "acme"), Decimal(0))
    assert sum(row["cost_usd"] for row in rows) == expected
    weekly = run(storage, panel_sql("Weekly cost by feature"), feature=Variable(["draft-email"]))
    assert {row["feature"] for row in weekly} == {"draft-email"}


def test_session_quantiles(storage: Storage) -> None:
    expected = weeks_expected()
    # one feature: the weekly table's per-feature p50/p95
    rows = run(storage, panel_sql("Session cost p50 / p95"), feature=Variable(["support-bot"]))
    want = {week: w for (week, feature), w in expected.items() if feature == "support-bot" and w.priced()}
    assert [row["time"].date() for row in rows] == sorted(want)
    for row in rows:
        priced = want[row["time"].date()].priced()
        assert (row["p50_usd"], row["p95_usd"]) == (quantile(priced, 0.5), quantile(priced, 0.95))
    # every feature: a session's cost over all its features, fully priced sessions only
    sessions: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unpriced: set[tuple[date, str]] = set()
    for (week, _), w in expected.items():
        for session, amount in w.sessions.items():
            sessions[week][session] += amount
        unpriced |= {(week, s) for s in w.unpriced_sessions}
    rows = run(storage, panel_sql("Session cost p50 / p95"))
    assert len(rows) == len(sessions)
    for row in rows:
        week = row["time"].date()
        priced = [c for s, c in sessions[week].items() if (week, s) not in unpriced]
        assert (row["p50_usd"], row["p95_usd"]) == (quantile(priced, 0.5), quantile(priced, 0.95))


def test_top_tenants(storage: Storage) -> None:
    tenants = run(storage, panel_sql("Top tenants"))
    spend: dict[str, Decimal] = defaultdict(Decimal)
    priced: set[str] = set()
    for r in in_range():
        name = r.tenant or "(no tenant)"
        spend[name] += cost(r)
        if r.cost_usd is not None or delta(r):
            priced.add(name)
    assert [row["tenant"] for row in tenants] == sorted(spend, key=lambda t: (-spend[t], t))
    assert {row["tenant"]: row["spend_usd"] for row in tenants} == {
        t: (spend[t] if t in priced else None) for t in spend
    }


def test_cache_savings_in_dollars_are_the_cache_report(storage: Storage) -> None:
    target = panel("Cache savings")["targets"][0]
    assert target["datasource"] == build.API_DATASOURCE
    url = interpolate_globals(interpolate(target["url"], {"environment": Variable(["production"])}), RANGE)
    parts = urlsplit(url)
    assert parts.path == "/api/v1/reports/cache"
    params = dict(parse_qsl(parts.query))
    window = window_from_query(params)  # what the API does with the query string
    assert (window.since, window.until, window.environment) == (RANGE.start, RANGE.end, "production")
    rows = run_report("cache", storage, window, ReportOptions.from_query(params))[target["root_selector"]]
    selectors = [column["selector"] for column in target["columns"]]
    assert all(set(selectors) <= set(row) for row in rows)
    # independently: each call's input price without the cache minus with it (genai-prices)
    saved: dict[str, Decimal] = defaultdict(Decimal)
    for r in in_range():
        if not r.cache_read_tokens:
            continue

        def input_price(usage: genai_prices.Usage, r: CallRecord = r) -> Decimal:
            calc = genai_prices.calc_price(usage, r.request_model, provider_id=r.provider,
                                           genai_request_timestamp=r.start_time)  # fmt: skip
            return calc.input_price

        plain = input_price(genai_prices.Usage(input_tokens=r.input_tokens))
        cached = input_price(genai_prices.Usage(input_tokens=r.input_tokens, cache_read_tokens=r.cache_read_tokens))
        saved[r.feature] += plain - cached
    got = {row["feature"]: Decimal(row["saved_usd"]) for row in rows}
    assert set(got) == {r.feature for r in in_range()}
    for feature, dollars in saved.items():
        assert dollars > 0
        assert abs(got[feature] - dollars) < Decimal("1e-15"), feature
    for row in rows:
        records = [r for r in in_range() if r.feature == row["feature"]]
        read = sum(r.cache_read_tokens for r in records)
        assert row["cache_read_tokens"] == read
        assert Decimal(row["hit_ratio"]) == pytest.approx(Decimal(read) / sum(r.input_tokens for r in records))


def test_coverage(storage: Storage) -> None:
    (coverage,) = run(storage, panel_sql("Unpriced and unattributed share"), feature=Variable(["draft-email"]))
    records = in_range()
    unattributed = [r for r in records if r.feature == "unattributed"]
    assert coverage["unpriced_call_share"] == pytest.approx(2 / len(records))
    assert coverage["unattributed_call_share"] == pytest.approx(len(unattributed) / len(records))
    total = sum((cost(r) for r in records), Decimal(0))
    unattributed_cost = sum((cost(r) for r in unattributed), Decimal(0))
    assert coverage["unattributed_cost_share"] == pytest.approx(float(unattributed_cost / total))


def test_empty_range_gives_nulls_not_errors(storage: Storage) -> None:
    sql = panel_sql("Unpriced and unattributed share")
    (row,) = run(storage, sql, environment=Variable(["nowhere"]))
    assert row == {"unpriced_call_share": None, "unattributed_call_share": None, "unattributed_cost_share": None}
    assert run(storage, panel_sql("Weekly cost by feature"), environment=Variable(["nowhere"])) == []
    (spend,) = run(storage, panel_sql("Spend in range"), environment=Variable(["nowhere"]))
    assert (spend["spend_usd"], spend["calls"]) == (None, 0)


def test_out_of_range_and_other_environments_stay_out(storage: Storage) -> None:
    (spend,) = run(storage, panel_sql("Spend in range"))
    assert spend["calls"] == len(in_range())
    (staging,) = run(storage, panel_sql("Spend in range"), environment=Variable(["staging"]))
    assert (staging["calls"], staging["spend_usd"]) == (1, Decimal(5))


def test_weekly_panel_includes_the_named_query_text() -> None:
    """No drifting copy: the report's query, parameters bound, is inside the panel's SQL."""
    sql = panel_sql("Weekly cost by feature")
    assert "@query" not in sql
    assert "{since:" not in sql
    body = build.named_query("weekly_features")
    assert "rollup_sessions" in body
    for line in body.splitlines():
        assert line.strip() in sql


def test_dashboard_json_is_what_build_produces() -> None:
    assert Path(build.OUTPUT).read_text() == build.render(), "run `python -m dashboards.build`"
