"""The pipeline's storage: a ClickHouse server (chDB behind its HTTP interface, its own process) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from featurecost.collector.storage.client import Storage
from testsupport.collector import ClickHouseHttp, start_clickhouse_http

# what a test's inserts reach: calls, their restatements, and the rollups their views feed
_TABLES = ("calls", "cost_restatements", "rollup_hourly", "rollup_actions", "rollup_sessions")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttp]:
    base = tmp_path_factory.mktemp("pipeline-ch")
    server = start_clickhouse_http(base / "ch", base / "logs")
    storage = Storage(server.dsn)
    storage.migrate()
    storage.close()
    yield server
    server.process.stop()


@pytest.fixture
def storage(clickhouse: ClickHouseHttp) -> Iterator[Storage]:
    """The module's server, emptied for this test."""
    store = Storage(clickhouse.dsn)
    for table in _TABLES:
        store.client.command(f"TRUNCATE TABLE {table}")
    yield store
    store.close()
