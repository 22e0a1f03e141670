"""Mistral AI SDK (``mistralai``) instrumentation: chat (plain and streamed) and embeddings.

Mistral reports usage the OpenAI way — ``prompt_tokens`` include the cached prefix
(``prompt_tokens_details.cached_tokens``) — which is already the semconv meaning.

``mistralai`` traces its own requests (a GenAI span per call, with the prompt and the
completion as attributes) whenever a global tracer provider is set. Under a featurecost
span that span would be a second billable LLM span for the same call, and it copies
content we promise not to capture, so while instrumented we keep it from starting for
the calls we wrap.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import _transport
from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._lifecycle import (
    Facts,
    Method,
    Request,
    Target,
    accumulated,
    proxied,
    unwrap_targets,
    wrap_targets,
)
from featurecost.instrumentation._nested import watch_nested_spans
from featurecost.instrumentation._prefix import leading_instructions, safe_prefix_block
from featurecost.instrumentation._spans import ResponseFacts, TokenUsage, in_llm_call, int_or_zero
from featurecost.instrumentation._streams import AsyncTracedStream, ResponseAccumulator
from featurecost.instrumentation.version import __version__

_instruments = ("mistralai >= 2.0",)
PROVIDER = "mistral_ai"
_CHAT = "mistralai.client.chat"
_EMBEDDINGS = "mistralai.client.embeddings"
_NATIVE_TRACING = "mistralai.client._hooks.tracing"


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def usage_from_mistral(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    details = _field(usage, "prompt_tokens_details")  # not modelled by the SDK: arrives as an extra field
    return TokenUsage(
        input_tokens=int_or_zero(_field(usage, "prompt_tokens")),
        output_tokens=int_or_zero(_field(usage, "completion_tokens")),
        cache_read_tokens=int_or_zero(_field(details, "cached_tokens")) if details is not None else 0,
    )


def _server_address(instance: Any) -> str | None:
    config = getattr(instance, "sdk_configuration", None)
    get_server = getattr(config, "get_server_details", None)
    if get_server is None:
        return None
    url, _ = get_server()
    return urlparse(str(url)).hostname


class _ResponseAccumulator(ResponseAccumulator):
    """A chat response, whole or assembled from stream events (usage on the last one)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.response_id: Any = None
        self.usage_seen: Any = None
        self.finish_reasons: list[str] = []

    def on_item(self, item: Any) -> bool:
        response = item
        chunk = getattr(item, "data", None)
        if hasattr(chunk, "choices"):  # a stream event wraps its chunk in .data (embeddings' .data is a list)
            response = chunk
        self.model = getattr(response, "model", None) or self.model
        self.response_id = getattr(response, "id", None) or self.response_id
        self.usage_seen = getattr(response, "usage", None) or self.usage_seen
        for choice in getattr(response, "choices", None) or []:
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.finish_reasons.append(str(reason))
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_mistral(self.usage_seen)

    def response_facts(self) -> ResponseFacts:
        return ResponseFacts(model=self.model, response_id=self.response_id, finish_reasons=self.finish_reasons or None)


def _response_facts(response: Any) -> Facts:
    return accumulated(_ResponseAccumulator)(response)


def _request(instance: Any, kwargs: Mapping[str, Any]) -> Request:
    model, max_tokens, tier = kwargs.get("model"), kwargs.get("max_tokens"), kwargs.get("service_tier")
    return Request(
        model=model if isinstance(model, str) else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        service_tier=tier if isinstance(tier, str) else None,
        server_address=_server_address(instance),
        prefix_block=safe_prefix_block(_instructions, kwargs),
    )


def _instructions(kwargs: Mapping[str, Any]) -> str:
    return leading_instructions(kwargs.get("messages"))


def _provider(instance: Any) -> str:
    return PROVIDER


def _targets() -> tuple[Target, ...]:
    """What we wrap, for ``instrument`` and ``uninstrument`` alike (built when called, so a
    test can swap an extractor before instrumenting)."""
    chat, embeddings = Method("chat", _provider, _request), Method("embeddings", _provider, _request)
    stream = proxied(_ResponseAccumulator)
    async_stream = proxied(_ResponseAccumulator, AsyncTracedStream)
    return (
        Target(_CHAT, "Chat", "complete", chat, "call", _response_facts),
        Target(_CHAT, "Chat", "complete_async", chat, "async call", _response_facts),
        Target(_CHAT, "Chat", "stream", chat, "stream", stream),
        Target(_CHAT, "Chat", "stream_async", chat, "async stream", async_stream),
        Target(_EMBEDDINGS, "Embeddings", "create", embeddings, "call", _response_facts),
        Target(_EMBEDDINGS, "Embeddings", "create_async", embeddings, "async call", _response_facts),
    )


def _skip_native_span_in_llm_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # get_traced_request_and_span(tracing_enabled, tracer, span, operation_id, request):
    # with tracing disabled the SDK sends the request without a span of its own.
    if in_llm_call():
        if "tracing_enabled" in kwargs:
            kwargs = {**kwargs, "tracing_enabled": False}
        else:
            args = (False, *args[1:])
    return wrapped(*args, **kwargs)


def _has_native_tracing() -> bool:
    import importlib

    try:
        module = importlib.import_module(_NATIVE_TRACING)
    except ImportError:
        return False
    return hasattr(module, "get_traced_request_and_span")


class MistralAIInstrumentor(SafeInstrumentor):
    """Instruments ``mistralai`` chat.complete/stream and embeddings.create, sync and async."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        _transport.install("mistralai")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        wrap_targets(tracer, _targets())
        if _has_native_tracing():
            wrap_function_wrapper(_NATIVE_TRACING, "get_traced_request_and_span", _skip_native_span_in_llm_call)

    def _uninstrument(self, **kwargs: Any) -> None:
        _transport.uninstall("mistralai")
        unwrap_targets(_targets())
        if _has_native_tracing():
            import mistralai.client._hooks.tracing as tracing

            unwrap(tracing, "get_traced_request_and_span")
