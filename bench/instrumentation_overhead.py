"""What an LLM instrumentation costs the app: featurecost side by side with its peers, one run.

Run: ``.venv/bin/python bench/instrumentation_overhead.py [--rounds 21] [--calls 300] [--chunks 2000]``
(``--profile featurecost`` prints a cProfile of one contender's calls instead).

What users pay, measured the way they run it:

* the real ``openai`` and ``anthropic`` SDKs, their transport canned below ``OpenAI.request``
  (an ``httpx2.MockTransport`` serving bodies shaped like the providers', JSON and SSE), so
  the SDK parses real responses and the network does not drown microseconds;
* the OpenTelemetry SDK as an app configures it: a ``TracerProvider`` (set as the global one)
  with a ``BatchSpanProcessor`` and an exporter that discards what it gets; every timed batch
  ends with ``force_flush``, so the export work lands in the batch that made the spans;
* featurecost with ``featurecost.attribute(feature=…, tenant=…, user=…)`` entered around every
  call, as an app does per request (also measured entered once around the whole batch);
* the peers from requirements-dev: the official ``opentelemetry-instrumentation-openai-v2``,
  OpenLLMetry (``opentelemetry-instrumentation-openai`` / ``-anthropic``) and OpenInference
  (``openinference-instrumentation-openai`` / ``-anthropic``).

Each contender lives in a worker process of its own (instrumentors are process-wide and do not
all coexist), set up once. Every round asks every worker, in an order rotated per round, to run
the same batch and report the CPU time it took (``time.process_time``: all threads of the
process, so the span processor's work counts; time spent descheduled on a shared machine does
not). A contender's added cost in a round is its time minus the bare SDK's in that same round;
the printed figure is the median over the rounds. Per stream chunk: a stream of ``--chunks``
chunks, the added time divided by the chunks. A second bare worker shows how far two processes
running the same code differ (their hash seed is fixed; their memory layout is not): read the
other rows against it. featurecost's stream proxy is also timed alone over parsed chunks, the
steadier per-chunk figure.

The anthropic SDK traces its own calls when a global tracer provider is set: the bare row
includes that span, which featurecost replaces with its own (hence negative figures there).

Memory: each worker's RSS once set up and warmed (idle), and its growth over ``--growth-calls``
more attributed calls, read at the half and at the end (a plateau shows as ~0 in the second half).

Floors (openai chat only): ``floor-sdk-span`` and ``floor-readable`` are minimal instrumentations
that emit featurecost's exact attribute set, precomputed (no extraction, no attribution), through
(a) an SDK span and (b) one ``ReadableSpan`` handed to the processors' ``on_end`` at the end, a
NonRecordingSpan current during the call; the same two are also timed alone in the bare worker
(``reference (a)``/``(b)``). Their ratio to the best peer says how far any design of that kind can go.

Target (issue #15): featurecost's added CPU per call ≤ 1/3 of the best peer's, ≤ 1 µs per chunk.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

CHAT_MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-haiku-4-5"
MESSAGES: Any = [{"role": "user", "content": "hi"}]
ATTRIBUTION = {"feature": "bench", "tenant": "acme", "user": "u-42"}

# name: (description, instruments openai, instruments anthropic)
CONTENDERS: dict[str, tuple[str, bool, bool]] = {
    "bare": ("the SDK alone (baseline)", True, True),
    "bare-again": ("the SDK alone, a second process (noise)", True, True),
    "featurecost": ("featurecost, attribute() per call", True, True),
    "featurecost-outer": ("featurecost, attribute() once per batch", True, True),
    "openai-v2": ("official opentelemetry-instrumentation-openai-v2", True, False),
    "openllmetry": ("OpenLLMetry", True, True),
    "openinference": ("OpenInference", True, True),
    # What any span-per-call design costs end to end, our attribute set precomputed (no extraction,
    # no attribution): the reachable floor under featurecost, openai chat only (see FLOOR_SDK/_READABLE).
    "floor-sdk-span": ("floor (a): SDK span, our attributes, nothing else", True, False),
    "floor-readable": ("floor (b): ReadableSpan at the end, no SDK Span", True, False),
}
FLOOR_CONTENDERS = ("floor-sdk-span", "floor-readable")
PEERS = ("openai-v2", "openllmetry", "openinference")
CASES = ("openai chat", "openai stream", "anthropic message", "anthropic stream", "app span")
# What the OpenTelemetry SDK itself takes for one span with an LLM span's ~20 attributes (12 at
# start, 10 more before the end), measured in the bare worker: the floor under any instrumentation
# that emits a span per call, printed for reference.
FLOOR = "otel span floor"
_START_ATTRIBUTES = {f"start.attribute.{i}": "value" for i in range(12)}
_END_ATTRIBUTES = {f"end.attribute.{i}": i for i in range(10)}
# The same with featurecost's exact attribute set for the bench's chat call (request attributes at
# start, response and usage at the end), its span current while the call runs: (a) an SDK ``Span``
# through the BatchSpanProcessor; (b) no SDK ``Span``: a NonRecordingSpan with a fresh SpanContext
# current during the call, one ``ReadableSpan`` built at the end and handed to the provider's
# processors' ``on_end`` (their ``on_start`` never runs). Measured alone in the bare worker.
FLOOR_SDK = "floor (a) SDK span"
FLOOR_READABLE = "floor (b) ReadableSpan"
FLOORS = (FLOOR, FLOOR_SDK, FLOOR_READABLE)
_FLUSH_EVERY = 500
_PROXY_STREAMS = 4  # streams per timing of the stream proxy alone


# --- canned provider responses ---


def _chat_json() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello there", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 3,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
        }
    ).encode()


def _chat_sse(chunks: int) -> bytes:
    def event(delta: dict[str, Any], finish: str | None, usage: Any = None, choices: bool = True) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
            "usage": usage,
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    body = [event({"role": "assistant", "content": ""}, None)]
    body += [event({"content": "word "}, None) for _ in range(chunks)]
    body.append(event({}, "stop"))
    body.append(event({}, None, {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}, False))
    body.append(b"data: [DONE]\n\n")
    return b"".join(body)


def _message_json() -> bytes:
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "hello there"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 3,
            },
        }
    ).encode()


def _message_sse(chunks: int) -> bytes:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    start = json.loads(_message_json())
    start.update(content=[], stop_reason=None)
    start["usage"]["output_tokens"] = 1
    body = [event("message_start", {"message": start})]
    body.append(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    body += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "word "}})
        for _ in range(chunks)
    ]
    body.append(event("content_block_stop", {"index": 0}))
    body.append(event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": chunks}}))
    body.append(event("message_stop", {}))
    return b"".join(body)


# --- a worker: one contender, set up once, running batches on request ---


class _Discard:
    """A span exporter that drops what it gets: export cost is the backend's, not the instrumentation's."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _instrument(name: str, provider: Any) -> None:
    if name.startswith("featurecost"):
        from featurecost.instrumentation.anthropic import AnthropicInstrumentor
        from featurecost.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        AnthropicInstrumentor().instrument(tracer_provider=provider)
    elif name == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIv2

        OpenAIv2().instrument(tracer_provider=provider)
    elif name == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as LLMetryAnthropic
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as LLMetryOpenAI

        LLMetryOpenAI().instrument(tracer_provider=provider)
        LLMetryAnthropic().instrument(tracer_provider=provider)
    elif name == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor as OIAnthropic
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIOpenAI

        OIOpenAI().instrument(tracer_provider=provider)
        OIAnthropic().instrument(tracer_provider=provider)
    elif name in FLOOR_CONTENDERS:
        import openai.resources.chat.completions.completions as chat_module
        from wrapt import wrap_function_wrapper

        floor = SpanFloor(provider)
        emit = floor.sdk_span if name == "floor-sdk-span" else floor.readable_span

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return emit(lambda: wrapped(*args, **kwargs))

        wrap_function_wrapper(chat_module, "Completions.create", wrapper)
    elif not name.startswith("bare"):
        raise SystemExit(f"unknown contender {name!r}")


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class SpanFloor:
    """The span of one chat call with featurecost's exact attributes, two ways (see FLOOR_SDK)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
        from opentelemetry.trace.status import Status

        import featurecost
        from featurecost.instrumentation._spans import _start_attributes, end_attributes
        from featurecost.instrumentation.openai._usage import completion_facts
        from featurecost.instrumentation.version import __version__

        self.provider = provider
        self.tracer = provider.get_tracer("featurecost.instrumentation.openai", __version__)
        with featurecost.attribute(**ATTRIBUTION):
            attribution = featurecost.current_attribution()
        self.start_attributes = _start_attributes("chat", "openai", CHAT_MODEL, _BenchClient(), attribution, {})
        import openai

        parsed = openai.types.chat.ChatCompletion.model_validate_json(_chat_json())
        self.end_attributes = end_attributes(*completion_facts(parsed))
        self.name = f"chat {CHAT_MODEL}"
        self._otel_context, self._trace = otel_context, trace
        self._readable, self._non_recording, self._span_context = ReadableSpan, NonRecordingSpan, SpanContext
        self._sampled = TraceFlags(TraceFlags.SAMPLED)
        self._client = SpanKind.CLIENT
        self._unset = Status()
        self._scope = InstrumentationScope("featurecost.instrumentation.openai", __version__)

    def sdk_span(self, call: Callable[[], Any]) -> Any:
        otel_context, trace = self._otel_context, self._trace
        span = self.tracer.start_span(self.name, kind=self._client, attributes=self.start_attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = call()
        finally:
            otel_context.detach(token)
        span.set_attributes(self.end_attributes)
        span.end()
        return result

    def readable_span(self, call: Callable[[], Any]) -> Any:
        """(b): what the span costs without an SDK ``Span``. The sampler is still asked (a real
        implementation must honour it); processors' ``on_start`` is not called (there is no
        ``Span`` to hand them), and ``get_current_span().is_recording()`` is False in the call."""
        otel_context, trace, provider = self._otel_context, self._trace, self.provider
        ctx = otel_context.get_current()
        parent = trace.get_current_span(ctx).get_span_context()
        ids = provider.id_generator
        trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
        sampled = provider.sampler.should_sample(
            ctx, trace_id, self.name, self._client, self.start_attributes
        ).decision.is_sampled()
        span_context = self._span_context(trace_id, ids.generate_span_id(), False, self._sampled)
        token = otel_context.attach(trace.set_span_in_context(self._non_recording(span_context), ctx))
        start = time.time_ns()
        try:
            result = call()
        finally:
            otel_context.detach(token)
        if sampled:
            provider._active_span_processor.on_end(
                self._readable(
                    self.name,
                    context=span_context,
                    parent=parent if parent.is_valid else None,
                    resource=provider.resource,
                    attributes={**self.start_attributes, **self.end_attributes},
                    kind=self._client,
                    status=self._unset,
                    start_time=start,
                    end_time=time.time_ns(),
                    instrumentation_scope=self._scope,
                )
            )
        return result


class _BenchClient:
    """What ``_start_attributes`` reads of an SDK client: its base URL."""

    def __init__(self) -> None:
        import httpx2

        self._base_url = httpx2.URL("http://bench.invalid/v1")


class Worker:
    def __init__(self, name: str, chunks: int) -> None:
        import anthropic
        import httpx2
        import openai
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        import featurecost

        self.name = name
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(_Discard()))  # type: ignore[arg-type]
        trace.set_tracer_provider(self.provider)
        _instrument(name, self.provider)

        def http(body: bytes, content_type: str) -> httpx2.Client:
            def handler(request: httpx2.Request) -> httpx2.Response:
                return httpx2.Response(200, content=body, headers={"content-type": content_type})

            return httpx2.Client(transport=httpx2.MockTransport(handler))

        base = "http://bench.invalid"
        self.chat = openai.OpenAI(
            base_url=f"{base}/v1", api_key="k", max_retries=0, http_client=http(_chat_json(), "application/json")
        )
        self.chat_stream = openai.OpenAI(
            base_url=f"{base}/v1", api_key="k", max_retries=0, http_client=http(_chat_sse(chunks), "text/event-stream")
        )
        self.claude = anthropic.Anthropic(
            base_url=base, api_key="k", max_retries=0, http_client=http(_message_json(), "application/json")
        )
        self.claude_stream = anthropic.Anthropic(
            base_url=base, api_key="k", max_retries=0, http_client=http(_message_sse(chunks), "text/event-stream")
        )
        per_call = name == "featurecost"
        outer = name == "featurecost-outer"
        attribute: Callable[[], AbstractContextManager[Any]] = (
            (lambda: featurecost.attribute(**ATTRIBUTION)) if name.startswith("featurecost") else nullcontext
        )
        self.tracer = self.provider.get_tracer("app")
        self._parsed: tuple[list[Any], list[Any]] | None = None
        self._span_floor_: SpanFloor | None = None
        self.per_call: Callable[[], AbstractContextManager[Any]] = attribute if per_call else nullcontext
        self.per_batch: Callable[[], AbstractContextManager[Any]] = attribute if outer else nullcontext

    def _openai_chat(self) -> None:
        with self.per_call():
            self.chat.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)

    def _openai_stream(self) -> None:
        with self.per_call():
            for _ in self.chat_stream.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True):
                pass

    def _anthropic_message(self) -> None:
        with self.per_call():
            self.claude.messages.create(model=CLAUDE_MODEL, max_tokens=64, messages=MESSAGES)

    def _anthropic_stream(self) -> None:
        with self.per_call():
            for _ in self.claude_stream.messages.create(
                model=CLAUDE_MODEL, max_tokens=64, messages=MESSAGES, stream=True
            ):
                pass

    def _app_span(self) -> None:
        # An ordinary span of the app (an HTTP handler, a DB query): instrumentation of LLM
        # calls must not make these dearer.
        with self.tracer.start_as_current_span("app work"):
            pass

    def _span_floor(self) -> None:
        from opentelemetry.trace import SpanKind

        span = self.tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=_START_ATTRIBUTES)
        span.set_attributes(_END_ATTRIBUTES)
        span.end()

    def _floor(self) -> SpanFloor:
        if self._span_floor_ is None:
            self._span_floor_ = SpanFloor(self.provider)
        return self._span_floor_

    def _sdk_span_floor(self) -> None:
        self._floor().sdk_span(_nothing)

    def _readable_span_floor(self) -> None:
        self._floor().readable_span(_nothing)

    def case(self, case: str) -> Callable[[], None]:
        return {
            FLOOR_SDK: self._sdk_span_floor,
            FLOOR_READABLE: self._readable_span_floor,
            "openai chat": self._openai_chat,
            "openai stream": self._openai_stream,
            "anthropic message": self._anthropic_message,
            "anthropic stream": self._anthropic_stream,
            "app span": self._app_span,
            FLOOR: self._span_floor,
        }[case]

    def run(self, case: str, repeat: int) -> float:
        """CPU seconds of ``repeat`` calls of ``case``, their spans flushed through the processor."""
        call = self.case(case)
        gc.collect()
        start = time.process_time()
        with self.per_batch():
            for _ in range(repeat):
                call()
        self.provider.force_flush()
        return time.process_time() - start

    def proxy(self) -> list[float]:
        """featurecost's stream proxy alone: µs per chunk added to iterating already parsed
        chunks (openai, anthropic). The end-to-end per-chunk figure subtracts two SDK timings
        of ~80 µs per chunk; this one is steadier."""
        from featurecost.instrumentation._spans import start_llm_call
        from featurecost.instrumentation._streams import TracedStream
        from featurecost.instrumentation.anthropic._usage import MessageStreamAccumulator
        from featurecost.instrumentation.openai._usage import ChatStreamAccumulator

        if self._parsed is None:
            self._parsed = (
                list(self.chat_stream.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)),
                list(
                    self.claude_stream.messages.create(
                        model=CLAUDE_MODEL, max_tokens=64, messages=MESSAGES, stream=True
                    )
                ),
            )
        tracer = self.provider.get_tracer("bench")

        def traced(items: list[Any], new: Callable[[], Any]) -> None:
            call = start_llm_call(tracer, operation="chat", provider="bench", request_model=CHAT_MODEL)
            for _ in TracedStream(iter(items), call, new()):
                pass

        added = []
        for items, new in (
            (self._parsed[0], lambda: ChatStreamAccumulator(True)),
            (self._parsed[1], MessageStreamAccumulator),
        ):
            gc.collect()
            # One stream untimed first: right after a collection the allocator's first requests
            # fault freed pages back in (~150 µs, measured), a cost of the collection that the
            # plain loop (which allocates nothing) would not pay. Then a few streams per timing
            # and one flush, as an app runs them.
            traced(items, new)
            start = time.process_time()
            for _ in range(_PROXY_STREAMS):
                for _ in iter(items):
                    pass
            plain = time.process_time() - start
            start = time.process_time()
            for _ in range(_PROXY_STREAMS):
                traced(items, new)
            self.provider.force_flush()
            added.append((time.process_time() - start - plain) / (_PROXY_STREAMS * len(items)) * 1e6)
        return added

    def growth(self, calls: int) -> list[int]:
        """RSS (KiB) before, halfway through and after ``calls`` more chat calls."""
        gc.collect()
        sizes = [_rss_kb()]
        for _ in range(2):
            for _ in range(calls // 2 // _FLUSH_EVERY):
                # flushed in steps: the span queue (2048) must never overflow and drop spans
                with self.per_batch():
                    for _ in range(_FLUSH_EVERY):
                        self._openai_chat()
                self.provider.force_flush()
            gc.collect()
            sizes.append(_rss_kb())
        return sizes


def _nothing() -> None:
    pass


def worker_main(name: str, chunks: int) -> None:
    worker = Worker(name, chunks)
    out = sys.stdout
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            reply: Any = worker.run(command["case"], command["repeat"])
        elif command["op"] == "rss":
            gc.collect()
            reply = _rss_kb()
        elif command["op"] == "proxy":
            reply = worker.proxy()
        elif command["op"] == "growth":
            reply = worker.growth(command["calls"])
        else:
            break
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Remote:
    """The driver's handle on a worker process."""

    def __init__(self, name: str, chunks: int) -> None:
        self.name = name
        # One hash seed for all: dict and set layouts (and so their speed) then do not differ
        # between the workers for that reason.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", name, "--chunks", str(chunks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **command: Any) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def _rotated(items: list[Remote], by: int) -> Iterator[Remote]:
    for i in range(len(items)):
        yield items[(i + by) % len(items)]


def _applies(name: str, case: str) -> bool:
    _, openai_, anthropic_ = CONTENDERS[name]
    if case in FLOORS:
        return name == "bare"
    if case == "app span":
        return True
    if name in FLOOR_CONTENDERS:
        return case == "openai chat"
    return openai_ if case.startswith("openai") else anthropic_


def compare(args: argparse.Namespace) -> None:
    names = [n for n in CONTENDERS if args.only is None or n in args.only.split(",") or n == "bare"]
    workers = [Remote(name, args.chunks) for name in names]
    spans = 1000  # app spans per batch: below the span queue's 2048, so none is dropped
    repeat = {"openai chat": args.calls, "anthropic message": args.calls, "openai stream": 1, "anthropic stream": 1}
    repeat.update({"app span": spans, **dict.fromkeys(FLOORS, args.calls)})
    per_op = {"openai chat": args.calls, "anthropic message": args.calls, "openai stream": args.chunks}
    per_op.update({"anthropic stream": args.chunks, "app span": spans, **dict.fromkeys(FLOORS, args.calls)})
    try:
        for worker in workers:  # warm up: imports, pools, caches
            for case in (*CASES, *FLOORS):
                if _applies(worker.name, case):
                    worker.ask(op="run", case=case, repeat=max(1, repeat[case] // 10))
        idle = {w.name: w.ask(op="rss") for w in workers}
        added: dict[tuple[str, str], list[float]] = {}
        proxy: list[list[float]] = []
        bare_us: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            for case in (*CASES, *FLOORS):
                times: dict[str, float] = {}
                for worker in _rotated(workers, round_):
                    if _applies(worker.name, case):
                        times[worker.name] = worker.ask(op="run", case=case, repeat=repeat[case]) / per_op[case] * 1e6
                base = times["bare"]
                if case in FLOORS:
                    bare_us.setdefault(case, []).append(base)
                    continue
                bare_us.setdefault(case, []).append(base)
                for name, us in times.items():
                    if name != "bare":
                        added.setdefault((name, case), []).append(us - base)
            proxy += [w.ask(op="proxy") for w in workers if w.name == "featurecost"]
        growth = {w.name: w.ask(op="growth", calls=args.growth_calls) for w in workers} if args.growth_calls else {}
    finally:
        for worker in workers:
            worker.close()

    unit = {c: "/chunk" if "stream" in c else "/span" if c == "app span" else "/call" for c in CASES}
    width = 19
    print(f"Added CPU µs per op: median of {args.rounds} rounds, each contender minus the bare SDK in the same round")
    print(f"{'contender':48}" + "".join(f"{c:>{width}}" for c in CASES))
    print(f"{'':48}" + "".join(f"{unit[c]:>{width}}" for c in CASES))
    print(
        f"{'bare SDK (its own µs per op, not added)':48}"
        + "".join(f"{statistics.median(bare_us[c]):{width}.2f}" for c in CASES)
    )
    medians: dict[tuple[str, str], float] = {}
    for name in names[1:]:
        cells = []
        for case in CASES:
            found = added.get((name, case))
            if found is None:
                cells.append(f"{'—':>{width}}")
                continue
            medians[name, case] = statistics.median(found)
            cells.append(f"{medians[name, case]:{width}.2f}")
        print(f"{CONTENDERS[name][0]:48}" + "".join(cells))
    floor = statistics.median(bare_us[FLOOR])
    print(f"reference: the OTel SDK alone, one span with ~20 attributes started and ended: {floor:.2f} µs")
    print(
        f"reference (a): featurecost's exact attributes on an SDK span, current during the call: "
        f"{statistics.median(bare_us[FLOOR_SDK]):.2f} µs"
    )
    print(
        f"reference (b): the same delivered as one ReadableSpan at the end (NonRecordingSpan current, "
        f"no SDK Span, no on_start): {statistics.median(bare_us[FLOOR_READABLE]):.2f} µs"
    )
    print()
    for case in CASES[:4]:
        peers = {p: medians[p, case] for p in PEERS if (p, case) in medians}
        if not peers or ("featurecost", case) not in medians:
            continue
        best = min(peers, key=lambda p: peers[p])
        ours = medians["featurecost", case]
        target = "≤ 0.333" if "stream" not in case else "≤ 0.333, and ≤ 1 µs per chunk"
        ratio = ours / peers[best]
        print(
            f"{case:20} featurecost {ours:8.2f} / best peer ({best}) {peers[best]:8.2f} = {ratio:6.3f}  target {target}"
        )
        for name in FLOOR_CONTENDERS:
            if (name, case) in medians:
                floor_ratio = medians[name, case] / peers[best]
                ours = medians[name, case]
                print(f"{'':20} {name:11} {ours:8.2f} / the same peer = {floor_ratio:6.3f}  (a floor: reachable?)")
    print()
    if proxy:
        openai_chunk = statistics.median(p[0] for p in proxy)
        anthropic_chunk = statistics.median(p[1] for p in proxy)
        print(
            f"featurecost's stream proxy alone, µs per already-parsed chunk: openai {openai_chunk:.2f}, "
            f"anthropic {anthropic_chunk:.2f}  (target ≤ 1; steadier than the end-to-end column)"
        )
        print()
    print(
        f"{'RSS MiB':44}{'idle':>10}"
        + (
            f"{'+' + str(args.growth_calls // 2) + ' calls':>16}{'+' + str(args.growth_calls) + ' calls':>16}"
            if growth
            else ""
        )
    )
    for name in names:
        row = f"{CONTENDERS[name][0]:44}{idle[name] / 1024:10.1f}"
        if name in growth:
            before, half, after = growth[name]
            row += f"{(half - before) / 1024:+16.2f}{(after - before) / 1024:+16.2f}"
        print(row)


def profile(args: argparse.Namespace) -> None:
    worker = Worker(args.profile, args.chunks)
    case = args.case
    worker.run(case, 50)
    profiler = cProfile.Profile()
    call = worker.case(case)
    repeat = args.calls if "stream" not in case else 5
    profiler.enable()
    with worker.per_batch():
        for _ in range(repeat):
            call()
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats(args.sort)
    stats.print_stats(*([args.filter] if args.filter else []), args.lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=21, help="paired rounds (the median counts)")
    parser.add_argument("--calls", type=int, default=300, help="calls per contender per round")
    parser.add_argument("--chunks", type=int, default=2000, help="chunks of the streamed responses")
    parser.add_argument("--growth-calls", type=int, default=20_000, help="calls for the RSS growth check (0: skip)")
    parser.add_argument("--only", help="comma-separated contenders (the bare SDK always runs)")
    parser.add_argument("--profile", help="cProfile one contender instead of comparing")
    parser.add_argument("--case", default="openai chat", choices=CASES, help="the case --profile runs")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--lines", type=int, default=40, help="rows --profile prints")
    parser.add_argument(
        "--filter", help="regex on file:function rows --profile prints (e.g. 'featurecost|opentelemetry')"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.chunks)
    elif args.profile:
        profile(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
