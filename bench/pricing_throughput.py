"""How fast the normalize and price stages are, as ratios to baselines measured in the same run.

Prints spans per second for:
- decode: protobuf-decode the OTLP request and visit every span (the floor any stage pays),
- normalize: decode + map each LLM span to a CallRecord (all conventions, usage checks),
- price (cached): Pricer.price on normalized records — rate card cached per provider/model/day/tier,
- price (uncached genai-prices): genai_prices.calc_price per span, what resolving per span costs,
and the ratios price/no-op-call and normalize+price/decode. Run: .venv/bin/python -m bench.pricing_throughput
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from copy import copy
from decimal import Decimal

import genai_prices
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurecost.collector.pipeline.normalize import normalize_request
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.overrides import Overrides
from featurecost.collector.pricing.pricer import Pricer

SPANS = 2_000
MODELS = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
    ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
]
PRICES = "prices: [{model: gpt-4o, tenant: tenant-1, input_mtok: '2', output_mtok: '8'}]"


def request_bytes() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench", "deployment.environment.name": "prod"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for i in range(SPANS):
        system, request_model, response_model = MODELS[i % len(MODELS)]
        with tracer.start_as_current_span("GET /x", attributes={"http.request.method": "GET"}):
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": system,
                "gen_ai.request.model": request_model,
                "gen_ai.response.model": response_model,
                "gen_ai.usage.input_tokens": 1_000 + i,
                "gen_ai.usage.output_tokens": 100 + i % 50,
                "gen_ai.usage.cache_read.input_tokens": 512 if i % 3 else 0,
                "featurecost.feature": f"feature-{i % 7}",
                "featurecost.tenant": f"tenant-{i % 13}",
                "user.id": f"user-{i % 101}",
                "session.id": f"session-{i % 31}",
            }
            with tracer.start_as_current_span(f"chat {request_model}", attributes=attributes):
                pass
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def rate(label: str, runs: int, count: int, fn: Callable[[], object]) -> float:
    fn()  # warm caches the way a running collector has them warm
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    per_second = count / best
    print(f"{label:<42} {per_second:>12,.0f} /s")
    return per_second


def main() -> None:
    payload = request_bytes()
    llm_spans = SPANS

    def decode() -> None:
        request = ExportTraceServiceRequest.FromString(payload)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _ = span.attributes

    def normalize() -> list[CallRecord]:
        return list(normalize_request(ExportTraceServiceRequest.FromString(payload)))

    records = normalize()
    pricer = Pricer(Overrides.parse(PRICES))

    def noop_stage() -> None:
        def stage(record: CallRecord) -> CallRecord:
            return record

        for record in records:
            stage(record)

    def price() -> None:
        for record in records:
            pricer.price(record)

    def normalize_and_price() -> None:
        for record in normalize():
            pricer.price(record)

    usages = [
        (
            genai_prices.Usage(
                input_tokens=r.input_tokens, output_tokens=r.output_tokens, cache_read_tokens=r.cache_read_tokens
            ),
            r,
        )
        for r in records
    ]

    def genai_prices_per_span() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for usage, r in usages:
                genai_prices.calc_price(
                    usage,
                    r.model,
                    provider_id={"gcp.gemini": "google"}.get(r.provider, r.provider),
                    genai_request_timestamp=r.start_time,
                )

    print(f"{SPANS} LLM spans (+{SPANS} non-LLM spans) per OTLP request; best of 5 runs\n")
    decode_rate = rate("decode (baseline)", 5, llm_spans, decode)
    normalize_rate = rate("decode + normalize", 5, llm_spans, normalize)
    noop_rate = rate("no-op stage call (baseline)", 5, llm_spans, noop_stage)
    price_rate = rate("price, cached rate cards", 5, llm_spans, price)
    both_rate = rate("decode + normalize + price", 5, llm_spans, normalize_and_price)
    naive_rate = rate("genai_prices.calc_price per span", 3, llm_spans, genai_prices_per_span)
    total = sum((copy(r).cost_usd or Decimal(0)) for r in records)
    print(
        f"\nprice stage costs {noop_rate / price_rate:.1f}x a no-op stage call; "
        f"normalize costs {decode_rate / normalize_rate:.1f}x decoding; "
        f"normalize+price costs {decode_rate / both_rate:.1f}x decoding.\n"
        f"cached pricing is {price_rate / naive_rate:.1f}x faster than genai-prices per span. "
        f"(sanity: priced total ${total:.6f})"
    )


if __name__ == "__main__":
    main()
