"""Anthropic SDK instrumentation: one GenAI span per billable message call.

Covered, sync and async, on ``Anthropic``, ``AnthropicBedrock`` and ``AnthropicVertex``
clients (and the beta namespace): ``messages.create`` (also ``stream=True``),
``messages.parse``, the ``messages.stream()`` helper, and ``.with_raw_response``.

Anthropic reports ``input_tokens`` *excluding* cache reads and writes; the span carries
the semconv total (input + cache read + cache creation) with the cache parts as subsets.

Recent ``anthropic`` releases trace their own API calls (a ``CLIENT`` span per call,
scope ``com.anthropic.sdk.python``), and inject the trace context — baggage included —
into each request. Under a featurecost span that native span would be a second LLM
span for the same call, billed twice, and its headers would send our attribution
baggage to Anthropic; so inside our spans (streams too) the native span is skipped.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import _transport
from featurecost.instrumentation._calls import Endpoint, async_wrapper, provider_by_client_class, sync_wrapper
from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._lifecycle import open_call, passthrough, start_stream
from featurecost.instrumentation._nested import STARTED_SPANS, call_ended, call_started, watch_nested_spans
from featurecost.instrumentation._prefix import leading_instructions, safe_prefix_block
from featurecost.instrumentation._spans import Request, in_llm_call, supersede_foreign_llm_spans
from featurecost.instrumentation._streams import AsyncTracedStream, TracedStream
from featurecost.instrumentation.anthropic._usage import MessageStreamAccumulator, message_facts, usage_from_anthropic
from featurecost.instrumentation.attribution import UnattributedCallError
from featurecost.instrumentation.version import __version__

__all__ = ["AnthropicInstrumentor", "usage_from_anthropic"]

log = logging.getLogger(__name__)
_instruments = ("anthropic >= 0.34",)
_PROVIDER = "anthropic"

provider_of = provider_by_client_class(
    {
        "AnthropicBedrock": "aws.bedrock",
        "AsyncAnthropicBedrock": "aws.bedrock",
        "AnthropicVertex": "gcp.vertex_ai",
        "AsyncAnthropicVertex": "gcp.vertex_ai",
    },
    _PROVIDER,
)


def _system(kwargs: Mapping[str, Any]) -> str:
    """The ``system`` prompt (a string or text blocks): what Anthropic's prompt cache matches first."""
    system = kwargs.get("system")
    return system if isinstance(system, str) else leading_instructions([{"role": "system", "content": system}])


def _request(kwargs: Mapping[str, Any]) -> Request:
    return Request(
        max_tokens=kwargs.get("max_tokens"),
        service_tier=kwargs.get("service_tier"),
        prefix_block=safe_prefix_block(_system, kwargs),
    )


MESSAGES = Endpoint(
    operation="chat",
    provider_of=provider_of,
    request_facts=_request,
    response_facts=message_facts,
    new_accumulator=MessageStreamAccumulator,
)

_MODULES = ("anthropic.resources.messages.messages", "anthropic.resources.beta.messages.messages")


def _api_request_attribute(manager: Any) -> str | None:
    # The stream managers keep the deferred request in a name-mangled attribute
    # (``_MessageStreamManager__api_request``, ``_BetaMessageStreamManager__...``).
    try:
        names = vars(manager)
    except TypeError:
        return None
    return next((name for name in names if name.endswith("__api_request")), None)


def _sdk_manager(manager: Any) -> tuple[Any, str] | None:
    """The SDK's stream manager holding the deferred request, and the attribute holding it.

    Another instrumentation wrapping ``stream()`` inside ours returns its own manager around
    the SDK's: a ``wrapt`` proxy (OpenInference, Logfire: ``vars`` reaches the wrapped one) or
    a plain object keeping it in an attribute (OpenLLMetry's ``_stream_manager``). Not
    recognizing it would leave the call untraced (and unattributed), so look one level in.
    """
    attribute = _api_request_attribute(manager)
    if attribute is not None:
        return manager, attribute
    try:
        inner_values = list(vars(manager).values())
    except TypeError:
        return None
    for inner in inner_values:
        if type(inner).__name__.endswith("MessageStreamManager"):
            attribute = _api_request_attribute(inner)
            if attribute is not None:
                return inner, attribute
    return None


def _unchecked(kwargs: dict[str, Any], provider: str) -> None:
    # The helper's request is built when ``stream()`` is called and sent at ``__enter__``: a
    # budget guard's degraded request could not replace it, so the helper is not checked here.
    return None


def _stream_helper_wrapper(tracer: trace.Tracer, is_async: bool) -> Callable[..., Any]:
    """``messages.stream()`` posts directly, not through ``create``: trace the manager's deferred request."""
    method = MESSAGES.method(check=_unchecked)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():
            return wrapped(*args, **kwargs)
        # The request is sent later, at ``__enter__``: keep the caller's context (attribution,
        # and the span of an instrumentation wrapping outside ours) for then, and collect the
        # spans another instrumentation wrapping inside ours starts now.
        call_context = otel_context.get_current()
        started: list[Any] = []
        call_started(id(started))
        token = otel_context.attach(otel_context.set_value(STARTED_SPANS, started))
        try:
            manager = wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)
            call_ended(id(started))
        found = _guarded(_sdk_manager, manager)
        if found is None:
            return manager
        holder, attribute = found
        original = getattr(holder, attribute)
        request_kwargs = {**kwargs, "stream": True}

        def start() -> Any:
            token = otel_context.attach(call_context)
            try:
                call = start_stream(tracer, open_call(method, instance, request_kwargs))
            finally:
                otel_context.detach(token)
            supersede_foreign_llm_spans(started)
            return call

        if is_async:

            async def traced_async_request() -> Any:
                call = None if in_llm_call() else _guarded(start)
                if call is None:
                    return await original
                with call.requesting():
                    raw = await original
                return AsyncTracedStream(raw, call, MessageStreamAccumulator())

            setattr(holder, attribute, traced_async_request())
        else:

            def traced_request() -> Any:
                call = None if in_llm_call() else _guarded(start)
                if call is None:
                    return original()
                with call.requesting():
                    raw = original()
                return TracedStream(raw, call, MessageStreamAccumulator())

            setattr(holder, attribute, traced_request)
        return manager

    return wrapper


def _guarded(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or None when our code fails: the user's stream goes on untraced."""
    try:
        return function(*args)
    except UnattributedCallError:
        raise
    except Exception:
        log.debug("featurecost: could not trace a stream helper", exc_info=True)
        return None


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


def _each_target() -> list[tuple[Any, str, str, bool]]:
    """(module, class name, method, is async) for every messages method this SDK version has."""
    found = []
    for module_name in _MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for cls_name, is_async in (("Messages", False), ("AsyncMessages", True)):
            cls = getattr(module, cls_name, None)
            for method in ("create", "parse", "stream"):
                if cls is not None and callable(getattr(cls, method, None)):
                    found.append((module, cls_name, method, is_async))
    return found


class AnthropicInstrumentor(SafeInstrumentor):
    """Instruments ``anthropic`` messages (sync and async, streaming included)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        _transport.install("anthropic")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        for module, cls_name, method, is_async in _each_target():
            if method == "stream":
                wrapper = _stream_helper_wrapper(tracer, is_async)
            else:
                wrapper = (async_wrapper if is_async else sync_wrapper)(tracer, MESSAGES)
            wrap_function_wrapper(module, f"{cls_name}.{method}", wrapper)
        if _has_native_tracing():
            wrap_function_wrapper("anthropic._base_client", "start_api_call_span", _skip_native_span_in_llm_call)

    def _uninstrument(self, **kwargs: Any) -> None:
        _transport.uninstall("anthropic")
        for module, cls_name, method, _ in _each_target():
            unwrap(getattr(module, cls_name), method)
        if _has_native_tracing():
            import anthropic._base_client as base_client

            unwrap(base_client, "start_api_call_span")
