"""What every featurecost LLM span has in common, whichever SDK made the call.

Two ways to open the one billable span of a call:

* ``llm_span`` — a context manager for calls that are over when the SDK method returns
  (``begin_llm_span`` / ``end_llm_span`` are the same without the context-manager cost,
  for the hot path of the wrappers).
* ``start_llm_call`` — an ``LLMCall`` for streams: the span outlives the SDK method and is
  ended by whoever sees the stream end (exhausted, failed, closed, abandoned).

Both copy the attribution of the caller's context onto the span, hide featurecost
baggage from whatever the SDK sends to the provider, and mark the context so that a
nested instrumentation (ours or another library's) does not bill the same call twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.util.types import AttributeValue

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation._nested import (
    IN_LLM_CALL,
    call_ended,
    call_started,
    server_spans_seen,
    watch_global_provider,
)
from featurecost.instrumentation._prefix import prefix_attributes
from featurecost.instrumentation.attribution import check_attribution, current_attribution, is_attribution_key

# OpenLLMetry's instrumentors read this plain key; setting it stops one of them that
# wraps inside us from emitting a second LLM span for the same call.
_SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY = "suppress_language_model_instrumentation"


def in_llm_call() -> bool:
    """True inside a featurecost LLM span: a nested LLM span here would bill the call twice."""
    return bool(otel_context.get_value(IN_LLM_CALL))


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Usage in GenAI-semconv terms: ``input_tokens`` includes cache reads and writes,
    ``reasoning_tokens`` is a subset of ``output_tokens``, the audio counts are subsets of
    input and output, and the 5-minute / 1-hour cache writes split ``cache_creation_tokens``
    when the provider reports the split."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_5m_tokens: int | None = None
    cache_creation_1h_tokens: int | None = None
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0


@dataclass(slots=True)
class Request:
    """What a request says, as every request extractor reports it (read before the call);
    only ``request_attributes`` turns it into span attribute names. ``prefix_block`` is the
    leading instruction block: fingerprinted (``_prefix.py``), never recorded. ``client`` is
    the SDK client whose base URL places the provider when ``server_address`` is not given."""

    model: str | None = None
    max_tokens: object = None
    service_tier: object = None
    stream: bool = False
    server_address: str | None = None
    server_port: int | None = None
    prefix_block: str | None = None
    client: object = None


def request_attributes(request: Request) -> dict[str, AttributeValue]:
    """The span attributes of ``request`` (besides the model and the client's address)."""
    found = clean_attributes(
        {
            attrs.GEN_AI_REQUEST_MAX_TOKENS: request.max_tokens,
            attrs.REQUEST_SERVICE_TIER: request.service_tier,
            attrs.SERVER_ADDRESS: request.server_address,
            attrs.SERVER_PORT: request.server_port,
        }
    )
    if request.stream:
        found[attrs.REQUEST_STREAM] = True
    if request.prefix_block:
        found.update(prefix_attributes(request.prefix_block))
    return found


@dataclass(slots=True)
class ResponseFacts:
    """What a response says besides its usage, as every extractor reports it; only
    ``response_attributes`` turns it into span attribute names. SDK enums and objects are
    accepted where the SDK gives them (recorded as strings); None means "not reported"."""

    model: object = None
    response_id: object = None
    finish_reasons: list[str] | None = None
    service_tier: object = None
    error_type: str | None = None
    # what a gateway reports (OpenRouter's billed cost as a decimal string, the upstream provider)
    gateway_cost_usd: str | None = None
    upstream_provider: str | None = None
    # LiteLLM's own estimate, kept apart by the collector
    client_cost_usd: str | None = None


def response_attributes(facts: ResponseFacts | None) -> dict[str, AttributeValue]:
    """The span attributes of ``facts``: absent values dropped."""
    if facts is None:
        return {}
    return clean_attributes(
        {
            attrs.GEN_AI_RESPONSE_MODEL: facts.model,
            attrs.GEN_AI_RESPONSE_ID: facts.response_id,
            attrs.GEN_AI_RESPONSE_FINISH_REASONS: facts.finish_reasons or None,
            attrs.RESPONSE_SERVICE_TIER: facts.service_tier,
            attrs.ERROR_TYPE: facts.error_type,
            attrs.GATEWAY_COST_USD: facts.gateway_cost_usd,
            attrs.GATEWAY_UPSTREAM_PROVIDER: facts.upstream_provider,
            attrs.CLIENT_COST_USD: facts.client_cost_usd,
        }
    )


_hosts: dict[int, tuple[object, str | None, int | None]] = {}


def _server_endpoint(client: object) -> tuple[str | None, int | None]:
    """Host and explicit port of the client's base URL: the collector places the provider from them."""
    # Stainless clients keep it in ``_base_url``; their ``base_url`` property costs an import per read.
    base_url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    if base_url is None:
        return None, None
    # URL objects are immutable and a client keeps its own: remember the host of the
    # last few (the entry holds the URL, so its id cannot be reused while cached).
    cached = _hosts.get(id(base_url))
    if cached is not None and cached[0] is base_url:
        return cached[1], cached[2]
    host = getattr(base_url, "host", None)
    address = str(host) if host else None
    port = getattr(base_url, "port", None)
    port = port if isinstance(port, int) else None
    if len(_hosts) >= 256:
        _hosts.clear()
    _hosts[id(base_url)] = (base_url, address, port)
    return address, port


def _provider_context(ctx: otel_context.Context, span: Span) -> otel_context.Context:
    """``ctx`` with ``span`` current, as the SDK should see it while it talks to the provider.

    Attribution is ours: a propagator injecting W3C baggage into the provider request
    (HTTP client instrumentation, an SDK's native tracing) must not send tenant or user
    ids to a third party. Other baggage entries are the application's and stay.
    Built as one new context rather than four chained ``set_value`` copies: this runs
    on every call.
    """
    values = dict(ctx)
    values[_SPAN_KEY] = span
    entries = values.get(_BAGGAGE_KEY)
    if entries and isinstance(entries, dict):
        kept = {k: v for k, v in entries.items() if not is_attribution_key(k)}
        if len(kept) != len(entries):
            values[_BAGGAGE_KEY] = kept
    values[IN_LLM_CALL] = True
    values[_SUPPRESS_LANGUAGE_MODEL_INSTRUMENTATION_KEY] = True
    return Context(values)


# Attributes by which other instrumentations mark a span as an LLM call.
_FOREIGN_LLM_MARKERS = (
    attrs.GEN_AI_OPERATION_NAME,
    attrs.GEN_AI_PROVIDER_NAME,
    attrs.GEN_AI_SYSTEM,
    "llm.request.type",
)


def _attributes_of(span: Any) -> Mapping[str, Any] | None:
    """A span's attributes to look up keys in. The SDK's public ``attributes`` is a proxy of a
    locked mapping whose misses raise ``KeyError`` inside (~1 µs per absent key); its plain
    dict answers the same lookups directly. Other spans: their public attributes."""
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if isinstance(inner, dict):
        return inner
    found = getattr(span, "attributes", None)
    # no current span (INVALID_SPAN has no attributes) is the common case: no ABC check for None
    return found if found is not None and isinstance(found, Mapping) else None


def _marks_llm_call(found: Mapping[str, Any]) -> bool:
    return any(marker in found for marker in _FOREIGN_LLM_MARKERS) or found.get("openinference.span.kind") in (
        "LLM",
        "EMBEDDING",
    )


def is_foreign_llm_span(span: Any) -> bool:
    """Whether ``span`` (still recording) is another instrumentation's LLM span."""
    found = _attributes_of(span)
    if not found or not span.is_recording():
        return False
    scope = getattr(getattr(span, "instrumentation_scope", None), "name", "") or ""
    if scope.startswith("featurecost."):
        return False
    return _marks_llm_call(found)


def supersede_foreign_llm_spans(spans: list[Any]) -> None:
    """Mark other instrumentations' LLM spans of a call ours bills (see ``_nested.STARTED_SPANS``)."""
    for span in spans:
        if is_foreign_llm_span(span):
            span.set_attribute(attrs.SUPERSEDED, True)


def _supersede_enclosing_llm_span(ctx: otel_context.Context) -> None:
    """Mark an enclosing LLM span of another instrumentation as billed by ours.

    When a framework or a second LLM instrumentor wraps the SDK outside us, its span
    and ours describe the same call; the collector bills ours (which carries the
    attribution) and skips spans marked here. Only SDK spans expose attributes; others
    cannot be inspected and are left alone.
    """
    current = trace.get_current_span(ctx)
    found = _attributes_of(current)
    if found and current.is_recording() and _marks_llm_call(found):
        current.set_attribute(attrs.SUPERSEDED, True)


def _start_attributes(
    operation: str,
    provider: str,
    request_model: str | None,
    client: object,
    attribution: Mapping[str, str],
    flags: Mapping[str, AttributeValue],
    extra: Mapping[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        attrs.GEN_AI_OPERATION_NAME: operation,
        attrs.GEN_AI_PROVIDER_NAME: provider,
    }
    if request_model:
        attributes[attrs.GEN_AI_REQUEST_MODEL] = request_model
    address, port = _server_endpoint(client)
    if address:
        attributes[attrs.SERVER_ADDRESS] = address
        if port:
            attributes[attrs.SERVER_PORT] = port
    attributes.update(attribution)
    if flags:
        attributes.update(flags)
    if extra:
        attributes.update(extra)
    return attributes


def _record_error(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.set_attribute(attrs.ERROR_TYPE, type(exc).__qualname__)
        span.set_attribute(attrs.USAGE_SOURCE, attrs.USAGE_MISSING)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:256]))


def _has_parent(ctx: otel_context.Context) -> bool:
    return trace.get_current_span(ctx).get_span_context().is_valid


def _start_span(
    tracer: Tracer,
    ctx: otel_context.Context,
    operation: str,
    provider: str,
    request_model: str | None,
    client: object,
    attributes: Mapping[str, AttributeValue] | None,
) -> Span:
    """The one billable span, carrying the attribution of ``ctx`` (strict mode checked)."""
    watch_global_provider()
    attribution = current_attribution(ctx)
    flags = check_attribution(attribution)
    if attrs.LATENCY not in attribution and server_spans_seen() and not _has_parent(ctx):
        # requests are traced here and none encloses this call: no user is waiting for it
        flags = {**flags, attrs.LATENCY: attrs.LATENCY_BACKGROUND}
    _supersede_enclosing_llm_span(ctx)
    name = f"{operation} {request_model}" if request_model else operation
    return tracer.start_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=_start_attributes(operation, provider, request_model, client, attribution, flags, attributes),
        context=ctx,
    )


def begin_llm_span(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    client: object = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> tuple[Span, object]:
    """Start the one billable span for an LLM call and make it current; pair with ``end_llm_span``.

    The span carries the current attribution; ``attributes`` (request facts) are set at
    start so samplers see them. The returned token restores the caller's context.
    """
    ctx = otel_context.get_current()
    span = _start_span(tracer, ctx, operation, provider, request_model, client, attributes)
    call_started(id(span))
    return span, otel_context.attach(_provider_context(ctx, span))


def end_llm_span(span: Span, token: object, error: BaseException | None = None) -> None:
    try:
        if error is not None:
            _record_error(span, error)
    finally:
        otel_context.detach(token)  # type: ignore[arg-type]
        call_ended(id(span))
        span.end()


@contextmanager
def llm_span(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    client: object = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """Start the one billable span for an LLM call, carrying the current attribution.

    ``attributes`` (request facts) are set when the span starts, so samplers see them.
    Exceptions propagate unchanged; the span records them with ``error.type``.
    """
    span, token = begin_llm_span(
        tracer,
        operation=operation,
        provider=provider,
        request_model=request_model,
        client=client,
        attributes=attributes,
    )
    error: BaseException | None = None
    try:
        yield span
    except BaseException as exc:
        error = exc
        raise
    finally:
        end_llm_span(span, token, error)


class LLMCall:
    """The span of a call whose response is a stream, from the request to the stream's end.

    ``call_context`` is the caller's context at call time: a stream is often consumed
    in another task, thread or framework callback whose context says nothing about
    who asked for it. ``finish`` is idempotent and thread-safe, because a stream can
    end by exhaustion in one thread and by garbage collection in another.
    """

    __slots__ = ("_finished", "_lock", "_provider_context", "call_context", "settle_with", "span")

    def __init__(self, span: Span, call_context: otel_context.Context) -> None:
        self.span = span
        self.call_context = call_context
        # (the budget guard's ticket, provider) when the call was checked: settled at the end
        self.settle_with: tuple[Any, str] | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._provider_context: Context | None = None
        call_started(id(self))

    def provider_context(self) -> Context:
        """The context the SDK talks to the provider in (see ``_provider_context``), built once:
        streams that do I/O on every step (lazy generators, event streams) enter it per step."""
        found = self._provider_context
        if found is None:
            found = self._provider_context = _provider_context(self.call_context, self.span)
        return found

    @contextmanager
    def requesting(self) -> Iterator[None]:
        """Context for sending the request: our span current, attribution hidden from the provider."""
        token = otel_context.attach(self.provider_context())
        try:
            yield
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            otel_context.detach(token)

    @property
    def finished(self) -> bool:
        return self._finished

    def _claim(self) -> bool:
        with self._lock:
            if self._finished:
                return False
            self._finished = True
        call_ended(id(self))
        return True

    def fail(self, exc: BaseException) -> None:
        if self._claim():
            _record_error(self.span, exc)
            self.span.end()

    def finish(
        self,
        usage: TokenUsage | None,
        *,
        complete: bool,
        response: ResponseFacts | None = None,
        error: BaseException | None = None,
    ) -> bool:
        """End the span with the usage seen so far; ``complete`` says whether the stream ran to its end.
        True when this call ended it (False: it had ended already).

        A stream that failed midway keeps what it reported before the failure (and is
        partial): input tokens counted in a first event were billed all the same.
        """
        if not self._claim():
            return False
        span = self.span
        if span.is_recording():
            if error is not None:
                _record_error(span, error)
                complete = False
            # Attribution is copied again at the end: keys that were absent when the call
            # started but are set in the consumer's context now are filled in, never overridden.
            started_with = current_attribution(self.call_context)
            late = {k: v for k, v in current_attribution().items() if k not in started_with}
            if late:
                span.set_attributes(late)
            span.set_attributes(end_attributes(response, usage, partial=not complete))
        span.end()
        return True


def start_llm_call(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    client: object = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> LLMCall:
    """Start the span of a streamed call; the caller sends the request inside ``call.requesting()``."""
    call_context = otel_context.get_current()
    span = _start_span(tracer, call_context, operation, provider, request_model, client, attributes)
    return LLMCall(span, call_context)


def usage_attributes(usage: TokenUsage | None, *, partial: bool = False) -> dict[str, AttributeValue]:
    """The span attributes for ``usage``: exactly as reported; None is recorded as missing, never estimated.

    ``partial`` marks a stream that ended before the provider's final usage report:
    the counts are what had been reported up to then.
    """
    found: dict[str, AttributeValue] = {attrs.USAGE_PARTIAL: True} if partial else {}
    if usage is None:
        found[attrs.USAGE_SOURCE] = attrs.USAGE_MISSING
        return found
    found[attrs.USAGE_SOURCE] = attrs.USAGE_REPORTED
    found[attrs.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    found[attrs.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    found[attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    found[attrs.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_tokens
    if usage.reasoning_tokens:
        found[attrs.USAGE_REASONING_TOKENS] = usage.reasoning_tokens
    if usage.cache_creation_5m_tokens is not None:
        found[attrs.USAGE_CACHE_CREATION_5M_TOKENS] = usage.cache_creation_5m_tokens
    if usage.cache_creation_1h_tokens is not None:
        found[attrs.USAGE_CACHE_CREATION_1H_TOKENS] = usage.cache_creation_1h_tokens
    if usage.input_audio_tokens:
        found[attrs.USAGE_INPUT_AUDIO_TOKENS] = usage.input_audio_tokens
    if usage.output_audio_tokens:
        found[attrs.USAGE_OUTPUT_AUDIO_TOKENS] = usage.output_audio_tokens
    return found


def end_attributes(
    response: ResponseFacts | None, usage: TokenUsage | None, *, partial: bool = False
) -> dict[str, AttributeValue]:
    """What a call's span gets when it ends: ``response_attributes`` and ``usage_attributes`` in one
    dict (the usage's win on a shared key), set with one ``set_attributes``."""
    found = response_attributes(response)
    found.update(usage_attributes(usage, partial=partial))
    return found


def record_usage(span: Span, usage: TokenUsage | None, *, partial: bool = False) -> None:
    """Put ``usage`` on ``span`` (see ``usage_attributes``)."""
    if span.is_recording():
        span.set_attributes(usage_attributes(usage, partial=partial))


_PLAIN_TYPES = frozenset((str, bool, int, float))


def clean_attributes(values: Mapping[str, object]) -> dict[str, AttributeValue]:
    """``values`` as span attributes: absent (None) values dropped, SDK enums and objects as strings."""
    found: dict[str, AttributeValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        # exact types first: one set lookup instead of four isinstance checks (runs per call)
        if type(value) in _PLAIN_TYPES or isinstance(value, str | bool | int | float):
            found[key] = value  # type: ignore[assignment]
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            found[key] = list(value)
        else:
            found[key] = str(value)
    return found


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
    if type(value) is int:  # the SDKs' plain counts: one check (runs several times per call)
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
