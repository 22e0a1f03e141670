"""Collector throughput: LLM spans per second, end to end, against a decode-only baseline.

Both runs use the same real OpenTelemetry OTLP/HTTP exporters, in ``--senders``
processes that build their spans before the clock starts:

- **baseline**: an OTLP/HTTP server (uvicorn + Starlette, like the collector) that
  only decodes each ``ExportTraceServiceRequest`` and acks — the ceiling the
  transport and the exporters allow on this machine;
- **end to end**: ``featurecost collector`` (embedded chDB) — receive, WAL fsync,
  normalize, price, de-duplicate, insert; timed until every span is a stored row.

Senders export the varied corpus of ``bench/span_corpus.py`` (our instrumentors, OpenLLMetry,
OpenInference, OpenLIT, Vercel AI SDK attribute sets) as one of three traffic kinds (``--traffic``):

- ``llm``: LLM spans only, so stored rows equal acknowledged spans;
- ``app``: an app that exports its whole trace stream, ``--non-llm-per-call`` (30) HTTP/DB/cache/
  framework spans per LLM span; timed until every LLM span is a stored row;
- ``non-llm``: those HTTP/DB spans alone (nothing to store: timed until acknowledged).

For each, the decode-only baseline's CPU per span is measured too (the receiver's parse alone: the
floor), so "spans per collector CPU-second" is printed next to "spans per decode-only CPU-second".
The collector is warmed up (one batch stored) before the clock starts.

It also reports the collector's CPU seconds (spans per CPU-second ≈ per core), split by thread
(the receivers run on the main thread, the pipeline worker — normalize, price, chDB insert —
on its own), and the in-process cost of each pipeline stage (best of 5) on the corpus with its
HTTP/DB spans, as µs per LLM call and as a multiple of the decode-only time.

    .venv/bin/python -m bench.collector_throughput --spans 40000 --senders 2
    .venv/bin/python -m bench.collector_throughput --traffic app,non-llm --spans 200000 --skip-stages
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.span_corpus import NON_LLM_NAMES, corpus_spans
from featurecost.collector.pipeline.records import CallRecord
from testsupport.collector import normalize_general, request_for
from testsupport.harness import free_port, start_collector, wait_until

BATCH = 512  # the SDK BatchSpanProcessor's default max_export_batch_size


def decode_only_app() -> Starlette:
    async def export(request: Request) -> Response:
        ExportTraceServiceRequest.FromString(await request.body())
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])


TRAFFIC = ("llm", "app", "non-llm")
NON_LLM_PER_CALL = 30


def traffic_spans(traffic: str, count: int, non_llm_per_call: int = NON_LLM_PER_CALL) -> list[ReadableSpan]:
    if traffic == "llm":
        return corpus_spans(count, llm_only=True)  # every span a call: stored rows == acked spans
    if traffic == "app":
        return corpus_spans(count, non_llm_per_call=non_llm_per_call)
    return corpus_spans(count, non_llm_only=True)


def _calls_in(spans: Sequence[ReadableSpan]) -> int:
    """How many of ``spans`` are billable calls, i.e. become stored rows."""
    return sum(1 for s in spans if s.name not in NON_LLM_NAMES and s.name != "ai.generateText")


def _sender(
    endpoint: str,
    count: int,
    traffic: str,
    connections: int,
    first: int,
    ready: EventType,
    go: EventType,
    done: mp.Queue[tuple[int, int]],
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    import bench.span_corpus

    # The corpus numbers its calls (response ids among them) from a counter every forked sender
    # would start at the same value: the same response id from two senders is one provider call
    # reported twice, which the collector reconciles (a storage query per batch, superseded rows).
    # Each sender, and each run, numbers its own range.
    bench.span_corpus._counter = itertools.count(first)
    spans = traffic_spans(traffic, count)
    # batches round-robin over ``connections`` exporters: the kernel spreads connections, not
    # requests, over the workers of a ``--workers N`` collector (bench/collector_workers.py)
    exporters = [OTLPSpanExporter(endpoint=endpoint, timeout=60) for _ in range(connections)]
    ready.set()
    go.wait()
    sent = calls = 0
    for n, i in enumerate(range(0, len(spans), BATCH)):
        batch = spans[i : i + BATCH]
        if exporters[n % connections].export(batch) is SpanExportResult.SUCCESS:
            sent += len(batch)
            calls += _calls_in(batch)
    for exporter in exporters:
        exporter.shutdown()
    done.put((sent, calls))


_numbered = 0  # the corpus numbers handed out to senders so far


def _send(
    endpoint: str, total: int, senders: int, traffic: str = "llm", connections: int = 1
) -> tuple[float, int, int, float]:
    """Start senders (``connections`` exporters each), release them together; returns (start
    time, spans acked, calls among them, end time)."""
    ready = [mp.Event() for _ in range(senders)]
    go = mp.Event()
    done: mp.Queue[tuple[int, int]] = mp.Queue()
    global _numbered
    first, _numbered = _numbered, _numbered + 10 * total  # 10x: app traffic numbers more than its spans
    procs = [
        mp.Process(
            target=_sender,
            args=(
                endpoint,
                total // senders,
                traffic,
                connections,
                first + i * 10 * total // senders,
                ready[i],
                go,
                done,
            ),
        )
        for i in range(senders)
    ]
    for p in procs:
        p.start()
    for event in ready:
        event.wait(300)
    start = time.perf_counter()
    go.set()
    results = [done.get(timeout=1800) for _ in procs]
    end = time.perf_counter()
    for p in procs:
        p.join()
    return start, sum(r[0] for r in results), sum(r[1] for r in results), end


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds by thread id (the main thread's id is the process id)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _stored(api_url: str) -> int:
    for line in httpx.get(f"{api_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("featurecost_stored_calls_total "):
            return int(float(line.split()[1]))
    return 0


def baseline(total: int, senders: int, traffic: str = "llm") -> tuple[float, float]:
    """The decode-only server: (spans/s, spans per CPU-second of the server process)."""
    port = free_port()
    server = mp.Process(
        target=uvicorn.run, args=(decode_only_app(),), kwargs={"port": port, "log_level": "warning"}, daemon=True
    )
    server.start()
    wait_until(lambda: httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=b"").status_code == 200, 30, "baseline")
    assert server.pid is not None
    cpu_before = _cpu_seconds(server.pid)
    start, acked, _, end = _send(f"http://127.0.0.1:{port}/v1/traces", total, senders, traffic)
    cpu = _cpu_seconds(server.pid) - cpu_before
    server.terminate()
    server.join()
    return acked / (end - start), acked / cpu


@dataclass
class EndToEnd:
    spans_per_second: float  # acked spans, clock until every call is stored
    acked_per_second: float  # acked spans, clock until the last ack
    spans: int
    calls: int
    cpu: float  # collector process CPU seconds
    by_thread: dict[str, float]  # µs CPU per span, top threads
    rss_mb: float

    @property
    def spans_per_cpu(self) -> float:
        return self.spans / self.cpu

    @property
    def calls_per_cpu(self) -> float:
        return self.calls / self.cpu


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def end_to_end(total: int, senders: int, workdir: Path, traffic: str = "llm") -> EndToEnd:
    data = workdir / f"data-{traffic}"
    collector = start_collector(data, workdir / f"logs-{traffic}", ["--batch-rows", "50000", "--log-level", "WARNING"])
    try:
        # warm up first (lazy imports on the first insert, first rate cards): steady state is timed
        _, _, warm, _ = _send(f"{collector.otlp_endpoint}/v1/traces", BATCH, 1, "llm")
        wait_until(lambda: _stored(collector.api_url) >= warm, 600, "warm-up stored", interval=0.05)
        pid = collector.process.popen.pid
        cpu_before, threads_before = _cpu_seconds(pid), _thread_cpu_seconds(pid)
        start, acked, calls, acked_at = _send(f"{collector.otlp_endpoint}/v1/traces", total, senders, traffic)
        wait_until(lambda: _stored(collector.api_url) >= warm + calls, 3600, "every call stored", interval=0.05)
        end = time.perf_counter()
        cpu = _cpu_seconds(pid) - cpu_before
        threads_after = _thread_cpu_seconds(pid)
        rss = _rss_mb(pid)
    finally:
        collector.process.stop()
    used = sorted(((threads_after[t] - threads_before.get(t, 0.0), t) for t in threads_after), reverse=True)
    by_thread = {
        ("main thread (receivers)" if tid == pid else f"thread {tid}"): seconds / acked * 1e6
        for seconds, tid in used[:3]
    }
    return EndToEnd(acked / (end - start), acked / (acked_at - start), acked, calls, cpu, by_thread, rss)


def _best(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds: the machine is shared, the minimum is the signal."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


fixed_cost: dict[str, float] = {}  # seconds, filled by stages()


def stages(count: int, workdir: Path, repeat: int = 5) -> tuple[int, int, dict[str, float]]:
    """Seconds per stage on the bench corpus, one thread, in process (best of ``repeat``).

    Returns (spans, LLM calls, seconds by stage). ``normalize (general)`` is the per-span path
    through every alias (``FULL_LOOKUPS``), kept as the reference the layout fast path must match.
    Rows marked "before" are what the worker did per batch until #15, measured in this run:
    re-decoding every WAL record the receiver had already parsed, and clickhouse-connect's Native
    insert (money quantized per value, a temp file per insert) instead of an Arrow table.
    """
    from featurecost.collector.pipeline.normalize import (
        normalize_request,
    )
    from featurecost.collector.pricing.pricer import Pricer
    from featurecost.collector.server import tune_gc
    from featurecost.collector.storage.client import Storage

    tune_gc()  # as the collector does
    spans = corpus_spans(count)
    payloads = [request_for(spans[i : i + BATCH]).SerializeToString() for i in range(0, count, BATCH)]
    requests = [ExportTraceServiceRequest.FromString(p) for p in payloads]

    def decode() -> None:
        for p in payloads:
            for rs in ExportTraceServiceRequest.FromString(p).resource_spans:
                for ss in rs.scope_spans:
                    for _ in ss.spans:
                        pass

    def general() -> list[CallRecord]:
        return [c for request in requests for c in normalize_general(request)]

    calls = [c for r in requests for c in normalize_request(r)]
    seconds = {
        "decode": _best(decode, repeat),
        "normalize (general)": _best(general, repeat),
        "normalize": _best(lambda: [c for r in requests for c in normalize_request(r)], repeat),
    }
    pricer = Pricer()
    seconds["price"] = _best(lambda: [pricer.price(c) for c in calls], repeat)
    storage = Storage(f"chdb://{workdir / 'stages'}")
    try:
        storage.migrate()
        storage.insert_calls(calls[:10], "warm-up")
        storage.insert_calls_native(calls[:10], "warm-up-native")
        tokens = iter(range(2 * repeat))
        # every run inserts for real (a new deduplication token each time)
        seconds["insert Native (before)"] = _best(
            lambda: storage.insert_calls_native(calls, f"bench-native-{next(tokens)}"), repeat
        )
        seconds["insert"] = _best(lambda: storage.insert_calls(calls, f"bench-{next(tokens)}"), repeat)
        one = iter(range(repeat))
        # what every insert pays whatever its size (planning the insert and the rollup views):
        # what sparse LLM traffic (an app's whole trace stream) pays per batch
        fixed_cost["insert of one call"] = _best(
            lambda: storage.insert_calls(calls[:1], f"bench-one-{next(one)}"), repeat
        )
    finally:
        storage.close()
    return len(spans), len(calls), seconds


def door_stages(count: int, repeat: int = 5) -> dict[str, tuple[int, dict[str, float]]]:
    """The receivers' CPU per span on non-LLM and whole-stream traffic, in process (best of
    ``repeat``): the parse alone (the floor), the door now (parse, validate, drop what cannot be
    an LLM call, re-encode what is kept), and before (parse, validate, the whole request into the
    WAL, then the worker decoding it again and dropping the HTTP/DB spans in normalize)."""
    from featurecost.collector.ingest.admission import drop_invalid_spans, llm_span_candidates, screen_spans
    from featurecost.collector.pipeline.normalize import normalize_request

    out: dict[str, tuple[int, dict[str, float]]] = {}
    for traffic in ("non-llm", "app"):
        spans = traffic_spans(traffic, count)
        payloads = [request_for(spans[i : i + BATCH]).SerializeToString() for i in range(0, len(spans), BATCH)]

        def parse(payloads: list[bytes] = payloads) -> None:
            for p in payloads:
                ExportTraceServiceRequest.FromString(p)

        def door(payloads: list[bytes] = payloads) -> None:
            for p in payloads:
                request = ExportTraceServiceRequest.FromString(p)
                screened = screen_spans(request, candidates=llm_span_candidates(p))
                if screened.kept and (screened.not_llm or screened.rejected):
                    request.SerializeToString()  # what goes to the WAL

        def before(payloads: list[bytes] = payloads) -> None:
            for p in payloads:
                drop_invalid_spans(ExportTraceServiceRequest.FromString(p))
                for _ in normalize_request(ExportTraceServiceRequest.FromString(p)):
                    pass

        out[traffic] = (
            len(spans),
            {
                "parse only (floor)": _best(parse, repeat),
                "before: WAL all, worker drops": _best(before, repeat),
                "door (now)": _best(door, repeat),
            },
        )
    return out


def wal_read_stages(workdir: Path, records: int = 2000, repeat: int = 5) -> dict[str, float]:
    """µs per WAL read of one record (the worker keeping up reads a record or two at a time),
    now and with the directory glob every read did before."""
    from featurecost.collector.ingest.wal import WriteAheadLog

    wal = WriteAheadLog(workdir / "wal-read", segment_bytes=1 << 20)
    payload = request_for(corpus_spans(20, llm_only=True)).SerializeToString()
    for _ in range(records):
        wal.append(payload).result(10)
    starts = [r.start for r in wal.iter_from(wal.checkpoint)]

    def read() -> None:
        for start in starts:
            wal.read(start, 1, 1 << 30)

    def read_with_glob() -> None:
        for start in starts:
            sorted(wal.directory.glob("*.wal"))
            wal.read(start, 1, 1 << 30)

    try:
        return {
            "WAL read + glob (before)": _best(read_with_glob, repeat) / len(starts) * 1e6,
            "WAL read (now)": _best(read, repeat) / len(starts) * 1e6,
        }
    finally:
        wal.close()


def protobuf_input_stages(count: int, repeat: int = 5) -> tuple[int, dict[str, float]]:
    """µs per LLM span (best of ``repeat``): chDB's Protobuf input decoding the requests to one
    row per span with the attributes as arrays (``bench/otlp_protobuf_input.py``), next to the
    collector's upb parse plus the normalizer's attribute loop (what the engine would replace), and
    the whole normalize for scale. A reference row: the product does not use the engine's decoder."""
    from bench.otlp_protobuf_input import ProtobufInput
    from featurecost.collector.pipeline.normalize import _decode, layout_of, normalize_request

    spans = corpus_spans(count, llm_only=True)
    payloads = [request_for(spans[i : i + BATCH]).SerializeToString() for i in range(0, count, BATCH)]

    def upb_attributes() -> None:
        for p in payloads:
            for rs in ExportTraceServiceRequest.FromString(p).resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:  # as _normalize_one: layout by keys, then the values it reads
                        key_values = list(span.attributes)
                        _decode(key_values, layout_of(tuple([kv.key for kv in key_values])))

    def upb_normalize() -> None:
        for p in payloads:
            for _ in normalize_request(ExportTraceServiceRequest.FromString(p)):
                pass

    engine = ProtobufInput()
    try:
        decoded = engine.spans(payloads)  # warm: schema parse, first-query set-up
        if decoded.num_rows != len(spans):
            raise AssertionError(f"engine decoded {decoded.num_rows} spans of {len(spans)}")
        seconds = {
            "upb parse + attribute loop (now)": _best(upb_attributes, repeat),
            "upb parse + whole normalize (now)": _best(upb_normalize, repeat),
            "engine Protobuf → Arrow columns": _best(lambda: engine.spans(payloads), repeat),
            "  + columns back to Python values": _best(lambda: engine.spans(payloads).to_pydict(), repeat),
        }
    finally:
        engine.close()
    return len(spans), {name: took / len(spans) * 1e6 for name, took in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="featurecost collector throughput vs a decode-only baseline")
    parser.add_argument("--spans", type=int, default=40_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--traffic", default="llm,app,non-llm", help=f"comma-separated, of {', '.join(TRAFFIC)}")
    parser.add_argument("--skip-stages", action="store_true")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.traffic.split(",") if kind.strip()]
    if unknown := set(kinds) - set(TRAFFIC):
        parser.error(f"unknown traffic {sorted(unknown)}")
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"spans: {args.spans} per traffic kind, senders: {args.senders}, batch: {BATCH}")
    with tempfile.TemporaryDirectory(prefix="featurecost-bench-") as tmp:
        work = Path(tmp)
        for traffic in kinds:
            base, base_cpu = baseline(args.spans, args.senders, traffic)
            run = end_to_end(args.spans, args.senders, work, traffic)
            label = {"app": f"app ({NON_LLM_PER_CALL} non-LLM spans per LLM call)"}.get(traffic, traffic)
            print(f"traffic: {label}: {run.spans} spans, {run.calls} LLM calls")
            print(f"  decode-only baseline      {base:>10,.0f} spans/s {base_cpu:>10,.0f} spans per CPU-second")
            for name, rate in (("acked", run.acked_per_second), ("end to end", run.spans_per_second)):
                print(f"  collector, {name:<15}{rate:>10,.0f} spans/s   ratio {rate / base:.2f}")
            print(
                f"  collector CPU             {run.spans_per_cpu:>10,.0f} spans per CPU-second (≈ per core), "
                f"ratio to decode-only {run.spans_per_cpu / base_cpu:.2f}"
            )
            if run.calls:
                print(f"                            {run.calls_per_cpu:>10,.0f} LLM calls per CPU-second")
            for name, micros in run.by_thread.items():
                print(f"    {name:<24}{micros:>10.1f} µs CPU per span")
            print(f"  collector RSS at the end  {run.rss_mb:>10,.0f} MB")
        if not args.skip_stages:
            print_stages(min(args.spans, 20_000), work)


def print_stages(count: int, work: Path) -> None:
    spans, calls, seconds = stages(count, work)
    print(f"stages (one thread, in process, best of 5): {spans} corpus spans, {calls} LLM calls")
    decode = seconds["decode"]
    for stage, took in seconds.items():
        per_call = took / calls * 1e6
        print(
            f"  {stage:<24} {spans / took:>10,.0f} spans/s {calls / took:>10,.0f} calls/s "
            f"{per_call:>6.1f} µs/call {took / decode:>6.1f}x decode time"
        )
    before = sum(seconds[s] for s in ("decode", "decode", "normalize", "price", "insert Native (before)"))
    now = sum(seconds[s] for s in ("decode", "normalize", "price", "insert"))
    print(
        f"  {'decode→insert, before':<24} {calls / before:>10,.0f} calls/s  (the worker decoded again, Native insert)"
    )
    print(f"  {'decode→insert, now':<24} {calls / now:>10,.0f} calls/s  ratio {before / now:.2f}")
    for name, took in fixed_cost.items():
        print(f"  {name:<24} {took * 1e3:>10.1f} ms (the fixed cost of every insert, paid per batch)")
    print("receivers' door (one thread, in process, best of 5), spans per CPU-second:")
    for traffic, (count_spans, door) in door_stages(count).items():
        floor = door["parse only (floor)"]
        for stage, took in door.items():
            print(
                f"  {traffic:<8} {stage:<30} {count_spans / took:>10,.0f} spans/s "
                f"{took / count_spans * 1e6:>6.2f} µs/span {took / floor:>5.1f}x parse"
            )
    for stage, micros in wal_read_stages(work).items():
        print(f"  {stage:<39} {micros:>6.1f} µs per read of one record")
    spans, micros = protobuf_input_stages(count)
    print(f"reference: chDB's Protobuf input decoding OTLP (one thread, best of 5), {spans} LLM spans:")
    floor = micros["upb parse + attribute loop (now)"]
    for stage, took in micros.items():
        print(f"  {stage:<39} {took:>6.2f} µs/span {took / floor:>5.2f}x the upb + Python loop")


if __name__ == "__main__":
    main()
