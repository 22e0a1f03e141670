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
from featurecost.instrumentation._prefix import safe_prefix_block, text_of
from featurecost.instrumentation._spans import ResponseFacts, TokenUsage, int_or_zero
from featurecost.instrumentation._streams import (
    AsyncTracedStream,
    BoundAsyncIterator,
    BoundIterator,
    ResponseAccumulator,
)
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


def _request_model(kwargs: Mapping[str, Any]) -> str | None:
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

    def response_facts(self) -> ResponseFacts:
        return ResponseFacts(model=self.model, response_id=self.response_id, finish_reasons=self.finish_reasons or None)


def _generation_facts(response: Any) -> Facts:
    return accumulated(_GenerationAccumulator)(response)


def _embedding_facts(response: Any) -> Facts:
    return None, usage_from_embedding(response)


def _request(instance: Any, kwargs: Mapping[str, Any]) -> Request:
    config = kwargs.get("config")
    max_tokens = (
        config.get("max_output_tokens") if isinstance(config, dict) else getattr(config, "max_output_tokens", None)
    )
    return Request(
        model=_request_model(kwargs),
        max_tokens=max_tokens,
        server_address=_server_address(instance),
        prefix_block=safe_prefix_block(_system_instruction, kwargs),
    )


def _system_instruction(kwargs: Mapping[str, Any]) -> str:
    """``config.system_instruction``: a string, a ``Content`` (its text parts) or a list of parts."""
    config = kwargs.get("config")
    found = (
        config.get("system_instruction") if isinstance(config, Mapping) else getattr(config, "system_instruction", None)
    )
    if found is None or isinstance(found, str):
        return found or ""
    parts = found.get("parts") if isinstance(found, Mapping) else getattr(found, "parts", None)
    return text_of(parts if parts is not None else found)


def _embed_method() -> str:
    # Releases before the private per-request method made the request in embed_content itself.
    import google.genai.models as models

    return "_embed_content" if hasattr(models.Models, "_embed_content") else "embed_content"


def _targets() -> tuple[Target, ...]:
    """What we wrap, for ``instrument`` and ``uninstrument`` alike (built when called)."""
    generate, embed = Method("generate_content", _provider, _request), Method("embeddings", _provider, _request)
    embed_name = _embed_method()
    return (
        Target(_MODULE, "Models", "_generate_content", generate, "call", _generation_facts),
        Target(_MODULE, "Models", embed_name, embed, "call", _embedding_facts),
        # a generator: the request goes out on its first step, which runs in the call's context
        Target(_MODULE, "Models", "_generate_content_stream", generate, "stream", proxied(_GenerationAccumulator)),
        Target(_MODULE, "AsyncModels", "_generate_content", generate, "async call", _generation_facts),
        Target(_MODULE, "AsyncModels", embed_name, embed, "async call", _embedding_facts),
        # sends the request, returns the event iterator
        Target(
            _MODULE,
            "AsyncModels",
            "_generate_content_stream",
            generate,
            "async stream",
            proxied(_GenerationAccumulator, AsyncTracedStream),
        ),
    )


def _bind_call_context(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # The public stream method is a generator that sends nothing until iterated.
    return BoundIterator(wrapped(*args, **kwargs))


async def _bind_call_context_async(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return BoundAsyncIterator(await wrapped(*args, **kwargs))


class GoogleGenAIInstrumentor(SafeInstrumentor):
    """Instruments ``google-genai`` generate_content (plain and streamed) and embed_content, sync and async."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        _transport.install("google_genai")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        wrap_targets(tracer, _targets())
        # the public stream methods send nothing until iterated: iterated in the caller's context
        wrap_function_wrapper(_MODULE, "Models.generate_content_stream", _bind_call_context)
        wrap_function_wrapper(_MODULE, "AsyncModels.generate_content_stream", _bind_call_context_async)

    def _uninstrument(self, **kwargs: Any) -> None:
        _transport.uninstall("google_genai")
        import google.genai.models as models

        unwrap_targets(_targets())
        unwrap(models.Models, "generate_content_stream")
        unwrap(models.AsyncModels, "generate_content_stream")
