"""What-if repricing on real chDB: a feature's stored calls re-priced at another model,
against numbers worked out by hand below from the providers' published prices (USD per
million tokens): gpt-4o 2.50 in / 1.25 cached in / 10.00 out, gpt-4o-mini 0.15 / 0.075 / 0.60."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports import ReportError, ReportOptions, Source, Window, run_report
from featurecost.collector.reports.whatif import TOKENIZER_CAVEAT, Target, WhatIfError, whatif
from featurecost.collector.storage.client import Storage
from tests.collector.reports.seed import RESTATEMENT_COLUMNS, Restatement, Seed, restatement_rows

D = Decimal
WEEK_A = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
WEEK_B = WEEK_A + timedelta(days=7)
WINDOW = Window(WEEK_A, WEEK_B + timedelta(days=7))
MINI = Target("openai", "gpt-4o-mini")


def call(n: int, when: datetime, tenant: str, root: str, cost: str | None, *, inp: int, out: int, read: int = 0,
         feature: str = "summarize", environment: str = "production") -> CallRecord:  # fmt: skip
    return CallRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=when, end_time=when + timedelta(seconds=1),
        environment=environment, service_name="app", feature=feature, tenant=tenant, user_id="u", plan="",
        root_id=root, session_id=root, version="", operation="chat", provider="openai",
        request_model="gpt-4o", response_model="gpt-4o-2024-08-06", input_tokens=inp, output_tokens=out,
        cache_read_tokens=read, cache_write_tokens=0, reasoning_tokens=0, usage_source="reported", status="ok",
        cost_usd=None if cost is None else D(cost), price_source="" if cost is None else "genai-prices",
        unpriced_reason="no price" if cost is None else "",
    )  # fmt: skip


# Actual costs are gpt-4o's; the comment after each call is the same usage at gpt-4o-mini.
CALLS = [
    # 6000 uncached + 4000 cached in, 1000 out: 0.015 + 0.005 + 0.01     | 0.0009 + 0.0003 + 0.0006
    call(1, WEEK_A + timedelta(days=1, hours=10), "acme", "r1", "0.03", inp=10_000, out=1000, read=4000),
    call(2, WEEK_A + timedelta(days=1, hours=10, minutes=1), "acme", "r1", "0.01", inp=2000, out=500),  # 0.0006
    call(3, WEEK_A + timedelta(days=2), "globex", "r2", "0.0035", inp=1000, out=100),  # 0.00021
    call(4, WEEK_B + timedelta(days=1), "acme", "r3", "0.03", inp=4000, out=2000),  # 0.0018
    call(5, WEEK_B + timedelta(days=2), "acme", "r4", None, inp=1000, out=1000),  # unpriced: left out
    call(6, WEEK_B + timedelta(days=3), "globex", "r5", None, inp=1000, out=100),  # restated to 0.002 | 0.00021
    call(7, WEEK_B + timedelta(days=3), "acme", "x1", "1", inp=1000, out=100, feature="other"),
    call(8, WEEK_B + timedelta(days=3), "acme", "s1", "1", inp=1000, out=100, environment="staging"),
    call(9, WEEK_B + timedelta(days=14), "acme", "late", "1", inp=1000, out=100),  # after the window
    # another instrumentation's span of call 1 (same response id): billed once, on call 1
    replace(
        call(10, WEEK_A + timedelta(days=1, hours=10), "acme", "r1", "0.03", inp=10_000, out=1000, read=4000),
        superseded_by=f"{1:016x}",
        rollup_sign=0,
    ),
]


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage) -> Storage:
    store = chdb_storage
    store.insert_calls(CALLS, dedup_token="a")
    store.insert_calls([replace(CALLS[3])], dedup_token="b")  # an SDK retry delivered call 4 twice
    seed = Seed(restatements=[Restatement(CALLS[5], D("0.002"), "r1")])
    store.insert_rows("cost_restatements", restatement_rows(seed), RESTATEMENT_COLUMNS)
    return store


def test_weeks_actions_and_totals_are_the_hand_computed_ones(storage: Storage) -> None:
    payload = whatif(storage, WINDOW, "summarize", MINI)
    assert [(r["week"], r["calls"], D(r["actual_usd"]), D(r["whatif_usd"]), r["unpriced_calls"])
            for r in payload["rows"]] == [
        ("2026-10-05", 3, D("0.0435"), D("0.00261"), 0),
        ("2026-10-12", 2, D("0.032"), D("0.00201"), 1),
    ]  # fmt: skip
    first = payload["rows"][0]
    assert D(first["difference_usd"]) == D("-0.04089")
    assert D(first["change_pct"]) == D(-94)  # 0.04089 / 0.0435
    assert payload["totals"] == {"calls": 5, "unpriced_calls": 1, "actual_usd": str(D("0.0755").quantize(D("1e-18"))),
                                 "whatif_usd": "0.004620000000000000",
                                 "difference_usd": "-0.070880000000000000"}  # fmt: skip
    # actions r1 (0.04 | 0.0024), r2 (0.0035 | 0.00021), r3 (0.03 | 0.0018), r5 (0.002 | 0.00021); r4 unpriced
    actions = {k: v if isinstance(v, int) else D(v) for k, v in payload["actions"].items()}
    assert actions == {"actions": 4, "actual_p50_usd": D("0.03"), "actual_p95_usd": D("0.04"),
                       "whatif_p50_usd": D("0.0018"), "whatif_p95_usd": D("0.0024")}  # fmt: skip
    assert payload["current_models"] == ["openai/gpt-4o-2024-08-06"]
    assert payload["caveat"] == TOKENIZER_CAVEAT


def test_one_tenant(storage: Storage) -> None:
    payload = whatif(storage, WINDOW, "summarize", MINI, tenant="acme")
    assert [(r["calls"], D(r["whatif_usd"]), r["unpriced_calls"]) for r in payload["rows"]] == [
        (2, D("0.0024"), 0),
        (1, D("0.0018"), 1),
    ]


def test_token_ratio_scales_every_count(storage: Storage) -> None:
    payload = whatif(storage, WINDOW, "summarize", MINI, token_ratio=D("1.5"))
    assert D(payload["totals"]["whatif_usd"]) == D("0.00693")  # 1.5 x 0.00462: every count here scales exactly
    assert D(payload["totals"]["actual_usd"]) == D("0.0755")  # the actual bill is what it was
    assert payload["token_ratio"] == "1.5"


def test_target_priced_at_each_tenants_contract_and_each_days_price(storage: Storage) -> None:
    pricer = Pricer(
        Overrides.parse(
            "prices: [{model: gpt-4o-mini, tenant: globex, input_mtok: '0.10', output_mtok: '0.40'},"
            " {model: gpt-4o-mini, tenant: acme, effective_from: 2026-10-10, input_mtok: '1.00', output_mtok: '1.00'}]"
        )
    )
    payload = whatif(storage, WINDOW, "summarize", MINI, pricer=pricer)
    # week A: acme list price 0.0024, globex 1000 x 0.10 + 100 x 0.40 = 0.00014
    # week B: acme from Oct 10 at 1.00 / 1.00: 6000 tokens = 0.006; globex 0.00014
    assert [D(r["whatif_usd"]) for r in payload["rows"]] == [D("0.00254"), D("0.00614")]


def test_same_model_reprices_to_the_stored_cost(storage: Storage) -> None:
    payload = whatif(storage, WINDOW, "summarize", Target("openai", "gpt-4o"), tenant="acme")
    assert [(D(r["actual_usd"]), D(r["whatif_usd"])) for r in payload["rows"]] == [
        (D("0.04"), D("0.04")),
        (D("0.03"), D("0.03")),
    ]


def test_unpriceable_target_is_an_error_naming_the_model(storage: Storage) -> None:
    with pytest.raises(WhatIfError, match="openai/gpt-9-imaginary"):
        whatif(storage, WINDOW, "summarize", Target("openai", "gpt-9-imaginary"))
    empty = Window(WEEK_A - timedelta(days=70), WEEK_A - timedelta(days=63))
    with pytest.raises(WhatIfError, match="openai/gpt-9-imaginary"):  # even with nothing to re-price
        whatif(storage, empty, "summarize", Target("openai", "gpt-9-imaginary"))
    with pytest.raises(ReportError, match="provider/model"):
        run_report("whatif", storage, WINDOW, ReportOptions(feature="summarize", model="gpt-4o-mini"))
    with pytest.raises(ReportError, match="feature"):
        run_report("whatif", storage, WINDOW, ReportOptions(model="openai/gpt-4o-mini"))
    with pytest.raises(ReportError, match="token_ratio"):
        ReportOptions.from_query({"feature": "summarize", "model": "openai/gpt-4o-mini", "token_ratio": "x"})


def test_options_round_trip_through_the_query_string(storage: Storage) -> None:
    options = ReportOptions(Source.raw, feature="summarize", model="openai/gpt-4o-mini", tenant="acme",
                            token_ratio=D("1.25"))  # fmt: skip
    assert ReportOptions.from_query(options.to_query()) == options


def test_cli_table_states_the_caveat_and_errors_name_the_model(storage: Storage, tmp_path: Path) -> None:
    # the module's chDB session is in this process: the CLI reads it through the same DSN
    args = ["report", "whatif", "--storage", storage.dsn, "--since", WINDOW.since.isoformat(),
            "--until", WINDOW.until.isoformat(), "--feature", "summarize"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--model", "openai/gpt-4o-mini", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert D(json.loads(result.stdout)["totals"]["whatif_usd"]) == D("0.00462")
    table = CliRunner().invoke(app, [*args, "--model", "openai/gpt-4o-mini"])
    assert table.exit_code == 0, table.output
    assert "tokenizer" in table.stdout
    bad = CliRunner().invoke(app, [*args, "--model", "openai/gpt-9-imaginary"])
    assert bad.exit_code != 0
    assert "openai/gpt-9-imaginary" in bad.output
