"""Every named report on seeded calls (several weeks, features, tenants, sessions,
unpriced calls, a replayed batch, restatements, staging traffic), against numbers
computed independently in ``tests/collector/reports/seed.py`` — and the same from the rollups
as from the exact raw source."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest

from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports import (
    Dimension,
    ReportOptions,
    Source,
    Window,
    breakdown,
    cache_effectiveness,
    decomposition,
    feature_costs,
    outliers,
    regressions,
    run_report,
    shared_cost_allocation,
    tenant_margin,
    unit_costs,
    weekly_features,
)
from featurecost.collector.storage.client import Storage
from featurecost.collector.storage.usage_import import parse_usage_csv, store_usage
from tests.collector.reports.seed import (
    RESTATEMENT_COLUMNS,
    WEEKS,
    Q,
    Seed,
    generate,
    monday,
    quantile,
    ratio,
    restatement_rows,
    revenue_in,
    session_costs,
)

USAGE_CSV = """tenant,day,period,revenue_usd,active_users,usage.support-bot
acme,,2026-09,3000,40,120
acme,,2026-10,3100,42,130
globex,2026-09-15,,12.5,3,
globex,2026-10-01,,20,5,
globex,2026-10-02,,7.25,4,
"""
REVENUE = [
    ("acme", date(2026, 9, 1), date(2026, 9, 30), Decimal(3000)),
    ("acme", date(2026, 10, 1), date(2026, 10, 31), Decimal(3100)),
    ("globex", date(2026, 9, 15), date(2026, 9, 15), Decimal("12.5")),
    ("globex", date(2026, 10, 1), date(2026, 10, 1), Decimal(20)),
    ("globex", date(2026, 10, 2), date(2026, 10, 2), Decimal("7.25")),
]
ACTIVE_USERS = {"acme": [(date(2026, 9, 1), date(2026, 9, 30), 40), (date(2026, 10, 1), date(2026, 10, 31), 42)],
                "globex": [(date(2026, 9, 15), date(2026, 9, 15), 3), (date(2026, 10, 1), date(2026, 10, 1), 5),
                           (date(2026, 10, 2), date(2026, 10, 2), 4)]}  # fmt: skip


def at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


WINDOW = Window(at(WEEKS[1]), at(WEEKS[5]) + timedelta(days=7))
SOURCES = [Source.rollup, Source.raw]


@pytest.fixture(scope="module")
def data() -> Seed:
    return generate()


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage, data: Seed) -> Storage:
    store = chdb_storage
    batches = [data.calls[i : i + 100] for i in range(0, len(data.calls), 100)]
    for i, batch in enumerate(batches):
        store.insert_calls(batch, dedup_token=f"wal-{i}")
    # a collector restart replays a WAL range: same batch, same token
    store.insert_calls(batches[3], dedup_token="wal-3")
    store.insert_rows("cost_restatements", restatement_rows(data), RESTATEMENT_COLUMNS)
    store_usage(store, parse_usage_csv(USAGE_CSV), "usage.csv")
    return store


def production(data: Seed, window: Window = WINDOW) -> list:  # type: ignore[type-arg]
    return [c for c in data.calls if c.environment == "production" and window.since <= c.start_time < window.until]


def cost(data: Seed, call) -> Decimal:  # type: ignore[no-untyped-def]
    return (call.cost_usd or Decimal(0)) + data.delta_of(call)


# --- weekly ---------------------------------------------------------------------------


def expected_weekly(data: Seed) -> dict[tuple[date, str], dict[str, object]]:
    sessions = session_costs(data)
    spend: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    calls: dict[tuple[date, str], int] = defaultdict(int)
    unpriced: dict[tuple[date, str], int] = defaultdict(int)
    for c in data.calls:
        if c.environment != "production":
            continue
        key = (monday(c.start_time.date()), c.feature)
        spend[key] += cost(data, c)
        calls[key] += 1
        unpriced[key] += c.cost_usd is None

    def p50(key: tuple[date, str]) -> Decimal | None:
        priced = [s.cost for s in sessions.get(key, {}).values() if s.priced]
        return quantile(priced, 0.5) if priced else None

    expected = {}
    for key in spend:
        week, feature = key
        if week < WEEKS[1]:
            continue
        priced = [s.cost for s in sessions[key].values() if s.priced]
        baseline = [
            s.cost
            for w in range(1, 5)
            for s in sessions.get((week - timedelta(days=7 * w), feature), {}).values()
            if s.priced
        ]
        anomalous = 0
        if len(baseline) >= 10:
            median = quantile(baseline, 0.5)
            mad = quantile([abs(b - median) for b in baseline], 0.5)
            threshold = median + mad * Decimal("5.1891")
            anomalous = sum(1 for c in priced if c > threshold and c > 2 * median)
        previous = p50((week - timedelta(days=7), feature))
        current = p50(key)
        revenue = revenue_in(REVENUE, week, week + timedelta(days=7))
        expected[key] = {
            "spend_usd": spend[key],
            "calls": calls[key],
            "unpriced_calls": unpriced[key],
            "sessions": len(sessions[key]),
            "unpriced_sessions": sum(1 for s in sessions[key].values() if not s.priced),
            "session_p50_usd": current,
            "session_p95_usd": quantile(priced, 0.95),
            "median_change_pct": ratio((current - previous) * 100, previous) if current and previous else None,
            "anomalous_sessions": anomalous,
            "revenue_usd": revenue,
            "cost_to_revenue_pct": ratio(spend[key] * 100, revenue),
        }
    return expected


@pytest.mark.parametrize("source", SOURCES)
def test_weekly_features(storage: Storage, data: Seed, source: Source) -> None:
    expected = expected_weekly(data)
    rows = weekly_features(storage, WINDOW, source)
    got = {(r.week, r.feature): r for r in rows}
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert {k: getattr(row, k) for k in want} == want, key
    # the seed has a runaway support-bot session in the last week, and it is found
    assert got[(WEEKS[5], "support-bot")].anomalous_sessions >= 1
    assert sum(r.anomalous_sessions for r in rows) == sum(int(e["anomalous_sessions"]) for e in expected.values())  # type: ignore[call-overload]


def test_weekly_features_all_environments_include_staging(storage: Storage, data: Seed) -> None:
    rows = weekly_features(storage, Window(WINDOW.since, WINDOW.until, "all"))
    staging = [c for c in data.calls if c.environment == "staging" and WINDOW.since <= c.start_time < WINDOW.until]
    prod = weekly_features(storage, WINDOW)
    assert sum(r.calls for r in rows) - sum(r.calls for r in prod) == len(staging)
    assert sum(r.spend_usd for r in rows) - sum(r.spend_usd for r in prod) == sum(c.cost_usd for c in staging)


def test_regressions(storage: Storage, data: Seed) -> None:
    sessions = session_costs(data)
    medians = {
        key: quantile([s.cost for s in v.values() if s.priced], 0.5)
        for key, v in sessions.items()
        if any(s.priced for s in v.values()) and WEEKS[0] <= key[0]
    }
    expected = []
    for feature in sorted({f for _, f in medians}):
        streak = 0
        for i in range(1, len(WEEKS)):
            now, before = medians.get((WEEKS[i], feature)), medians.get((WEEKS[i - 1], feature))
            if now is not None and before and now >= before * Decimal("1.05"):
                streak += 1
                if streak >= 2:
                    expected.append((feature, WEEKS[i], now, before, streak))
            else:
                streak = 0
    window = Window(at(WEEKS[0]), at(WEEKS[5]) + timedelta(days=7))
    got = [
        (r.feature, r.week, r.session_p50_usd, r.previous_p50_usd, r.consecutive_weeks)
        for r in regressions(storage, window)
    ]
    assert got == expected
    assert ("support-bot", WEEKS[3]) in {(f, w) for f, w, *_ in got}  # the seeded growth is caught


# --- breakdowns -----------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("dimension", [Dimension.tenant, Dimension.version, Dimension.user, Dimension.plan])
def test_breakdown(storage: Storage, data: Seed, source: Source, dimension: Dimension) -> None:
    spend: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    roots: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in production(data):
        key = (c.feature, getattr(c, dimension.column))
        spend[key] += cost(data, c)
        roots[key].add(c.root_id)
    got = {
        (r.feature, r.value): (r.spend_usd, r.actions, r.cost_per_action_usd)
        for r in breakdown(storage, WINDOW, dimension, source=source)
    }
    assert got == {k: (spend[k], len(roots[k]), ratio(spend[k], len(roots[k]))) for k in spend}


def test_decomposition(storage: Storage, data: Seed) -> None:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    roots: dict[str, set[str]] = defaultdict(set)
    for c in production(data):
        t = totals[c.feature]
        t["calls"] += 1
        t["input"] += c.input_tokens
        t["output"] += c.output_tokens
        t["read"] += c.cache_read_tokens
        t["write"] += c.cache_write_tokens
        t["reasoning"] += c.reasoning_tokens
        roots[c.feature].add(c.root_id)
    rows = {r.feature: r for r in decomposition(storage, WINDOW)}
    assert set(rows) == set(totals)
    for feature, t in totals.items():
        n = len(roots[feature])
        r = rows[feature]
        assert r.actions == n
        assert r.turns_per_action == ratio(t["calls"], n)
        assert r.input_tokens_per_action == ratio(t["input"], n)
        assert r.output_tokens_per_action == ratio(t["output"], n)
        assert r.cache_read_tokens_per_action == ratio(t["read"], n)
        assert r.cache_write_tokens_per_action == ratio(t["write"], n)
        assert r.reasoning_tokens_per_action == ratio(t["reasoning"], n)
        assert r.uncached_input_tokens_per_action == ratio(t["input"] - t["read"] - t["write"], n)


def test_cache_effectiveness(storage: Storage, data: Seed) -> None:
    # Published prices, USD per million tokens: (input, cache read, cache write).
    published = {"gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), None),
                 "claude-sonnet-4-6": (Decimal(3), Decimal("0.30"), Decimal("3.75"))}  # fmt: skip
    saved: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in production(data):
        tokens[c.feature][0] += c.input_tokens
        tokens[c.feature][1] += c.cache_read_tokens
        if c.request_model in published:
            p_in, p_read, p_write = published[c.request_model]
            saved[c.feature] += (
                c.cache_read_tokens * (p_in - p_read) - c.cache_write_tokens * ((p_write or p_in) - p_in)
            ) / 1_000_000
    rows = {r.feature: r for r in cache_effectiveness(storage, WINDOW)}
    assert rows["support-bot"].saved_usd == saved["support-bot"] > 0
    assert rows["draft-email"].saved_usd == saved["draft-email"] < 0  # writes only: caching cost money
    for feature, (inp, read) in tokens.items():
        assert rows[feature].hit_ratio == ratio(read, inp)


def test_cache_savings_use_each_tenants_contract_prices(storage: Storage, data: Seed) -> None:
    # One tenant has a contract price for the model support-bot caches on; the others pay list price.
    pricer = Pricer(
        Overrides.parse(
            "prices: [{model: gpt-4o-mini, tenant: globex, input_mtok: '0.10', output_mtok: '0.40', "
            "cache_read_mtok: '0.02'}]"
        )
    )
    list_price, contract = (Decimal("0.15"), Decimal("0.075")), (Decimal("0.10"), Decimal("0.02"))
    saved = Decimal(0)
    for c in production(data):
        if c.feature == "support-bot" and c.request_model == "gpt-4o-mini":
            p_in, p_read = contract if c.tenant == "globex" else list_price
            saved += c.cache_read_tokens * (p_in - p_read) / 1_000_000
    assert saved > 0
    with_contract = {r.feature: r for r in cache_effectiveness(storage, WINDOW, pricer=pricer)}["support-bot"]
    list_only = {r.feature: r for r in cache_effectiveness(storage, WINDOW)}["support-bot"]
    assert with_contract.saved_usd == saved
    assert with_contract.saved_usd != list_only.saved_usd
    # the report API and the CLI go through run_report, which takes the collector's pricer
    payload = run_report("cache", storage, WINDOW, ReportOptions(), pricer)
    assert Decimal(next(r for r in payload["rows"] if r["feature"] == "support-bot")["saved_usd"]) == saved


# --- outliers, unattributed, feature costs ----------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_outliers_and_unattributed_share(storage: Storage, data: Seed, source: Source) -> None:
    per_root: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    total = Decimal(0)
    unattributed = Decimal(0)
    for c in production(data):
        per_root[(c.feature, c.root_id)] += cost(data, c)
        total += cost(data, c)
        unattributed += cost(data, c) if c.feature == "unattributed" else 0
    top = sorted(per_root.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    rows, totals = outliers(storage, WINDOW, 5, source)
    assert [((r.feature, r.root_id), r.spend_usd) for r in rows] == top
    assert [r.share for r in rows] == [ratio(v, total) for _, v in top]
    assert totals.spend_usd == total
    assert totals.unattributed_spend_usd == unattributed
    assert totals.unattributed_share == ratio(unattributed, total)
    assert totals.top_n_share == ratio(sum(v for _, v in top), total)


def test_feature_costs_still_count_unpriced_calls(storage: Storage, data: Seed) -> None:
    rows = {r.feature: r for r in feature_costs(storage, WINDOW)}
    calls = production(data)
    unpriced = sum(1 for c in calls if c.feature == "draft-email" and c.cost_usd is None)
    assert unpriced > 0
    assert rows["draft-email"].unpriced_calls == unpriced
    assert rows["draft-email"].calls == sum(1 for c in calls if c.feature == "draft-email")


def test_feature_costs_include_restatements(storage: Storage, data: Seed) -> None:
    window = Window(at(WEEKS[0]), at(WEEKS[5]) + timedelta(days=7))
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for c in production(data, window):
        expected[c.feature] += cost(data, c)
    assert any(r.call.cost_usd is None for r in data.restatements)  # an unpriced call restated too
    assert {r.feature: r.cost_usd for r in feature_costs(storage, window)} == dict(expected)


# --- margin and allocation ---------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_tenant_margin(storage: Storage, data: Seed, source: Source) -> None:
    start, end = date(2026, 9, 14), date(2026, 10, 12)
    window = Window(at(start) + timedelta(hours=5), at(end) - timedelta(hours=3))  # widened to whole days
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for c in production(data, Window(at(start), at(end))):
        spend[c.tenant] += cost(data, c)
    rows = {r.tenant: r for r in tenant_margin(storage, window, source)}
    assert set(rows) == {"acme", "globex", "initech"}
    for tenant in ("acme", "globex"):
        revenue = revenue_in([r for r in REVENUE if r[0] == tenant], start, end)
        users = max(u for first, last, u in ACTIVE_USERS[tenant] if first < end and last >= start)
        row = rows[tenant]
        assert row.spend_usd == spend[tenant]
        assert row.revenue_usd == revenue
        assert row.margin_usd == revenue - spend[tenant]
        assert row.cost_to_revenue_pct == ratio(spend[tenant] * 100, revenue)
        assert row.active_users == users
        assert row.cost_per_active_user_usd == ratio(spend[tenant], users)
    assert rows["acme"].revenue_usd == Decimal(2800)  # 17 September days at 100 + 11 October days at 100
    assert rows["initech"].revenue_usd is None
    assert rows["initech"].margin_usd is None


@pytest.mark.parametrize("source", SOURCES)
def test_shared_cost_allocation(storage: Storage, data: Seed, source: Source) -> None:
    direct: dict[str, Decimal] = defaultdict(Decimal)
    shared: dict[str, Decimal] = defaultdict(Decimal)
    roots: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in production(data):
        if c.feature == "embeddings":
            shared[c.tenant] += cost(data, c)
        else:
            direct[c.feature] += cost(data, c)
            roots[(c.tenant, c.feature)].add(c.root_id)
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    for tenant, amount in shared.items():
        users = {f: len(r) for (t, f), r in roots.items() if t == tenant}
        total = sum(users.values())
        with localcontext() as ctx:
            ctx.prec = 80
            parts = {f: (amount * n / total).quantize(Q, rounding=ROUND_DOWN) for f, n in users.items()}
        biggest = sorted(users, key=lambda f: (-users[f], f))[0]
        parts[biggest] += amount - sum(parts.values())
        for f, part in parts.items():
            allocated[f] += part
    rows = {r.feature: r for r in shared_cost_allocation(storage, WINDOW, ["embeddings"], source)}
    assert "embeddings" not in rows
    assert {f: (r.direct_spend_usd, r.allocated_usd) for f, r in rows.items()} == {
        f: (direct[f], allocated[f]) for f in direct
    }
    assert sum(r.total_usd for r in rows.values()) == sum(direct.values()) + sum(shared.values())
    assert all(r.rule == "usage-share/v1" for r in rows.values())


@pytest.mark.parametrize("source", SOURCES)
def test_unit_costs(storage: Storage, data: Seed, source: Source) -> None:
    start, end = date(2026, 9, 21), date(2026, 10, 5)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for c in production(data, Window(at(start), at(end))):
        spend[c.feature] += cost(data, c)
    # usage.support-bot: 120 in September (30 days), 130 in October (31 days)
    usage = revenue_in(
        [("acme", date(2026, 9, 1), date(2026, 9, 30), Decimal(120)),
         ("acme", date(2026, 10, 1), date(2026, 10, 31), Decimal(130))], start, end,
    )  # fmt: skip
    rows = {r.feature: r for r in unit_costs(storage, Window(at(start), at(end)), source)}
    assert rows["support-bot"].usage_count == usage
    assert rows["support-bot"].cost_per_unit_usd == ratio(spend["support-bot"], usage)
    assert rows["draft-email"].usage_count is None
    assert {f: r.spend_usd for f, r in rows.items()} == dict(spend)
