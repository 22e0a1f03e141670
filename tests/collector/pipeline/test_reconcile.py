"""One provider call, one bill (issue #13): spans of one trace that report the same provider
response id are one call, whatever instrumentation emitted them and in whatever order or
batch they arrive. Real OTel SDK spans, the real pipeline, chDB behind the ClickHouse HTTP
interface; assertions read the stored rows, the rollups and the reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.pricing.restatement import reprice
from featurecost.collector.reports.features import feature_costs
from featurecost.collector.reports.window import Window
from featurecost.collector.storage.client import Storage
from testsupport.collector import request_for

_RESPONSE = "msg_01XFDUDYJgAACzvnptvVoYEL"


@dataclass
class Call:
    """The spans several instrumentations emitted for one Anthropic call, in one trace."""

    ours: ReadableSpan
    peers: list[ReadableSpan]


def _one_call(peers: int = 1, *, response_id: str = _RESPONSE, start: datetime | None = None) -> Call:
    """Our attributed span plus ``peers`` unattributed sibling spans (as OpenLLMetry's or
    Logfire's would be: same trace, not nested) reporting the same response id."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "app", "deployment.environment.name": "e"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app")
    start_ns = int((start or datetime.now(UTC)).timestamp() * 1e9)
    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
    }
    with tracer.start_as_current_span("handle request", start_time=start_ns):
        ours = tracer.start_span(
            "chat claude-3-5-haiku-20241022",
            attributes={**usage, "featurecost.feature": "summarize", "featurecost.tenant": "acme", "user.id": "u1"},
            start_time=start_ns + 1000,
        )
        for n in range(peers):
            peer = tracer.start_span("anthropic.chat", attributes=usage, start_time=start_ns + 2000 + n)
            peer.end(end_time=start_ns + 5_000_000)
        ours.end(end_time=start_ns + 5_000_000)
    provider.shutdown()
    spans = {span.name: span for span in memory.get_finished_spans()}
    peer_spans = [s for s in memory.get_finished_spans() if s.name == "anthropic.chat"]
    return Call(spans["chat claude-3-5-haiku-20241022"], peer_spans)


def _span_id(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return trace.format_span_id(context.span_id)


def _deliver(tmp_path: Path, storage: Storage, *batches: list[ReadableSpan]) -> Pipeline:
    """Each list is one OTLP request, stored as its own batch (drained before the next)."""
    wal = WriteAheadLog(tmp_path / "wal")
    pipeline = Pipeline(wal, storage, batch_rows=100_000, flush_interval=0.01)
    for spans in batches:
        wal.append(request_for(spans).SerializeToString()).result(10)
        pipeline.start()
        assert pipeline.stop(60)
        pipeline = Pipeline(wal, storage, batch_rows=100_000, flush_interval=0.01)  # a restart between batches
    wal.close()
    return pipeline


def _rows(storage: Storage) -> list[dict[str, Any]]:
    return storage.query_text(
        "SELECT span_id, feature, superseded_by, cost_usd FROM calls FINAL ORDER BY superseded_by, span_id"
    )


def _rollups(storage: Storage) -> dict[str, tuple[int, int, Decimal]]:
    """Per rollup: (calls, input tokens, cost) summed over every row, as every report reads them."""
    out = {}
    for table in ("rollup_hourly", "rollup_actions"):
        row = storage.query_text(f"SELECT sum(calls) AS c, sum(input_tokens) AS t, sum(cost_usd) AS usd FROM {table}")
        out[table] = (int(row[0]["c"]), int(row[0]["t"]), row[0]["usd"])
    row = storage.query_text("SELECT sum(calls) AS c, sum(cost_usd) AS usd FROM rollup_sessions")
    out["rollup_sessions"] = (int(row[0]["c"]), 0, row[0]["usd"])
    return out


def _assert_billed_once_on_ours(storage: Storage, call: Call) -> None:
    rows = _rows(storage)
    counted = [row for row in rows if row["superseded_by"] == ""]
    assert [row["span_id"] for row in counted] == [_span_id(call.ours)]
    assert counted[0]["feature"] == "summarize"
    cost = counted[0]["cost_usd"]
    assert cost is not None
    assert cost > 0
    # the peers' rows are kept (audit), pointing at the span that is billed
    assert sorted(row["span_id"] for row in rows if row["superseded_by"]) == sorted(map(_span_id, call.peers))
    assert {row["superseded_by"] for row in rows if row["superseded_by"]} == {_span_id(call.ours)}
    rollups = _rollups(storage)
    assert rollups["rollup_hourly"] == (1, 1200, cost)
    assert rollups["rollup_actions"] == (1, 1200, cost)
    assert rollups["rollup_sessions"] == (1, 0, cost)
    window = Window(datetime.now(UTC) - timedelta(days=3), datetime.now(UTC) + timedelta(days=1), "e")
    table = {row.feature: row for row in feature_costs(storage, window)}
    assert set(table) == {"summarize"}
    assert table["summarize"].calls == 1
    assert storage.query_named("featurecost.collector.reports", "rollup_drift")[0]["drift"] == 0


def test_twin_spans_in_one_batch_bill_the_attributed_one(tmp_path: Path, storage: Storage) -> None:
    call = _one_call(peers=2)
    pipeline = _deliver(tmp_path, storage, [*call.peers, call.ours])
    _assert_billed_once_on_ours(storage, call)
    assert pipeline.stats.superseded_calls == 0  # stats of the (fresh) last pipeline: nothing new


@pytest.mark.parametrize("order", ["peers first", "ours first", "interleaved"])
def test_twin_spans_in_separate_batches_bill_the_attributed_one_in_any_order(
    tmp_path: Path, storage: Storage, order: str
) -> None:
    call = _one_call(peers=2)
    batches = {
        "peers first": [[call.peers[0]], [call.peers[1]], [call.ours]],
        "ours first": [[call.ours], [call.peers[0]], [call.peers[1]]],
        "interleaved": [[call.peers[1]], [call.ours], [call.peers[0]]],
    }[order]
    _deliver(tmp_path, storage, *batches)
    _assert_billed_once_on_ours(storage, call)


def test_a_withdrawn_span_takes_its_restatements_with_it(tmp_path: Path, storage: Storage) -> None:
    # A peer's span is stored and re-priced (a contract price: one restatement delta) before ours arrives.
    call = _one_call(peers=1)
    _deliver(tmp_path, storage, [call.peers[0]])
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "prices:\n  - model: claude-3-5-haiku-20241022\n    input_mtok: '9.00'\n    output_mtok: '9.00'\n"
    )
    now = datetime.now(UTC)
    restated = reprice(storage, Pricer(Overrides.load(prices)), now - timedelta(days=1), now + timedelta(days=1))
    assert restated.restated == 1
    _deliver(tmp_path, storage, [call.ours])
    _assert_billed_once_on_ours(storage, call)
    net = storage.query_text("SELECT sum(cost_delta_usd) AS d, count() AS n FROM cost_restatements FINAL")[0]
    assert (net["d"], net["n"]) == (0, 2)  # the delta, and the one that withdrew it


def test_a_peer_span_in_a_trace_of_its_own_is_the_same_call(tmp_path: Path, storage: Storage) -> None:
    # A tool that starts a root span of its own (no enclosing request span in a script or
    # worker) reports the same call in another trace, at the same time.
    call = _one_call(peers=1)
    loner = _one_call(peers=1, start=datetime.fromtimestamp(call.ours.start_time / 1e9, UTC)).peers[0]
    _deliver(tmp_path, storage, [loner], [call.ours])
    rows = _rows(storage)
    assert [row["span_id"] for row in rows if not row["superseded_by"]] == [_span_id(call.ours)]
    assert _rollups(storage)["rollup_hourly"][0] == 1


def test_the_same_response_id_at_another_time_in_another_trace_is_another_call(
    tmp_path: Path, storage: Storage
) -> None:
    # e.g. a self-hosted server that reuses response ids: sequential calls do not overlap
    first = _one_call(peers=0, start=datetime.now(UTC) - timedelta(minutes=5))
    second = _one_call(peers=0)
    _deliver(tmp_path, storage, [first.ours], [second.ours])
    assert [row["superseded_by"] for row in _rows(storage)] == ["", ""]
    assert _rollups(storage)["rollup_hourly"][0] == 2
