"""Calls go into embedded chDB as Arrow tables (``Storage.insert_calls`` on a ``chdb://`` DSN):
the rows must be exactly what clickhouse-connect's Native insert stores on a server (money to
the last of its 18 decimal places), a replayed insert with the same token must be dropped, and
an engine rejection must read like clickhouse-connect's so the pipeline isolates it the same way.
Real engines: chDB in process, and the ClickHouse HTTP fixture (chDB in its own process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pipeline.worker import _is_bad_data
from featurecost.collector.storage.client import Storage, arrow_type
from testsupport.collector import ClickHouseHttp, start_clickhouse_http

# every value shape the calls table takes: maps, arrays, NULL and awkward money, µs timestamps
_MONEY = [
    Decimal("0.000000150000000001"),  # 18 places: exact
    Decimal("0.1234567890123456789"),  # 19 places: both paths round it to 18, half-even
    Decimal("1234567890.5"),
    Decimal("1E+2"),
    Decimal("0E-25"),
    None,
]


def _calls(count: int, feature: str = "f") -> list[CallRecord]:
    out = []
    for n in range(count):
        money = _MONEY[n % len(_MONEY)]
        out.append(
            CallRecord(
                trace_id=f"{n:032x}",
                span_id=f"{n + 1:016x}",
                start_time=datetime(2026, 11, 1 + n % 28, 12, 0, 0, 123456, tzinfo=UTC),
                end_time=datetime(2026, 11, 1 + n % 28, 12, 0, 1, 654321, tzinfo=UTC),
                environment="production",
                service_name="svc",
                feature=feature,
                tenant=f"t{n % 3}",
                user_id="",
                plan="pro",
                root_id=f"root-{n}",
                session_id="s",
                version="1",
                operation="chat",
                provider="openai",
                request_model="gpt-4o",
                response_model="gpt-4o-2024-08-06",
                input_tokens=2**40 + n,
                output_tokens=n,
                cache_read_tokens=0,
                cache_write_tokens=0,
                reasoning_tokens=0,
                usage_source="reported",
                status="ok",
                attributes={"featurecost.region": "eu", "featurecost.n": str(n)} if n % 2 else {},
                raw_usage={"gen_ai.usage.input_tokens": n} if n % 3 else {},
                usage_issues=["cache tokens exceed input tokens"] if n % 4 == 0 else [],
                client_cost_usd=money,
                cost_usd=money,
                input_cost_usd=Decimal("0.000001") if money is not None else None,
                output_cost_usd=Decimal(n) / Decimal(1_000_000),
                price_source="genai-prices",
                price_entry="openai/gpt-4o",
                response_id=f"chatcmpl-{n}",
                rollup_sign=(1, 0, -1)[n % 3],
            )
        )
    return out


_ROWS = "SELECT * EXCEPT ingested_at FROM calls ORDER BY trace_id, span_id FORMAT TSV"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Storage]:
    storage = Storage(f"chdb://{tmp_path / 'chdb'}")
    storage.migrate()
    yield storage
    storage.close()


def test_every_calls_column_has_an_arrow_type(embedded: Storage) -> None:
    # a column this mapping did not know would silently send every insert the slow way
    assert embedded._calls_arrow_types() is not None
    assert arrow_type("Enum8('a' = 1)") is None


def test_arrow_insert_stores_exactly_what_the_native_insert_stores(embedded: Storage, tmp_path: Path) -> None:
    server: ClickHouseHttp = start_clickhouse_http(tmp_path / "ch", tmp_path / "logs")
    try:
        native = Storage(server.dsn)
        native.migrate()
        calls = _calls(60)
        native.insert_calls(calls, "t1")
        embedded.insert_calls(calls, "t1")
        expected = native.client.raw_query(_ROWS)
        got = embedded.client.raw_query(_ROWS)
        native.close()
    finally:
        server.process.stop()
    assert got == expected
    stored = embedded.query_text("SELECT cost_usd FROM calls WHERE trace_id = {t:String}", {"t": f"{1:032x}"})
    assert stored[0]["cost_usd"] == Decimal("0.123456789012345679")  # rounded half-even at 18 places
    exact = embedded.query_text("SELECT cost_usd FROM calls WHERE trace_id = {t:String}", {"t": f"{0:032x}"})
    assert exact[0]["cost_usd"] == Decimal("0.000000150000000001")


def test_a_replayed_arrow_insert_is_dropped_by_its_token(embedded: Storage) -> None:
    calls = _calls(10)
    embedded.insert_calls(calls, "wal:x:1:0-1:99:202611")
    embedded.insert_calls(calls, "wal:x:1:0-1:99:202611")
    assert embedded.query_text("SELECT count() AS n FROM calls")[0]["n"] == 10
    embedded.insert_calls(calls, "wal:x:1:0-1:99:202611a")  # another token: another insert
    assert embedded.query_text("SELECT count() AS n FROM calls")[0]["n"] == 20


def test_an_engine_rejection_reads_like_clickhouse_connects(embedded: Storage) -> None:
    embedded.command("ALTER TABLE calls ADD CONSTRAINT no_poison CHECK feature != 'poison'")
    with pytest.raises(DatabaseError) as caught:
        embedded.insert_calls(_calls(3, feature="poison"), "t")
    assert "Code: 469." in str(caught.value)
    assert _is_bad_data(caught.value)  # the pipeline bisects it and dead-letters the culprit
    embedded.insert_calls(_calls(3), "t2")
    assert embedded.query_text("SELECT count() AS n FROM calls")[0]["n"] == 3
