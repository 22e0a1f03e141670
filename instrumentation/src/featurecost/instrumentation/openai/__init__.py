"""OpenAI SDK instrumentation: one GenAI span per chat completion, with usage and attribution.

Streaming calls (``stream=True``) pass through untouched for now: their usage needs
``stream_options.include_usage`` handling that lands with the streaming work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._spans import TokenUsage, int_or_zero, llm_span, record_usage, set_if
from featurecost.instrumentation.version import __version__

_instruments = ("openai >= 1.40",)
_MODULE = "openai.resources.chat.completions.completions"
_PROVIDER = "openai"


def usage_from_openai(usage: Any) -> TokenUsage | None:
    """OpenAI counts cached tokens inside ``prompt_tokens`` and reasoning inside
    ``completion_tokens``: already the semconv meaning."""
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return TokenUsage(
        input_tokens=int_or_zero(getattr(usage, "prompt_tokens", 0)),
        output_tokens=int_or_zero(getattr(usage, "completion_tokens", 0)),
        cache_read_tokens=int_or_zero(getattr(prompt_details, "cached_tokens", 0)),
        reasoning_tokens=int_or_zero(getattr(completion_details, "reasoning_tokens", 0)),
    )


def _record_chat_response(span: trace.Span, response: Any) -> None:
    set_if(span, attrs.GEN_AI_RESPONSE_MODEL, getattr(response, "model", None))
    set_if(span, attrs.GEN_AI_RESPONSE_ID, getattr(response, "id", None))
    set_if(span, attrs.RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None))
    choices = getattr(response, "choices", None) or []
    reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        span.set_attribute(attrs.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
    record_usage(span, usage_from_openai(getattr(response, "usage", None)))


def _start_attributes(span: trace.Span, kwargs: dict[str, Any]) -> None:
    set_if(span, attrs.GEN_AI_REQUEST_MAX_TOKENS, kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"))
    set_if(span, attrs.REQUEST_SERVICE_TIER, kwargs.get("service_tier"))


def _chat_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
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
            _start_attributes(span, kwargs)
            response = wrapped(*args, **kwargs)
            _record_chat_response(span, response)
            return response

    return wrapper


def _async_chat_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
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
            _start_attributes(span, kwargs)
            response = await wrapped(*args, **kwargs)
            _record_chat_response(span, response)
            return response

    return wrapper


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``openai`` chat completions (sync and async)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        wrap_function_wrapper(_MODULE, "Completions.create", _chat_wrapper(tracer))
        wrap_function_wrapper(_MODULE, "AsyncCompletions.create", _async_chat_wrapper(tracer))

    def _uninstrument(self, **kwargs: Any) -> None:
        import openai.resources.chat.completions.completions as completions

        unwrap(completions.Completions, "create")
        unwrap(completions.AsyncCompletions, "create")
