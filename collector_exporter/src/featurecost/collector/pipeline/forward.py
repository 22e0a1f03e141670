"""Forward priced spans to the user's tracing backend (optional, ``--forward-endpoint``).

After a batch is stored, its LLM spans are sent on over OTLP/HTTP (protobuf) with the
cost added as attributes (``featurecost.cost_usd`` … — strings, so no float rounds the
money). Forwarding is best effort and off the storage path: a bounded queue feeds a
sender thread that retries what OTLP calls retryable (429/502/503/504, honouring
Retry-After) a few times; what still fails is counted and dropped. Storage never
waits for the downstream backend.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from featurecost.collector.ingest.wal import Record, trace_request
from featurecost.collector.pipeline.normalize import attribute_map, is_llm_span
from featurecost.collector.pipeline.records import CallRecord

log = logging.getLogger(__name__)

COST_USD = "featurecost.cost_usd"
INPUT_COST_USD = "featurecost.cost.input_usd"
OUTPUT_COST_USD = "featurecost.cost.output_usd"
PRICE_SOURCE = "featurecost.price.source"
PRICE_ENTRY = "featurecost.price.entry"
PRICE_DATA_VERSION = "featurecost.price.data_version"
UNPRICED_REASON = "featurecost.price.unpriced_reason"

_RETRYABLE = frozenset({429, 502, 503, 504})


@dataclass(slots=True)
class ForwardStats:
    requests: int = 0
    spans: int = 0
    failed_spans: int = 0
    dropped_spans: int = 0


def _attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def cost_attributes(call: CallRecord) -> list[KeyValue]:
    out = []
    if call.cost_usd is not None:
        out.append(_attr(COST_USD, str(call.cost_usd)))
    if call.input_cost_usd is not None:
        out.append(_attr(INPUT_COST_USD, str(call.input_cost_usd)))
    if call.output_cost_usd is not None:
        out.append(_attr(OUTPUT_COST_USD, str(call.output_cost_usd)))
    for key, value in (
        (PRICE_SOURCE, call.price_source),
        (PRICE_ENTRY, call.price_entry),
        (PRICE_DATA_VERSION, call.price_data_version),
        (UNPRICED_REASON, call.unpriced_reason),
    ):
        if value:
            out.append(_attr(key, value))
    return out


def priced_request(
    source: ExportTraceServiceRequest, calls: Mapping[str, CallRecord]
) -> tuple[ExportTraceServiceRequest, int]:
    """The stored LLM spans of one WAL record, with cost attributes; and their count.

    ``source`` is left as it is (it may be the receiver's decoded request the WAL still holds):
    the kept spans, their resource and scope are copied into a new request.
    """
    request = ExportTraceServiceRequest()
    kept = 0
    for resource_spans in source.resource_spans:
        out_resource = None
        for scope_spans in resource_spans.scope_spans:
            out_scope = None
            for span in scope_spans.spans:
                call = calls.get(span.trace_id.hex() + span.span_id.hex())
                if call is None or not is_llm_span(attribute_map(span.attributes)):
                    continue
                if out_resource is None:
                    out_resource = request.resource_spans.add(schema_url=resource_spans.schema_url)
                    out_resource.resource.CopyFrom(resource_spans.resource)
                if out_scope is None:
                    out_scope = out_resource.scope_spans.add(schema_url=scope_spans.schema_url)
                    out_scope.scope.CopyFrom(scope_spans.scope)
                copy = out_scope.spans.add()
                copy.CopyFrom(span)
                copy.attributes.extend(cost_attributes(call))
                kept += 1
    return request, kept


class Forwarder:
    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        *,
        max_queue: int = 1000,
        attempts: int = 5,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint if endpoint.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
        self.attempts = attempts
        self.stats = ForwardStats()
        self._client = httpx.Client(
            headers={"content-type": "application/x-protobuf", **(headers or {})}, timeout=timeout
        )
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="featurecost-forward", daemon=True)
        self._thread.start()

    def on_stored(self, records: list[Record], calls: list[CallRecord]) -> None:
        """Queue the batch's stored spans (called by the pipeline after each insert)."""
        if not calls:
            return
        by_key = {call.trace_id + call.span_id: call for call in calls}
        for record in records:
            request, count = priced_request(trace_request(record), by_key)
            if not count:
                continue
            try:
                self._queue.put_nowait((request.SerializeToString(), count))
            except queue.Full:
                self.stats.dropped_spans += count
                log.warning("forward queue full; %d spans not forwarded", count)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            body, count = item
            if self._send(body):
                self.stats.requests += 1
                self.stats.spans += count
            else:
                self.stats.failed_spans += count

    def _send(self, body: bytes) -> bool:
        delay = 0.5
        for _ in range(self.attempts):
            try:
                response = self._client.post(self.endpoint, content=body)
            except httpx.HTTPError as exc:
                log.warning("forwarding to %s failed: %s", self.endpoint, exc)
            else:
                if response.status_code < 300:
                    return True
                if response.status_code not in _RETRYABLE:
                    log.warning("%s refused forwarded spans: %s", self.endpoint, response.status_code)
                    return False
                retry_after = response.headers.get("retry-after", "")
                if retry_after.isdigit():
                    delay = float(retry_after)
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, 30.0)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)
        self._client.close()
