from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.storage.client import Storage
from testsupport.collector import ClickHouseHttp, start_clickhouse_http
from testsupport.servers import serve_in_thread
from testsupport.stand_ins.openai_anthropic import StandIn

# tests/llamaindex needs openai<3: it runs in its own venv (`make llamaindex-venv`), which sets this
collect_ignore = [] if os.environ.get("FEATURECOST_LLAMAINDEX_VENV") else ["llamaindex"]


@dataclass
class RunningStandIn:
    url: str
    stand_in: StandIn

    @property
    def served(self) -> list[dict[str, Any]]:
        return self.stand_in.served


@pytest.fixture
def stand_in() -> Iterator[RunningStandIn]:
    provider = StandIn()
    with serve_in_thread(provider.app()) as url:
        yield RunningStandIn(url, provider)


@dataclass
class Spans:
    exporter: InMemorySpanExporter
    provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def llm(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.attributes and "gen_ai.operation.name" in s.attributes]


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(exporter, provider)
    provider.shutdown()


@pytest.fixture(scope="module")
def chdb_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A migrated embedded-chDB storage of the test module's own (modules seed it; closed after the module)."""
    store = Storage(f"chdb://{tmp_path_factory.mktemp('chdb') / 'clickhouse'}")
    try:
        store.migrate()
        yield store
    finally:
        store.close()


# what a test's inserts reach: calls, their restatements, and the rollups their views feed
_TABLES = ("calls", "cost_restatements", "rollup_hourly", "rollup_actions", "rollup_sessions")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttp]:
    """A migrated ClickHouse server (chDB behind its HTTP interface, its own process) per test module."""
    base = tmp_path_factory.mktemp("clickhouse")
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
