"""Every Grafana panel's SQL, run against the real engine.

The panels' rawSql goes through Grafana's variable interpolation and the ClickHouse
plugin's macro expansion (tests/grafana_sql.py), then runs on chDB holding calls
seeded through featurecost's own storage layer. Expected values are computed here
from the seeded records, in Python, not by another query.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dashboards import build

from featurecost.collector.records import CallRecord
from featurecost.collector.storage import Storage
from tests.grafana_sql import ALL, TimeRange, Variable, to_clickhouse

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
    return records


SEEDED = seed_records()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    store = Storage(f"chdb://{tmp_path_factory.mktemp('dash') / 'clickhouse'}")
    try:
        store.migrate()
        store.insert_calls(SEEDED, "dashboards-seed")
        yield store
    finally:
        store.close()


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


def test_every_panel_and_variable_query_runs_on_the_engine(storage: Storage) -> None:
    board = dashboard()
    queries = [t["rawSql"] for p in board["panels"] for t in p["targets"]]
    queries += [v["query"] for v in board["templating"]["list"]]
    assert len(queries) == len(build.PANELS) + 3
    for sql in queries:
        run(storage, sql)  # raises on any SQL error
        run(storage, sql, feature=Variable(["support-bot", "draft-email"]), tenant=Variable(["o'reilly"]))


def test_variables_list_what_was_seeded(storage: Storage) -> None:
    assert [r["environment"] for r in run(storage, variable_sql("environment"))] == ["production", "staging"]
    assert [r["feature"] for r in run(storage, variable_sql("feature"))] == sorted({r.feature for r in in_range()})
    tenants = run(storage, variable_sql("tenant"), feature=Variable(["draft-email"]))
    assert [r["tenant"] for r in tenants] == ["acme", "initech"]


def test_weekly_table_matches_the_seeded_calls(storage: Storage) -> None:
    rows = run(storage, panel_sql("Weekly cost by feature"))
    sessions: dict[tuple[Any, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in in_range():
        week = (r.start_time - timedelta(days=r.start_time.weekday())).date()
        if r.cost_usd is not None:
            sessions[(week, r.feature)][r.session_id] += r.cost_usd
        else:
            sessions[(week, r.feature)].setdefault(r.session_id, Decimal(0))
    got = {(row["week"], row["feature"]): row for row in rows}
    assert set(got) == set(sessions)
    for key, costs in sessions.items():
        row = got[key]
        values = sorted(costs.values())
        assert row["spend_usd"] == sum(values), key
        assert row["sessions"] == len(values), key
        assert row["session_cost_p50_usd"] == values[int(len(values) * 0.5)], key
        assert row["session_cost_p95_usd"] == values[int(len(values) * 0.95)], key
    # the week-over-week change compares a feature's median with its previous week's
    support = sorted((row for row in rows if row["feature"] == "support-bot"), key=lambda row: row["week"])
    assert support[0]["p50_change_wow"] is None
    later, earlier = support[1], support[0]
    expected = float(later["session_cost_p50_usd"]) / float(earlier["session_cost_p50_usd"]) - 1
    assert later["p50_change_wow"] == pytest.approx(expected)


def test_unpriced_calls_are_counted_not_free(storage: Storage) -> None:
    rows = run(storage, panel_sql("Weekly cost by feature"), tenant=Variable(["o'reilly"]))
    assert sum(row["unpriced_calls"] for row in rows) == 1
    assert sum(row["spend_usd"] for row in rows) == Decimal("1.5")
    (reason,) = run(storage, panel_sql("Unpriced calls by model"))
    assert (reason["model"], reason["calls"]) == ("acme-llm", 1)
    assert reason["unpriced_reason"] == "no price for acme-llm"


def test_cost_over_time_adds_up_to_the_total_per_feature(storage: Storage) -> None:
    rows = run(storage, panel_sql("Cost over time by feature"))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in in_range():
        totals[r.feature] += r.cost_usd or Decimal(0)
    by_feature: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        by_feature[row["feature"]] += row["cost_usd"] or Decimal(0)
        assert row["time"].hour == 0  # one-day buckets from $__timeInterval with a 1d interval
    assert by_feature == totals
    (spend,) = run(storage, panel_sql("Spend in range"))
    assert spend["spend_usd"] == sum(totals.values())
    assert spend["calls"] == len(in_range())
    assert spend["unpriced_calls"] == 1


def test_feature_and_tenant_variables_filter(storage: Storage) -> None:
    rows = run(
        storage,
        panel_sql("Cost over time by feature"),
        feature=Variable(["draft-email"]),
        tenant=Variable(["initech"]),
    )
    assert {row["feature"] for row in rows} == {"draft-email"}
    expected = sum(
        (r.cost_usd or Decimal(0) for r in in_range() if r.feature == "draft-email" and r.tenant == "initech"),
        Decimal(0),
    )
    assert sum(row["cost_usd"] for row in rows) == expected


def test_session_quantiles_and_top_tenants(storage: Storage) -> None:
    quantiles = run(storage, panel_sql("Session cost p50 / p95"))
    assert quantiles
    assert all(row["p50_usd"] <= row["p95_usd"] for row in quantiles)
    tenants = run(storage, panel_sql("Top tenants"))
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for r in in_range():
        spend[r.tenant or "(no tenant)"] += r.cost_usd or Decimal(0)
    assert [row["tenant"] for row in tenants] == sorted(spend, key=lambda t: (-spend[t], t))
    assert {row["tenant"]: row["spend_usd"] for row in tenants} == spend


def test_cache_and_coverage(storage: Storage) -> None:
    cache = {row["feature"]: row for row in run(storage, panel_sql("Cache savings"))}
    for feature in cache:
        records = [r for r in in_range() if r.feature == feature]
        read = sum(r.cache_read_tokens for r in records)
        assert cache[feature]["cache_read_tokens_total"] == read
        assert cache[feature]["cache_hit_rate"] == pytest.approx(read / sum(r.input_tokens for r in records))
    (coverage,) = run(storage, panel_sql("Unpriced and unattributed share"), feature=Variable(["draft-email"]))
    records = in_range()
    unattributed = [r for r in records if r.feature == "unattributed"]
    assert coverage["unpriced_call_share"] == pytest.approx(1 / len(records))
    assert coverage["unattributed_call_share"] == pytest.approx(len(unattributed) / len(records))
    priced_total = sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))
    unattributed_cost = sum((r.cost_usd or Decimal(0) for r in unattributed), Decimal(0))
    assert coverage["unattributed_cost_share"] == pytest.approx(float(unattributed_cost / priced_total))


def test_empty_range_gives_nulls_not_errors(storage: Storage) -> None:
    sql = panel_sql("Unpriced and unattributed share")
    (row,) = run(storage, sql, environment=Variable(["nowhere"]))
    assert row == {"unpriced_call_share": None, "unattributed_call_share": None, "unattributed_cost_share": None}
    assert run(storage, panel_sql("Weekly cost by feature"), environment=Variable(["nowhere"])) == []


def test_out_of_range_and_other_environments_stay_out(storage: Storage) -> None:
    (spend,) = run(storage, panel_sql("Spend in range"))
    assert spend["calls"] == len(in_range())
    (staging,) = run(storage, panel_sql("Spend in range"), environment=Variable(["staging"]))
    assert (staging["calls"], staging["spend_usd"]) == (1, Decimal(5))


def test_dashboard_json_is_what_build_produces() -> None:
    assert Path(build.OUTPUT).read_text() == build.render(), "run `python -m dashboards.build`"
