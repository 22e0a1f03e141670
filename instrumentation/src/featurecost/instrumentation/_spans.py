"""What every featurecost LLM span has in common, whichever SDK made the call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation.attribution import current_attribution

_IN_LLM_CALL = otel_context.create_key("featurecost-in-llm-call")


def in_llm_call() -> bool:
    """True inside a featurecost LLM span: a nested LLM span here would bill the call twice."""
    return bool(otel_context.get_value(_IN_LLM_CALL))


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Usage in GenAI-semconv terms: ``input_tokens`` includes cache reads and writes,
    ``reasoning_tokens`` is a subset of ``output_tokens``."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


def _server_address(client: object) -> str | None:
    base_url = getattr(client, "base_url", None)
    host = getattr(base_url, "host", None)
    return str(host) if host else None


@contextmanager
def llm_span(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    client: object = None,
) -> Iterator[Span]:
    """Start the one billable span for an LLM call, carrying the current attribution.

    Exceptions propagate unchanged; the span records them with ``error.type``.
    """
    attributes: dict[str, AttributeValue] = {
        attrs.GEN_AI_OPERATION_NAME: operation,
        attrs.GEN_AI_PROVIDER_NAME: provider,
    }
    if request_model:
        attributes[attrs.GEN_AI_REQUEST_MODEL] = request_model
    address = _server_address(client)
    if address:
        attributes[attrs.SERVER_ADDRESS] = address
    attributes.update(current_attribution())
    name = f"{operation} {request_model}" if request_model else operation
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        token = otel_context.attach(otel_context.set_value(_IN_LLM_CALL, True))
        try:
            yield span
        except BaseException as exc:
            if span.is_recording():
                span.set_attribute(attrs.ERROR_TYPE, type(exc).__qualname__)
                span.set_attribute(attrs.USAGE_SOURCE, attrs.USAGE_MISSING)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:256]))
            raise
        finally:
            otel_context.detach(token)


def record_usage(span: Span, usage: TokenUsage | None) -> None:
    if not span.is_recording():
        return
    if usage is None:
        span.set_attribute(attrs.USAGE_SOURCE, attrs.USAGE_MISSING)
        return
    span.set_attribute(attrs.USAGE_SOURCE, attrs.USAGE_REPORTED)
    span.set_attribute(attrs.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
    span.set_attribute(attrs.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
    span.set_attribute(attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
    span.set_attribute(attrs.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation_tokens)
    if usage.reasoning_tokens:
        span.set_attribute(attrs.USAGE_REASONING_TOKENS, usage.reasoning_tokens)


def set_if(span: Span, key: str, value: object) -> None:
    """Set ``key`` when the SDK gave a value; SDK objects use None for 'absent'."""
    if value is None or not span.is_recording():
        return
    if isinstance(value, str | bool | int | float):
        span.set_attribute(key, value)
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        span.set_attribute(key, list(value))
    else:
        span.set_attribute(key, str(value))


def int_or_zero(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
