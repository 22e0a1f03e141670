"""The report API and CLI against a real collector process that owns the chDB directory:
``featurecost import usage`` and ``featurecost report ...`` go through its API."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from featurecost.collector.server import default_storage_dsn
from featurecost.collector.storage.client import Storage
from tests.collector.reports.seed import WEEKS, Seed, generate, monday, ratio, revenue_in
from testsupport.cli import cli
from testsupport.harness import Collector, running_collector

GOOD_CSV = """tenant,period_start,period_end,revenue_usd,active_users,usage.support-bot,usage.draft-email
acme,2026-09-14,2026-09-20,700,10,50,5
globex,2026-09-14,2026-09-20,70,2,,
"""
BAD_CSV = """tenant,day,revenue_usd,active_users
acme,2026-09-14,100,3
,2026-09-15,100,3
globex,2026-13-01,5,1
initech,2026-09-16,-4,1
umbrella,2026-09-17,12,many
"""


@pytest.fixture(scope="module")
def data() -> Seed:
    return generate()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, data: Seed) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("api")
    store = Storage(default_storage_dsn(base / "data"))
    try:
        store.migrate()
        store.insert_calls(data.calls, dedup_token="seed")
    finally:
        store.close()  # the collector process owns the directory from here on
    with running_collector(base / "data", base / "logs") as running:
        yield running


WEEK = (datetime(2026, 9, 14, tzinfo=UTC), datetime(2026, 9, 21, tzinfo=UTC))


def test_import_rejects_a_bad_file_whole_and_names_every_bad_row(collector: Collector, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    code, _, err = cli("import", "usage", str(bad), "--api", collector.api_url)
    assert code == 1
    assert "nothing imported" in err
    for line, word in ((3, "tenant"), (4, "day"), (5, "revenue_usd"), (6, "active_users")):
        assert f"bad.csv:{line}" in err and word in err  # noqa: PT018
    assert "bad.csv:2" not in err
    # the API says the same, with a 400
    response = httpx.post(f"{collector.api_url}/api/v1/import/usage", content=BAD_CSV.encode(), timeout=30)
    assert response.status_code == 400
    assert sorted({e["line"] for e in response.json()["errors"]}) == [3, 4, 5, 6]


def test_import_then_weekly_and_margin_through_the_api(collector: Collector, tmp_path: Path, data: Seed) -> None:
    good = tmp_path / "usage.csv"
    good.write_text(GOOD_CSV)
    code, _, err = cli("import", "usage", str(good), "--api", collector.api_url)
    assert code == 0, err
    assert "imported 2 row(s)" in err

    since, until = (t.isoformat() for t in WEEK)
    code, out, err = cli("report", "weekly", "--api", collector.api_url, "--since", since, "--until", until,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for c in data.calls:
        if c.environment == "production" and monday(c.start_time.date()) == WEEKS[1]:
            spend[c.feature] += c.cost_usd or Decimal(0)
    imported = [
        ("acme", date(2026, 9, 14), date(2026, 9, 20), Decimal(700)),
        ("globex", date(2026, 9, 14), date(2026, 9, 20), Decimal(70)),
    ]
    revenue = revenue_in(imported, WEEKS[1], WEEKS[2])
    rows = {r["feature"]: r for r in payload["rows"]}
    assert {f: Decimal(r["spend_usd"]) for f, r in rows.items()} == dict(spend)
    assert {f: r["cost_to_revenue_pct"] for f, r in rows.items()} == {
        f: str(ratio(s * 100, revenue)) for f, s in spend.items()
    }

    code, out, err = cli("report", "margin", "--api", collector.api_url, "--since", since, "--until", until,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    margin = {r["tenant"]: r for r in json.loads(out)["rows"]}
    assert margin["acme"]["revenue_usd"] == "700"  # full precision, as a plain decimal
    assert margin["acme"]["active_users"] == 10
    assert margin["initech"]["revenue_usd"] is None

    # the table renders every feature with its money
    code, out, err = cli("report", "weekly", "--api", collector.api_url, "--since", since, "--until", until)
    assert code == 0, err
    for feature in spend:
        assert feature in out


def test_api_errors_are_clear(collector: Collector) -> None:
    base = f"{collector.api_url}/api/v1/reports"
    assert httpx.get(f"{base}/no-such-report", timeout=30).status_code == 404
    response = httpx.get(f"{base}/breakdown", params={"dimension": "colour"}, timeout=30)
    assert response.status_code == 400
    assert "colour" in response.json()["error"]
    response = httpx.get(f"{base}/allocation", timeout=30)
    assert response.status_code == 400
    assert "shared" in response.json()["error"]
    response = httpx.get(f"{base}/weekly", params={"since": "yesterday"}, timeout=30)
    assert response.status_code == 400


def test_every_report_answers_through_the_api(collector: Collector) -> None:
    since = (WEEK[0] - timedelta(days=21)).isoformat()
    for name, extra in (("breakdown", ["--by", "version"]), ("decomposition", []), ("cache", []),
                        ("outliers", ["--top", "3"]), ("allocation", ["--shared", "embeddings"]), ("unit-costs", []),
                        ("features", [])):  # fmt: skip
        code, out, err = cli("report", name, "--api", collector.api_url, "--since", since,
                             "--until", WEEK[1].isoformat(), "--format", "csv", *extra)  # fmt: skip
        assert code == 0, (name, err)
        assert out.strip(), name


def test_regressions_through_the_api(collector: Collector) -> None:
    until = (datetime(2026, 10, 19, tzinfo=UTC)).isoformat()
    code, out, err = cli("report", "regressions", "--api", collector.api_url, "--since", "2026-09-07T00:00:00+00:00",
                         "--until", until, "--format", "json")  # fmt: skip
    assert code == 0, err
    assert {(r["feature"], r["week"]) for r in json.loads(out)["rows"]} >= {("support-bot", "2026-09-28")}


def test_drift_and_rebuild_through_the_api(collector: Collector, data: Seed) -> None:
    response = httpx.get(f"{collector.api_url}/api/v1/reports/drift", timeout=60)
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert sum(r["stored_calls"] for r in rows) == len(data.calls)
    assert all(r["drift"] == 0 for r in rows)
    assert (
        httpx.post(f"{collector.api_url}/api/v1/rollups/rebuild", params={"month": "2026-13"}, timeout=60).status_code
        == 400
    )
    # the current month still takes calls: a rebuild under ingest would under-count it
    current = datetime.now(UTC).strftime("%Y%m")
    refused = httpx.post(f"{collector.api_url}/api/v1/rollups/rebuild", params={"month": current}, timeout=60)
    assert refused.status_code == 409
    assert "still open" in refused.json()["error"]
    response = httpx.post(f"{collector.api_url}/api/v1/rollups/rebuild", params={"month": "202609"}, timeout=60)
    assert response.json() == {"rebuilt": 202609}
    after = httpx.get(f"{collector.api_url}/api/v1/reports/drift", timeout=60).json()["rows"]
    assert after == rows


def test_raw_source_through_the_api_matches_the_rollups(collector: Collector) -> None:
    params = {"since": "2026-09-07T00:00:00+00:00", "until": "2026-10-19T00:00:00+00:00", "dimension": "plan"}
    for name in ("weekly", "breakdown", "cache"):
        rollup = httpx.get(f"{collector.api_url}/api/v1/reports/{name}", params=params, timeout=60).json()
        raw = httpx.get(f"{collector.api_url}/api/v1/reports/{name}", params={**params, "source": "raw"}, timeout=60)
        assert raw.json()["source"] == "raw"
        assert raw.json()["rows"] == rollup["rows"], name
        assert rollup["rows"], name


def test_table_cells_put_the_sign_before_the_dollar() -> None:
    from featurecost.collector.cli.reports import _cell

    assert _cell("margin_usd", "-0.011126") == "-$0.0111"
    assert _cell("spend_usd", "1234.5") == "$1,234.50"
    assert _cell("margin_pct", "-12.34") == "-12.3%"
