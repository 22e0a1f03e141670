"""How much time featurecost instrumentation adds to an LLM call and to each stream chunk.

Run: ``.venv/bin/python bench/instrumentation_overhead.py [--calls 2000] [--chunks 2000]``

The real ``openai`` / ``anthropic`` SDKs parse responses shaped like the providers'
(JSON bodies, SSE framing) served from memory by an ``httpx2.MockTransport``, so the
network does not drown microseconds. Each case is measured uninstrumented and
instrumented in alternating rounds in this one run (the median round counts), and
printed as added µs and as a ratio to the uninstrumented SDK. Spans are recorded by
the OpenTelemetry SDK with no exporter: export cost is the exporter's, not ours.

OpenLLMetry (``opentelemetry-instrumentation-openai``) and OpenInference
(``openinference-instrumentation-openai``) are measured the same way when they are
importable in this interpreter; they are not part of the dev environment (their entry
points would also activate under ``opentelemetry-instrument`` in the end-to-end test),
so install them in a separate virtualenv to compare::

    python3 -m venv /tmp/fc-bench && /tmp/fc-bench/bin/pip install -e ./instrumentation \
        openai==3.54.0 anthropic==2.12.0 opentelemetry-sdk==1.45.2 \
        opentelemetry-instrumentation-openai openinference-instrumentation-openai
    /tmp/fc-bench/bin/python bench/instrumentation_overhead.py

The "isolated" section is the steadier number on a busy machine: the end-to-end rows
subtract two SDK timings of several hundred µs each.

Targets: ≤ 30 µs added per non-streaming call, about 1 µs per chunk.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import featurecost
from featurecost.instrumentation._calls import sync_wrapper
from featurecost.instrumentation._spans import start_llm_call
from featurecost.instrumentation._streams import TracedStream
from featurecost.instrumentation.anthropic import MESSAGES as ANTHROPIC_MESSAGES
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.anthropic._usage import MessageStreamAccumulator
from featurecost.instrumentation.openai import OpenAIInstrumentor
from featurecost.instrumentation.openai import _endpoints as openai_endpoints
from featurecost.instrumentation.openai._usage import ChatStreamAccumulator

ROUNDS = 7


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


def _transport(body: bytes, content_type: str) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return httpx2.MockTransport(handler)


def _openai(body: bytes, content_type: str) -> openai.OpenAI:
    http = httpx2.Client(transport=_transport(body, content_type))
    return openai.OpenAI(base_url="http://bench.invalid/v1", api_key="k", http_client=http, max_retries=0)


def _anthropic(body: bytes, content_type: str) -> anthropic.Anthropic:
    http = httpx2.Client(transport=_transport(body, content_type))
    return anthropic.Anthropic(base_url="http://bench.invalid", api_key="k", http_client=http, max_retries=0)


def _time_per_op(fn: Callable[[], None], ops: int) -> float:
    # CPU time of this thread: the 2-core machines this runs on are shared, and time
    # spent descheduled is not time the instrumentation took.
    gc.collect()
    start = time.thread_time()
    fn()
    return (time.thread_time() - start) / ops * 1e6  # µs


Instrumenter = tuple[str, Callable[[TracerProvider], None], Callable[[], None]]


def _featurecost() -> Instrumenter:
    def on(provider: TracerProvider) -> None:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        AnthropicInstrumentor().instrument(tracer_provider=provider)

    def off() -> None:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()

    return "featurecost", on, off


def _optional(name: str, module: str, cls: str, package: str) -> Instrumenter | str:
    try:
        instrumentor = getattr(__import__(module, fromlist=[cls]), cls)()
    except Exception as exc:
        return f"{name}: not measured ({package} not importable here: {type(exc).__name__}); pip install {package}"

    def on(provider: TracerProvider) -> None:
        instrumentor.instrument(tracer_provider=provider)

    def off() -> None:
        instrumentor.uninstrument()

    return name, on, off


def measure(
    case: Callable[[], None], ops: int, instrumenter: Instrumenter, provider: TracerProvider
) -> tuple[float, float]:
    """Fastest round's µs per op, uninstrumented and instrumented, from alternating rounds.

    The minimum is the estimate least disturbed by other work on the machine.
    """
    _, on, off = instrumenter
    case()  # warm up imports and pools
    base: list[float] = []
    instrumented: list[float] = []
    for _ in range(ROUNDS):
        base.append(_time_per_op(case, ops))
        on(provider)
        try:
            case()
            instrumented.append(_time_per_op(case, ops))
        finally:
            off()
    return min(base), min(instrumented)


def isolated(
    provider: TracerProvider,
    calls: int,
    chat: openai.OpenAI,
    chunk_list: list[Any],
    claude: anthropic.Anthropic,
    event_list: list[Any],
) -> None:
    """featurecost's own work, without the SDK around it: the wrapper around a method
    that returns a ready response, and the stream proxy around ready chunks."""
    tracer = provider.get_tracer("bench")
    completion = chat.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    openai_wrapper = sync_wrapper(tracer, openai_endpoints(True)["chat"])
    anthropic_wrapper = sync_wrapper(tracer, ANTHROPIC_MESSAGES)
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    def canned_completion(**_: Any) -> Any:
        return completion

    def canned_message(**_: Any) -> Any:
        return message

    def direct(canned: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            with featurecost.attribute(feature="bench", tenant="t"):
                for _ in range(calls):
                    canned(**kwargs)

        return run

    def through(wrapper: Callable[..., Any], canned: Callable[..., Any], instance: Any) -> Callable[[], None]:
        def run() -> None:
            with featurecost.attribute(feature="bench", tenant="t"):
                for _ in range(calls):
                    wrapper(canned, instance, (), kwargs)

        return run

    def plain_stream(items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in iter(items):
                pass

        return run

    def traced_stream(items: list[Any], accumulator: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            call = start_llm_call(tracer, operation="chat", provider="bench", request_model="m")
            for _ in TracedStream(iter(items), call, accumulator()):
                pass

        return run

    rows = [
        (
            "openai wrapper, canned response",
            "call",
            calls,
            direct(canned_completion),
            through(openai_wrapper, canned_completion, chat.chat.completions),
        ),
        (
            "anthropic wrapper, canned response",
            "call",
            calls,
            direct(canned_message),
            through(anthropic_wrapper, canned_message, claude.messages),
        ),
        (
            "openai stream proxy, parsed chunks",
            "chunk",
            len(chunk_list),
            plain_stream(chunk_list),
            traced_stream(chunk_list, lambda: ChatStreamAccumulator(True)),
        ),
        (
            "anthropic stream proxy, parsed events",
            "chunk",
            len(event_list),
            plain_stream(event_list),
            traced_stream(event_list, MessageStreamAccumulator),
        ),
    ]
    # The floor: what the OpenTelemetry SDK itself takes to start and end a span with
    # the same attributes, recorded from one real call.
    exporter = InMemorySpanExporter()
    recording = TracerProvider()
    recording.add_span_processor(SimpleSpanProcessor(exporter))
    sync_wrapper(recording.get_tracer("bench"), openai_endpoints(True)["chat"])(
        canned_completion, chat.chat.completions, (), kwargs
    )
    (recorded,) = exporter.get_finished_spans()
    span_attributes = dict(recorded.attributes or {})

    def bare_spans() -> None:
        for _ in range(calls):
            tracer.start_span(recorded.name, kind=SpanKind.CLIENT, attributes=span_attributes).end()

    rows.insert(
        0,
        (
            f"OTel SDK span alone, {len(span_attributes)} attributes",
            "call",
            calls,
            direct(canned_completion),
            bare_spans,
        ),
    )
    for label, unit, ops, base_case, instr_case in rows:
        base_case()
        instr_case()
        base = min(_time_per_op(base_case, ops) for _ in range(ROUNDS))
        instr = min(_time_per_op(instr_case, ops) for _ in range(ROUNDS))
        print(f"{label:38} {'featurecost':14} {unit:6} {base:10.2f} {instr:10.2f} {instr - base:10.2f}")


def _instrumenter(name: str) -> Instrumenter | str:
    if name == "featurecost":
        return _featurecost()
    if name == "OpenLLMetry":
        return _optional(
            name, "opentelemetry.instrumentation.openai", "OpenAIInstrumentor", "opentelemetry-instrumentation-openai"
        )
    return _optional(
        name, "openinference.instrumentation.openai", "OpenAIInstrumentor", "openinference-instrumentation-openai"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="calls per round for the per-call cases")
    parser.add_argument("--chunks", type=int, default=2000, help="chunks in the stream of the per-chunk cases")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one part, in a process of its own
    args = parser.parse_args()
    sizes = ["--calls", str(args.calls), "--chunks", str(args.chunks)]
    if args.only is None:
        # Each part runs in a fresh process: some instrumentations leave patches behind
        # after uninstrument(), which would slow the next part's uninstrumented baseline.
        print("End to end: the real SDK over an in-memory transport, without and with instrumentation")
        header = f"{'case':34} {'instrumentation':14} {'per':6} {'SDK µs':>10} {'instr µs':>10} {'added µs':>10}"
        print(f"{header} {'ratio':>7}", flush=True)
        for part in ("featurecost", "OpenLLMetry", "OpenInference"):
            subprocess.run([sys.executable, __file__, *sizes, "--only", part], check=True)
        print()
        print("Isolated: featurecost's own work per call / per chunk (the SDK's time taken out)")
        print(f"{'case':38} {'instrumentation':14} {'per':6} {'bare µs':>10} {'instr µs':>10} {'added µs':>10}")
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__, *sizes, "--only", "isolated"], check=True)
        print()
        print("targets: <= 30 µs added per non-streaming call, ~1 µs added per stream chunk")
        return

    provider = TracerProvider()  # spans recorded, nothing exported
    messages = [{"role": "user", "content": "hi"}]
    chat = _openai(_chat_json(), "application/json")
    chat_stream = _openai(_chat_sse(args.chunks), "text/event-stream")
    claude = _anthropic(_message_json(), "application/json")
    claude_stream = _anthropic(_message_sse(args.chunks), "text/event-stream")

    if args.only == "isolated":
        chunk_list = list(chat_stream.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))  # type: ignore[call-overload]
        event_list = list(
            claude_stream.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages, stream=True)  # type: ignore[arg-type]
        )
        isolated(provider, args.calls, chat, chunk_list, claude, event_list)
        return

    def openai_calls() -> None:
        with featurecost.attribute(feature="bench", tenant="t"):
            for _ in range(args.calls):
                chat.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]

    def openai_stream() -> None:
        with featurecost.attribute(feature="bench", tenant="t"):
            for _ in chat_stream.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):  # type: ignore[call-overload]
                pass

    def anthropic_calls() -> None:
        with featurecost.attribute(feature="bench", tenant="t"):
            for _ in range(args.calls):
                claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages)  # type: ignore[arg-type]

    def anthropic_stream() -> None:
        with featurecost.attribute(feature="bench", tenant="t"):
            for _ in claude_stream.messages.create(
                model="claude-haiku-4-5",
                max_tokens=64,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
            ):
                pass

    cases = [
        ("openai chat.completions.create", "call", openai_calls, args.calls, True),
        ("openai chat stream", "chunk", openai_stream, args.chunks, True),
        ("anthropic messages.create", "call", anthropic_calls, args.calls, False),
        ("anthropic messages stream", "chunk", anthropic_stream, args.chunks, False),
    ]
    instrumenter = _instrumenter(args.only)
    if isinstance(instrumenter, str):
        print(instrumenter)
        return
    name = instrumenter[0]
    for label, unit, case, ops, is_openai in cases:
        if name != "featurecost" and not is_openai:
            continue  # the comparisons are OpenAI instrumentors
        base, instr = measure(case, ops, instrumenter, provider)
        print(f"{label:34} {name:14} {unit:6} {base:10.2f} {instr:10.2f} {instr - base:10.2f} {instr / base:7.3f}")


if __name__ == "__main__":
    main()
