"""Prometheus metrics for ``GET /metrics``.

The counters already live in the stage stats (``ReceiverStats``, ``PipelineStats``,
shown by ``/api/v1/status`` too); a custom collector reads them at scrape time so
there is one source of truth. Insert latency is a real histogram. Each collector
process gets its own registry (no global state, so tests can run several).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from featurecost.collector.ingest.admission import ReceiverStats
    from featurecost.collector.ingest.wal import WriteAheadLog
    from featurecost.collector.pipeline.worker import Pipeline

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StatsCollector(Collector):
    def __init__(self, receiver: ReceiverStats, pipeline: Pipeline, wal: WriteAheadLog) -> None:
        self.receiver = receiver
        self.pipeline = pipeline
        self.wal = wal

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        r, p = self.receiver, self.pipeline.stats
        counters = [
            ("featurecost_received_requests", "OTLP export requests received", r.requests),
            ("featurecost_received_spans", "Spans accepted into the write-ahead log (LLM candidates)", r.spans),
            ("featurecost_rejected_requests", "OTLP requests answered with an error", r.rejected_requests),
            ("featurecost_rejected_spans", "Spans rejected through OTLP partial success", r.rejected_spans),
            ("featurecost_backpressure_responses", "Requests refused as retryable (WAL full/draining)", r.backpressure),
            ("featurecost_stored_calls", "LLM calls inserted into storage", p.calls_stored),
            ("featurecost_priced_calls", "Stored calls with a known cost", p.calls_priced),
            ("featurecost_unpriced_calls", "Stored calls whose cost is unknown (NULL)", p.calls_unpriced),
            ("featurecost_duplicate_calls", "Re-sent spans dropped before insert", p.duplicate_calls),
            ("featurecost_expired_calls", "Spans older than retention dropped at ingest", p.expired_calls),
            ("featurecost_insert_batches", "Batches inserted", p.batches),
            ("featurecost_insert_failures", "Failed insert attempts (retried)", p.insert_failures),
            ("featurecost_dead_letter_records", "WAL records moved to dead-letter", p.dead_letters),
            (
                "featurecost_dead_letter_spans",
                "Spans moved to dead-letter alone",
                p.dead_letter_spans,
            ),
            ("featurecost_implausible_calls", "Calls stored with NULL cost: usage out of bounds", p.implausible_calls),
            ("featurecost_pipeline_worker_errors", "Unexpected pipeline worker failures (retried)", p.worker_errors),
        ]
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        dropped = CounterMetricFamily(
            "featurecost_spans_dropped",
            "Spans acknowledged but intentionally not kept, by reason (not_llm: no key can make them an LLM call)",
            labels=["reason"],
        )
        dropped.add_metric(["not_llm"], r.dropped_not_llm)
        yield dropped
        gauges = [
            ("featurecost_wal_pending_bytes", "WAL bytes not yet stored", self.wal.pending_bytes()),
            ("featurecost_wal_bytes", "WAL bytes on disk", self.wal.total_bytes()),
            ("featurecost_wal_oldest_unstored_seconds", "Oldest unstored data age", self.wal.oldest_unstored_age()),
            ("featurecost_pipeline_running", "1 while the pipeline worker runs", 1 if self.pipeline.running else 0),
            ("featurecost_pipeline_blocked", "1 while storage cannot progress", 1 if self.pipeline.blocked else 0),
        ]
        for name, documentation, gauge in gauges:
            yield GaugeMetricFamily(name, documentation, value=gauge)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.insert_latency = Histogram(
            "featurecost_insert_latency_seconds",
            "Time to insert one batch into storage",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def watch(self, receiver: ReceiverStats, pipeline: Pipeline, wal: WriteAheadLog) -> None:
        self.registry.register(_StatsCollector(receiver, pipeline, wal))

    def observe_insert(self, seconds: float) -> None:
        self.insert_latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
