"""pipeline/forward.py: the forwarder builds its request from the decoded one without changing it."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from featurecost.collector.pipeline.forward import priced_request
from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pricing.pricer import Pricer
from testsupport.collector import llm_spans


def test_priced_request_copies_the_stored_llm_spans_and_leaves_the_source_alone() -> None:
    source = ExportTraceServiceRequest.FromString(encode_spans(llm_spans(6)).SerializeToString())
    before = source.SerializeToString()
    pricer = Pricer()
    calls = [pricer.price(call) for call in normalize_request(source)]
    stored = {call.trace_id + call.span_id: call for call in calls[:4]}  # two were not stored

    request, kept = priced_request(source, stored)

    assert source.SerializeToString() == before, "the WAL's decoded request must not change"
    assert kept == 4
    spans = [(rs, s) for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert {s.trace_id.hex() + s.span_id.hex() for _, s in spans} == set(stored)
    for resource_spans, span in spans:
        attributes = {kv.key: kv.value.string_value for kv in span.attributes}
        call = stored[span.trace_id.hex() + span.span_id.hex()]
        assert attributes["featurecost.cost_usd"] == str(call.cost_usd)
        assert resource_spans.resource == source.resource_spans[0].resource
