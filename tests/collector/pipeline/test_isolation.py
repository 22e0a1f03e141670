"""One bad span never stops storage: spans that would have crashed the pipeline
worker or poisoned their batch (JSON nested past the parser's depth, absurd token
counts and costs) are stored with NULL cost and a reason, next to their batch's other
calls, and an unexpected worker failure is retried and reported instead of killing the
worker. Real WAL, real pipeline, real storage (chDB behind the ClickHouse HTTP interface)."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.api.app import create_api_app
from featurecost.collector.ingest.admission import BackpressureError, Ingest
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.storage.client import Storage
from testsupport.collector import llm_spans, request_for
from testsupport.harness import wait_until
from testsupport.servers import serve_in_thread

_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
}


def _deep_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _request(spans: dict[str, dict[str, Any]]) -> ExportTraceServiceRequest:
    """One OTLP request from the real SDK with a span per (name → attributes)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "app", "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for name, attributes in spans.items():
        tracer.start_span(name, attributes=attributes).end()
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def _stored(storage: Storage) -> dict[str, dict[str, Any]]:
    rows = storage.query_text(
        "SELECT feature, input_tokens, output_tokens, cost_usd, client_cost_usd, unpriced_reason, raw_usage, "
        "usage_issues FROM calls"
    )
    return {row["feature"]: row for row in rows}


def test_poison_spans_are_stored_with_null_cost_next_to_their_batch(tmp_path: Path, storage: Storage) -> None:
    spans = {
        "ok": {**_CHAT, "featurecost.feature": "ok"},
        # OpenInference metadata / Vercel provider metadata nested past json's recursion limit
        "deep-metadata": {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "metadata": _deep_json(50_000),
            "featurecost.feature": "deep-metadata",
        },
        "deep-provider-metadata": {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.usage.promptTokens": 7,
            "ai.usage.completionTokens": 3,
            "ai.response.providerMetadata": _deep_json(50_000),
            "featurecost.feature": "deep-provider-metadata",
        },
        # absurd values: would be a $15M call, an overflow, or not fit the money columns
        "tokens-1e14": {**_CHAT, "gen_ai.usage.input_tokens": 10**14, "featurecost.feature": "tokens-1e14"},
        "tokens-1e17": {**_CHAT, "gen_ai.usage.input_tokens": 10**17, "featurecost.feature": "tokens-1e17"},
        "tokens-int64-max": {**_CHAT, "gen_ai.usage.output_tokens": 2**63 - 1, "featurecost.feature": "tokens-int64"},
        "tokens-double": {**_CHAT, "gen_ai.usage.output_tokens": 1e30, "featurecost.feature": "tokens-double"},
        "tokens-string": {**_CHAT, "gen_ai.usage.input_tokens": "1e30", "featurecost.feature": "tokens-string"},
        "client-cost": {**_CHAT, "gen_ai.usage.cost": 1e30, "featurecost.feature": "client-cost"},
    }
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(_request(spans).SerializeToString()).result(10)
    pipeline = Pipeline(wal, storage, flush_interval=0.05)
    pipeline.start()
    assert pipeline.stop(60)
    assert wal.checkpoint == wal.end
    assert pipeline.last_error == ""
    assert pipeline.stats.dead_letters == pipeline.stats.dead_letter_spans == 0

    rows = _stored(storage)
    assert set(rows) == {attributes["featurecost.feature"] for attributes in spans.values()}
    assert rows["ok"]["cost_usd"] > 0
    # deep metadata is ignored (it is not attribution), the call itself is priced
    assert rows["deep-metadata"]["cost_usd"] > 0
    assert rows["deep-provider-metadata"]["cost_usd"] > 0
    for feature in ("tokens-1e14", "tokens-1e17", "tokens-int64", "tokens-double", "tokens-string", "client-cost"):
        row = rows[feature]
        assert row["cost_usd"] is None, feature
        assert row["unpriced_reason"].startswith("implausible usage"), feature
        tokens = (row["input_tokens"], row["output_tokens"])
        assert tokens == ((100, 20) if feature == "client-cost" else (0, 0)), feature
        assert any(issue.startswith("implausible usage") for issue in row["usage_issues"]), feature
    # the raw claim is kept where it fits raw_usage's UInt64, else in the issue text
    assert rows["tokens-1e17"]["raw_usage"]["gen_ai.usage.input_tokens"] == 10**17
    assert rows["tokens-int64"]["raw_usage"]["gen_ai.usage.output_tokens"] == 2**63 - 1
    assert "gen_ai.usage.output_tokens=" + str(int(1e30)) in rows["tokens-double"]["usage_issues"][-1]
    assert rows["client-cost"]["client_cost_usd"] is None
    assert "client cost 1E+30" in rows["client-cost"]["unpriced_reason"]
    assert pipeline.stats.implausible_calls == 6
    wal.close()


def test_a_worker_failure_is_retried_reported_and_refuses_ingest_until_it_clears(
    tmp_path: Path, storage: Storage
) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(request_for(llm_spans(3)).SerializeToString()).result(10)
    # real disk corruption of an acknowledged record: a flipped payload byte
    segment = next((tmp_path / "wal").glob("*.wal"))
    original = segment.read_bytes()
    corrupted = bytearray(original)
    corrupted[20] ^= 0xFF
    segment.write_bytes(bytes(corrupted))

    pipeline = Pipeline(wal, storage, flush_interval=0.05, retry_seconds=0.01, max_retry_seconds=0.05)
    ingest = Ingest(wal, blocked=lambda: pipeline.blocked)
    pipeline.start()
    wait_until(lambda: pipeline.stats.worker_errors >= 2, 30, "the worker to fail and retry")
    assert pipeline.running
    assert "corrupt write-ahead log record" in pipeline.last_error
    assert "corrupt write-ahead log record" in pipeline.blocked
    with pytest.raises(BackpressureError, match="storage cannot progress"):
        asyncio.run(ingest.export(request_for(llm_spans(1)), None))
    with serve_in_thread(create_api_app(storage, wal, pipeline, ingest.stats)) as api:
        ready = httpx.get(f"{api}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "corrupt write-ahead log record" in ready.text
        status = httpx.get(f"{api}/api/v1/status", timeout=10).json()["pipeline"]
        assert "corrupt write-ahead log record" in status["blocked"]
        assert status["running"] is True
    # the operator restores the record; the same worker picks it up
    segment.write_bytes(original)
    wait_until(lambda: wal.checkpoint == wal.end, 30, "the repaired record to be stored")
    assert pipeline.blocked == ""
    assert pipeline.last_error == ""
    assert pipeline.stats.calls_stored == 3
    assert pipeline.stop(30)
    wal.close()


def test_metadata_json_is_still_flattened_when_it_parses(tmp_path: Path, storage: Storage) -> None:
    spans = {
        "meta": {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "metadata": json.dumps({"feature": "from-metadata"}),
        }
    }
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(_request(spans).SerializeToString()).result(10)
    pipeline = Pipeline(wal, storage, flush_interval=0.05)
    pipeline.start()
    assert pipeline.stop(60)
    assert set(_stored(storage)) == {"from-metadata"}
    wal.close()


def test_a_span_storage_rejects_alone_is_dead_lettered_and_its_batch_stored(tmp_path: Path, storage: Storage) -> None:
    # A real per-row rejection by ClickHouse (VIOLATED_CONSTRAINT, not transient)
    storage.command("ALTER TABLE calls ADD CONSTRAINT no_poison CHECK feature != 'poison'")
    try:
        spans = {f"ok-{n}": {**_CHAT, "featurecost.feature": f"ok-{n}"} for n in range(6)}
        spans["poison"] = {**_CHAT, "featurecost.feature": "poison"}
        wal = WriteAheadLog(tmp_path / "wal")
        wal.append(_request(spans).SerializeToString()).result(10)
        # a long backoff: a rejection that names bad rows must be bisected at once, not retried
        pipeline = Pipeline(wal, storage, flush_interval=0.05, retry_seconds=60)
        pipeline.start()
        wait_until(lambda: wal.checkpoint == wal.end, 30, "the batch to be stored")
        assert pipeline.stop(60)
    finally:
        storage.command("ALTER TABLE calls DROP CONSTRAINT no_poison")
    assert set(_stored(storage)) == {f"ok-{n}" for n in range(6)}
    assert wal.checkpoint == wal.end
    assert pipeline.stats.dead_letter_spans == 1
    assert pipeline.stats.dead_letters == 0
    dead = sorted((tmp_path / "wal" / "dead-letter").iterdir())
    assert [p.suffix for p in dead] == [".jsonl", ".reason"]
    assert json.loads(dead[0].read_text())["feature"] == "poison"
    assert "no_poison" in dead[1].read_text()
    assert "no_poison" in pipeline.stats.last_dead_letter_reason
    wal.close()


@pytest.mark.slow
def test_a_batch_spanning_150_months_is_split_per_partition(tmp_path: Path, storage: Storage) -> None:
    # One insert block may touch at most max_partitions_per_insert_block (100) partitions;
    # ClickHouse answers code 252 otherwise, which no retry fixes.
    start = datetime(2010, 1, 15, tzinfo=UTC)
    spans = []
    for month in range(150):
        when = start.replace(year=2010 + month // 12, month=1 + month % 12)
        spans.extend(llm_spans(1, start_ns=int(when.timestamp() * 1e9)))
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append(request_for(spans).SerializeToString()).result(10)
    pipeline = Pipeline(wal, storage, flush_interval=0.05, retention=None, max_attempts=1)
    pipeline.start()
    wait_until(lambda: wal.checkpoint == wal.end, 60, "the batch to be stored")
    assert pipeline.stop(30)
    assert pipeline.stats.insert_failures == 0
    months = storage.query_text("SELECT uniqExact(toYYYYMM(start_time)) AS months, count() AS calls FROM calls")
    assert months == [{"months": 150, "calls": 150}]
    wal.close()


def test_crafted_attribute_layouts_are_not_kept_in_memory() -> None:
    # Each distinct attribute-key layout used to be cached whole (4096 of them): spans with
    # thousands of long random keys could make the collector keep gigabytes.
    def crafted(n: int) -> ExportTraceServiceRequest:
        request = _request({f"span-{n}": {**_CHAT, "featurecost.feature": f"crafted-{n}"}})
        span = request.resource_spans[0].scope_spans[0].spans[0]
        for i in range(1000):  # past the SDK's attribute limit: what a hostile client sends
            span.attributes.add(key=f"featurecost.junk.{n}.{i}.{'k' * 80}").value.string_value = "v"
        return request

    requests = [crafted(n) for n in range(40)]
    normal = _request({"ok": {**_CHAT, "featurecost.feature": "ok"}})
    list(normalize_request(normal))  # warm the cache with an ordinary layout
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        calls = [call for request in requests for call in normalize_request(request)]
        features = {call.feature for call in calls}
        del calls
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert features == {f"crafted-{n}" for n in range(40)}
    assert retained < 2 * 1024 * 1024, f"{retained} bytes kept after normalizing 40 crafted layouts"
