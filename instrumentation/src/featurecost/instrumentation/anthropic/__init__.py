"""Anthropic SDK instrumentation: one GenAI span per ``messages.create``.

Anthropic reports ``input_tokens`` *excluding* cache reads and writes; the span carries
the semconv total (input + cache read + cache creation) with the cache parts as subsets.
Streaming (``stream=True``) passes through untouched until the streaming work lands.

Recent ``anthropic`` releases trace their own API calls (a ``CLIENT`` span per call,
scope ``com.anthropic.sdk.python``). Under a featurecost span that native span would
be a second LLM span for the same call — billed twice — and it carries no
attribution, so while instrumented we skip it for the calls we wrap.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._spans import (
    TokenUsage,
    in_llm_call,
    int_or_zero,
    llm_span,
    record_usage,
    set_if,
)
from featurecost.instrumentation.version import __version__

_instruments = ("anthropic >= 0.34",)
_MODULE = "anthropic.resources.messages.messages"
_PROVIDER = "anthropic"


def usage_from_anthropic(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    uncached = int_or_zero(getattr(usage, "input_tokens", 0))
    cache_read = int_or_zero(getattr(usage, "cache_read_input_tokens", 0))
    cache_creation = int_or_zero(getattr(usage, "cache_creation_input_tokens", 0))
    return TokenUsage(
        input_tokens=uncached + cache_read + cache_creation,
        output_tokens=int_or_zero(getattr(usage, "output_tokens", 0)),
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_creation,
    )


def _record_message(span: trace.Span, message: Any) -> None:
    set_if(span, attrs.GEN_AI_RESPONSE_MODEL, getattr(message, "model", None))
    set_if(span, attrs.GEN_AI_RESPONSE_ID, getattr(message, "id", None))
    stop_reason = getattr(message, "stop_reason", None)
    if stop_reason:
        span.set_attribute(attrs.GEN_AI_RESPONSE_FINISH_REASONS, [str(stop_reason)])
    usage = getattr(message, "usage", None)
    set_if(span, attrs.RESPONSE_SERVICE_TIER, getattr(usage, "service_tier", None))
    record_usage(span, usage_from_anthropic(usage))


def _messages_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("stream") or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        with llm_span(
            tracer,
            operation="chat",
            provider=_PROVIDER,
            request_model=kwargs.get("model"),
            client=getattr(instance, "_client", None),
        ) as span:
            set_if(span, attrs.GEN_AI_REQUEST_MAX_TOKENS, kwargs.get("max_tokens"))
            message = wrapped(*args, **kwargs)
            _record_message(span, message)
            return message

    return wrapper


def _async_messages_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs.get("stream") or not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        with llm_span(
            tracer,
            operation="chat",
            provider=_PROVIDER,
            request_model=kwargs.get("model"),
            client=getattr(instance, "_client", None),
        ) as span:
            set_if(span, attrs.GEN_AI_REQUEST_MAX_TOKENS, kwargs.get("max_tokens"))
            message = await wrapped(*args, **kwargs)
            _record_message(span, message)
            return message

    return wrapper


def _skip_native_span_in_llm_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # The SDK treats None as "no span for this call" and sends the request untraced.
    if in_llm_call():
        return None
    return wrapped(*args, **kwargs)


def _has_native_tracing() -> bool:
    import anthropic._base_client as base_client

    return hasattr(base_client, "start_api_call_span")


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``anthropic`` messages (sync and async)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        wrap_function_wrapper(_MODULE, "Messages.create", _messages_wrapper(tracer))
        wrap_function_wrapper(_MODULE, "AsyncMessages.create", _async_messages_wrapper(tracer))
        if _has_native_tracing():
            wrap_function_wrapper("anthropic._base_client", "start_api_call_span", _skip_native_span_in_llm_call)

    def _uninstrument(self, **kwargs: Any) -> None:
        import anthropic.resources.messages.messages as messages

        unwrap(messages.Messages, "create")
        unwrap(messages.AsyncMessages, "create")
        if _has_native_tracing():
            import anthropic._base_client as base_client

            unwrap(base_client, "start_api_call_span")
