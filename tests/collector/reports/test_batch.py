"""Batch opportunity on real chDB: calls marked ``featurecost.latency`` (declared ``batch`` or
inferred ``background``) priced at standard vs Batch API prices of their day, against numbers
worked out by hand from the published prices (USD per million tokens):
claude-haiku-4-5 standard 1 in / 0.10 cache read / 5 out, batch 0.50 / 0.05 / 2.50;
gpt-4o-mini standard 0.15 in / 0.60 out, batch 0.075 / 0.30 — both batch prices in the
pinned genai-prices data from 2026-10-14 on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from featurecost.collector.cli.app import app
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports import ReportOptions, Window, run_report
from featurecost.collector.reports.batch import batch_opportunity
from featurecost.collector.storage.client import Storage

D = Decimal
SINCE = datetime(2026, 10, 5, tzinfo=UTC)
WINDOW = Window(SINCE, SINCE + timedelta(days=35))  # five weeks


def call(n: int, day: int, feature: str, model: str, latency: str | None, *, inp: int, out: int = 0, read: int = 0,
         tier: str = "", status: str = "ok", provider: str = "openai") -> CallRecord:  # fmt: skip
    when = datetime(2026, 10, 1, 9, tzinfo=UTC) + timedelta(days=day - 1)
    return CallRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=when, end_time=when, environment="production",
        service_name="worker", feature=feature, tenant="acme", user_id="", plan="", root_id=f"r{n}",
        session_id=f"r{n}", version="", operation="chat", provider=provider, request_model=model,
        response_model=model, input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=0,
        reasoning_tokens=0, usage_source="reported", status=status, service_tier=tier,
        attributes={} if latency is None else {"featurecost.latency": latency}, cost_usd=D("0.01"),
    )  # fmt: skip


CALLS = [
    # declared batch, Nov 2: 8000 uncached + 2000 cache read in, 1000 out
    #   standard 0.008 + 0.0002 + 0.005 = 0.0132, batch 0.004 + 0.0001 + 0.0025 = 0.0066
    call(1, 33, "nightly-digest", "claude-haiku-4-5", "batch", inp=10_000, read=2000, out=1000, provider="anthropic"),
    # no parent span, Nov 3: 100k in: standard 0.015, batch 0.0075
    call(2, 34, "backfill", "gpt-4o-mini", "background", inp=100_000),
    # no parent span, Oct 10 (no batch price yet): 20k in, 0.003 either way
    call(3, 10, "backfill", "gpt-4o-mini", "background", inp=20_000),
    call(4, 34, "chat", "gpt-4o-mini", None, inp=100_000),  # in a user request
    call(5, 34, "chat", "gpt-4o-mini", "interactive", inp=100_000),  # declared interactive
    call(6, 34, "backfill", "gpt-4o-mini", "background", inp=100_000, tier="batch"),  # already on batch
    call(7, 34, "backfill", "gpt-4o-mini", "background", inp=100_000, status="error"),  # failed: billed nothing
    call(8, 34, "legacy-job", "gpt-9-imaginary", "batch", inp=1000),  # no price at all
    # another instrumentation's span of call 2: billed once, on call 2
    replace(
        call(9, 34, "backfill", "gpt-4o-mini", "background", inp=100_000), superseded_by=f"{2:016x}", rollup_sign=0
    ),
]


@pytest.fixture(scope="module")
def storage(chdb_storage: Storage) -> Storage:
    store = chdb_storage
    store.insert_calls(CALLS, dedup_token="a")
    store.insert_calls(CALLS[1:2], dedup_token="b")  # call 2 delivered twice: counted once
    return store


def test_saving_per_feature_at_each_days_batch_price(storage: Storage) -> None:
    rows = {r.feature: r for r in batch_opportunity(storage, WINDOW)}
    assert set(rows) == {"backfill", "nightly-digest", "legacy-job"}
    backfill = rows["backfill"]
    assert (backfill.calls, backfill.standard_usd, backfill.batch_usd) == (2, D("0.018"), D("0.0105"))
    assert backfill.saving_usd == D("0.0075")
    assert backfill.saving_per_week_usd == D("0.0015")  # 0.0075 over 35 days, x 7
    assert backfill.basis == ["no parent span"]
    assert backfill.no_batch_price == ["openai/gpt-4o-mini"]  # on Oct 10
    digest = rows["nightly-digest"]
    assert (digest.standard_usd, digest.saving_usd, digest.saving_pct) == (D("0.0132"), D("0.0066"), D(50))
    assert digest.basis == ["declared batch"]
    assert digest.no_batch_price == []
    legacy = rows["legacy-job"]
    assert legacy.unpriced_models == ["openai/gpt-9-imaginary"]
    assert legacy.saving_usd == 0
    assert [r.feature for r in batch_opportunity(storage, WINDOW)] == ["backfill", "nightly-digest", "legacy-job"]


def test_a_tenants_prices_file_batch_entry_is_its_batch_price(storage: Storage) -> None:
    pricer = Pricer(
        Overrides.parse(
            "prices: [{model: gpt-4o-mini, tenant: acme, service_tier: batch, input_mtok: '0.05', output_mtok: '0.20'}]"
        )
    )
    backfill = {r.feature: r for r in batch_opportunity(storage, WINDOW, pricer)}["backfill"]
    # 120k input tokens at 0.05 on both days
    assert (backfill.batch_usd, backfill.saving_usd, backfill.no_batch_price) == (D("0.006"), D("0.012"), [])
    payload = run_report("batch", storage, WINDOW, ReportOptions(), pricer)
    assert D(next(r for r in payload["rows"] if r["feature"] == "backfill")["saving_usd"]) == D("0.012")


def test_cli(storage: Storage) -> None:
    result = CliRunner().invoke(app, ["report", "batch", "--storage", storage.dsn, "--since", WINDOW.since.isoformat(),
                                      "--until", WINDOW.until.isoformat(), "--format", "csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("feature,basis,calls,standard_usd,batch_usd,saving_usd,saving_per_week_usd")
    assert lines[1].startswith("backfill,no parent span,2,")
