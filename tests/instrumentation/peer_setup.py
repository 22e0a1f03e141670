"""One app process with featurecost *and* another observability tool, as a user runs it.

``python -m tests.instrumentation.peer_setup PEER ORDER URL OUT`` instruments the real peer
package and ours in ORDER (``peer-first`` / ``ours-first``), makes one of each kind of
OpenAI and Anthropic call against the provider stand-in at URL under one attribution, and
writes every span the process exported (all tools share the global SDK tracer provider, as
they do in an app) to OUT as one OTLP ``ExportTraceServiceRequest``.

A process per setup: tools like Logfire install the global tracer provider, which can be
set once per process, and instrumentors are process-wide singletons.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import featurecost
from featurecost.instrumentation.anthropic import AnthropicInstrumentor
from featurecost.instrumentation.openai import OpenAIInstrumentor

USER: Any = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-3-5-haiku-20241022"
ATTRIBUTION = {"feature": "summarize", "tenant": "acme", "user": "u-1"}


def _global_provider(memory: InMemorySpanExporter) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "app", "deployment.environment.name": "e"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)


def _openllmetry(memory: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as Anthropic
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenAI

    OpenAI().instrument()
    Anthropic().instrument()


def _openinference(memory: InMemorySpanExporter) -> None:
    from openinference.instrumentation.anthropic import AnthropicInstrumentor as Anthropic
    from openinference.instrumentation.openai import OpenAIInstrumentor as OpenAI

    OpenAI().instrument()
    Anthropic().instrument()


def _openai_v2(memory: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAI

    OpenAI().instrument()


def _logfire(memory: InMemorySpanExporter) -> None:
    import logfire

    logfire.configure(
        send_to_logfire=False,
        console=False,
        service_name="app",
        environment="e",
        additional_span_processors=[SimpleSpanProcessor(memory)],
    )
    logfire.instrument_openai()
    logfire.instrument_anthropic()


def _langfuse(memory: InMemorySpanExporter) -> None:
    # Langfuse's drop-in: importing ``langfuse.openai`` wraps the openai SDK. Its client also
    # exports to its own host: the stand-in, which answers 404 (not retried), so it stays quick.
    os.environ.setdefault("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
    os.environ.setdefault("LANGFUSE_SECRET_KEY", "sk-lf-test")
    os.environ.setdefault("LANGFUSE_HOST", os.environ["PEER_SETUP_URL"])
    import langfuse.openai  # noqa: F401


def _openlit(memory: InMemorySpanExporter) -> None:
    # OpenLIT reuses the app's SDK tracer provider when one is set (it is, above) and
    # instruments every SDK it finds; its metrics and events are not what is checked here.
    # Its price list would be fetched from GitHub: an empty local one keeps it off the network.
    import tempfile

    import openlit

    prices = Path(tempfile.mkdtemp()) / "openlit-pricing.json"
    prices.write_text("{}")
    openlit.init(
        pricing_json=str(prices),
        application_name="app",
        environment="e",
        disable_metrics=True,
        disable_events=True,
        capture_message_content=False,
    )


PEERS: dict[str, Callable[[InMemorySpanExporter], None]] = {
    "openlit": _openlit,
    "langfuse": _langfuse,
    "openllmetry": _openllmetry,
    "openinference": _openinference,
    "openai-v2": _openai_v2,
    "logfire": _logfire,
}


def _calls(url: str) -> None:
    """One call of each kind, sync and async: each must be billed exactly once. The sync ones
    run bare (a script or worker: no enclosing span, so a tool's root span is a trace of its
    own), the async ones in a request span each (one trace per user action, as under a web
    framework)."""
    app = trace.get_tracer("app")
    oa = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    an = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)

    def chat_stream() -> None:
        for _ in oa.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
        ):
            pass

    def messages_stream() -> None:
        for _ in an.messages.create(model=CLAUDE, max_tokens=20, messages=USER, stream=True):
            pass

    def stream_helper() -> None:
        with an.messages.stream(model=CLAUDE, max_tokens=20, messages=USER) as stream:
            stream.until_done()

    async def async_calls() -> None:
        aoa = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        aan = anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0)
        with app.start_as_current_span("handle request"):
            await aoa.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with app.start_as_current_span("handle request"):
            async with aan.messages.stream(model=CLAUDE, max_tokens=20, messages=USER) as astream:
                await astream.until_done()

    calls: list[Callable[[], object]] = [
        lambda: oa.chat.completions.create(model="gpt-4o-mini", messages=USER),
        chat_stream,
        lambda: oa.responses.create(model="gpt-4o-mini", input="hi"),
        lambda: oa.embeddings.create(model="text-embedding-3-small", input="hi"),
        lambda: an.messages.create(model=CLAUDE, max_tokens=20, messages=USER),
        messages_stream,
        stream_helper,
    ]
    for call in calls:
        call()
    asyncio.run(async_calls())


def main(peer: str, order: str, url: str, out: Path) -> None:
    os.environ["PEER_SETUP_URL"] = url
    memory = InMemorySpanExporter()
    if peer != "logfire":
        _global_provider(memory)

    def ours() -> None:
        OpenAIInstrumentor().instrument()
        AnthropicInstrumentor().instrument()

    steps = [lambda: PEERS[peer](memory), ours]
    if order == "ours-first":
        steps.reverse()
    for step in steps:
        step()
    with featurecost.attribute(**ATTRIBUTION):
        _calls(url)
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    out.write_bytes(encode_spans(memory.get_finished_spans()).SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
