"""Google Gen AI SDK (``google-genai``) instrumentation: Gemini API and Vertex AI.

One span per HTTP request to the model. We wrap the SDK's per-request methods
(``Models._generate_content``, ``._generate_content_stream``, ``._embed_content`` and their
``AsyncModels`` twins) rather than the public ones because a single public
``generate_content`` call can make several billable requests — automatic function
calling and automatic continuation loop inside it — and only the per-request level
sees each request's own usage. The public ``generate_content_stream`` methods are
wrapped too, only to carry the caller's context (the attribution) into their lazy
generators.

Gemini reports ``thoughts_token_count`` *outside* ``candidates_token_count``; the span
carries the semconv meaning: output = candidates + thoughts, reasoning = thoughts.
``prompt_token_count`` already includes ``cached_content_token_count`` (a subset, the
cache read); tool-use prompt tokens (results of built-in tools fed back to the model)
are billed as input and are added to it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.util.types import AttributeValue
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._spans import (
    LLMCall,
    TokenUsage,
    clean_attributes,
    int_or_zero,
    llm_span,
    record_usage,
    start_llm_call,
)
from featurecost.instrumentation._streams import (
    AsyncTracedStream,
    BoundAsyncIterator,
    BoundIterator,
    ResponseAccumulator,
    TracedStream,
    record_accumulated,
)
from featurecost.instrumentation.guard import check_call, mark_call_span
from featurecost.instrumentation.version import __version__

_instruments = ("google-genai >= 1.0",)
_MODULE = "google.genai.models"
GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"


def usage_from_gemini(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    thoughts = int_or_zero(getattr(usage, "thoughts_token_count", None))
    # generate_content reports candidates_token_count; embeddings' UsageMetadata says response_token_count
    candidates = int_or_zero(getattr(usage, "candidates_token_count", None)) or int_or_zero(
        getattr(usage, "response_token_count", None)
    )
    return TokenUsage(
        input_tokens=int_or_zero(getattr(usage, "prompt_token_count", None))
        + int_or_zero(getattr(usage, "tool_use_prompt_token_count", None)),
        output_tokens=candidates + thoughts,
        cache_read_tokens=int_or_zero(getattr(usage, "cached_content_token_count", None)),
        reasoning_tokens=thoughts,
    )


def usage_from_embedding(response: Any) -> TokenUsage | None:
    usage = getattr(response, "usage_metadata", None)
    if usage is not None:
        return usage_from_gemini(usage)
    # Vertex AI text-embedding models count tokens per input instead.
    counts = [
        getattr(getattr(embedding, "statistics", None), "token_count", None)
        for embedding in getattr(response, "embeddings", None) or []
    ]
    if counts and all(isinstance(c, int | float) for c in counts):
        return TokenUsage(input_tokens=int(sum(c for c in counts if c is not None)), output_tokens=0)
    return None


def _provider(instance: Any) -> str:
    return VERTEX_AI if getattr(getattr(instance, "_api_client", None), "vertexai", False) else GEMINI


def _server_address(instance: Any) -> str | None:
    options = getattr(getattr(instance, "_api_client", None), "_http_options", None)
    base_url = getattr(options, "base_url", None)
    return urlparse(base_url).hostname if isinstance(base_url, str) else None


def _request_model(kwargs: dict[str, Any]) -> str | None:
    model = kwargs.get("model")
    if not isinstance(model, str):
        return None
    # 'models/gemini-2.5-flash' and 'gemini-2.5-flash' are the same model to the price list
    return model.removeprefix("models/")


def _finish_reasons(response: Any) -> list[str]:
    reasons = []
    for candidate in getattr(response, "candidates", None) or []:
        reason = getattr(candidate, "finish_reason", None)
        if reason is not None:
            reasons.append(str(getattr(reason, "value", reason)))
    return reasons


class _GenerationAccumulator(ResponseAccumulator):
    """A generation, whole or read from stream chunks (usage is cumulative: the last one wins)."""

    def __init__(self) -> None:
        self.usage_seen: Any = None
        self.model: Any = None
        self.response_id: Any = None
        self.finish_reasons: list[str] = []

    def on_item(self, item: Any) -> bool:
        usage = getattr(item, "usage_metadata", None)
        if usage is not None:
            self.usage_seen = usage
        self.model = getattr(item, "model_version", None) or self.model
        self.response_id = getattr(item, "response_id", None) or self.response_id
        self.finish_reasons = _finish_reasons(item) or self.finish_reasons
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_gemini(self.usage_seen)

    def response_attributes(self) -> dict[str, Any]:
        return {
            attrs.GEN_AI_RESPONSE_MODEL: self.model,
            attrs.GEN_AI_RESPONSE_ID: self.response_id,
            attrs.GEN_AI_RESPONSE_FINISH_REASONS: self.finish_reasons or None,
        }


def _record_generation(span: trace.Span, response: Any) -> None:
    acc = _GenerationAccumulator()
    acc.on_item(response)
    record_accumulated(span, acc)


def _record_embedding(span: trace.Span, response: Any) -> None:
    record_usage(span, usage_from_embedding(response))


def _request_attributes(instance: Any, kwargs: dict[str, Any]) -> dict[str, AttributeValue]:
    config = kwargs.get("config")
    max_tokens = (
        config.get("max_output_tokens") if isinstance(config, dict) else getattr(config, "max_output_tokens", None)
    )
    return clean_attributes(
        {attrs.SERVER_ADDRESS: _server_address(instance), attrs.GEN_AI_REQUEST_MAX_TOKENS: max_tokens}
    )


def _call_wrapper(tracer: trace.Tracer, operation: str, record: Callable[[trace.Span, Any], None]) -> Any:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        ticket = check_call(kwargs, _provider(instance))
        provider, model = _provider(instance), _request_model(kwargs)
        attributes = _request_attributes(instance, kwargs)
        with llm_span(
            tracer, operation=operation, provider=provider, request_model=model, attributes=attributes
        ) as span:
            mark_call_span(span, ticket)
            response = wrapped(*args, **kwargs)
            record(span, response)
            return response

    return wrapper


def _async_call_wrapper(tracer: trace.Tracer, operation: str, record: Callable[[trace.Span, Any], None]) -> Any:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        ticket = check_call(kwargs, _provider(instance))
        provider, model = _provider(instance), _request_model(kwargs)
        attributes = _request_attributes(instance, kwargs)
        with llm_span(
            tracer, operation=operation, provider=provider, request_model=model, attributes=attributes
        ) as span:
            mark_call_span(span, ticket)
            response = await wrapped(*args, **kwargs)
            record(span, response)
            return response

    return wrapper


def _start_stream(tracer: trace.Tracer, instance: Any, kwargs: dict[str, Any]) -> LLMCall:
    ticket = check_call(kwargs, _provider(instance))
    call = start_llm_call(
        tracer,
        operation="generate_content",
        provider=_provider(instance),
        request_model=_request_model(kwargs),
        attributes=_request_attributes(instance, kwargs),
    )
    mark_call_span(call.span, ticket)
    return call


def _stream_wrapper(tracer: trace.Tracer) -> Any:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = _start_stream(tracer, instance, kwargs)
        with call.requesting():
            # a generator: the request goes out on the first next(), run in the call's context
            chunks = wrapped(*args, **kwargs)
        return TracedStream(chunks, call, _GenerationAccumulator(), in_call=True)

    return wrapper


def _async_stream_wrapper(tracer: trace.Tracer) -> Any:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        call = _start_stream(tracer, instance, kwargs)
        with call.requesting():
            chunks = await wrapped(*args, **kwargs)  # sends the request, returns the event iterator
        return AsyncTracedStream(chunks, call, _GenerationAccumulator(), in_call=True)

    return wrapper


def _embed_method() -> str:
    # Releases before the private per-request method made the request in embed_content itself.
    import google.genai.models as models

    return "_embed_content" if hasattr(models.Models, "_embed_content") else "embed_content"


def _bind_call_context(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # The public stream method is a generator that sends nothing until iterated.
    return BoundIterator(wrapped(*args, **kwargs))


async def _bind_call_context_async(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return BoundAsyncIterator(await wrapped(*args, **kwargs))


class GoogleGenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``google-genai`` generate_content (plain and streamed) and embed_content, sync and async."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        generate = _call_wrapper(tracer, "generate_content", _record_generation)
        embed = _call_wrapper(tracer, "embeddings", _record_embedding)
        wrap_function_wrapper(_MODULE, "Models._generate_content", generate)
        wrap_function_wrapper(_MODULE, "Models._generate_content_stream", _stream_wrapper(tracer))
        wrap_function_wrapper(_MODULE, f"Models.{_embed_method()}", embed)
        agenerate = _async_call_wrapper(tracer, "generate_content", _record_generation)
        aembed = _async_call_wrapper(tracer, "embeddings", _record_embedding)
        wrap_function_wrapper(_MODULE, "AsyncModels._generate_content", agenerate)
        wrap_function_wrapper(_MODULE, "AsyncModels._generate_content_stream", _async_stream_wrapper(tracer))
        wrap_function_wrapper(_MODULE, f"AsyncModels.{_embed_method()}", aembed)
        wrap_function_wrapper(_MODULE, "Models.generate_content_stream", _bind_call_context)
        wrap_function_wrapper(_MODULE, "AsyncModels.generate_content_stream", _bind_call_context_async)

    def _uninstrument(self, **kwargs: Any) -> None:
        import google.genai.models as models

        for method in ("_generate_content", "_generate_content_stream", _embed_method(), "generate_content_stream"):
            unwrap(models.Models, method)
            unwrap(models.AsyncModels, method)
