"""LiteLLM SDK (``litellm``) instrumentation: one billable span per provider call.

LiteLLM calls Anthropic, Gemini, Bedrock and many others through its own HTTP code, not
their SDKs, so the SDK instrumentors never see those calls. This wraps LiteLLM's entry
points — ``completion``/``acompletion`` (streaming too), ``text_completion``/
``atext_completion`` and ``embedding``/``aembedding`` (a ``Router`` goes through them) — and
records the upstream provider LiteLLM resolved (``litellm.get_llm_provider``: its own names,
``anthropic``, ``gemini``, ``together_ai``…, which the collector's alias table maps), the
endpoint when the call names one (``api_base``), the model the provider answered with, and
usage from LiteLLM's OpenAI-shaped ``Usage``: ``prompt_tokens`` include cache reads and writes
(LiteLLM adds Anthropic's), ``cached_tokens`` are reads, ``cache_creation_input_tokens`` writes
(the 1-hour part in ``cache_creation_token_details``), reasoning inside ``completion_tokens``.
LiteLLM's own cost estimate (``_hidden_params["response_cost"]``) is recorded as the client's
cost claim, which the collector keeps apart and reconciles.

No double billing: for OpenAI-compatible providers LiteLLM uses the ``openai`` SDK, and
``acompletion`` runs ``completion`` — inside our span, where every featurecost wrapper passes
through. No prompt or completion text is recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Tracer
from wrapt import register_post_import_hook, wrap_function_wrapper

from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._lifecycle import (
    Facts,
    Method,
    Request,
    accumulated,
    async_call_wrapper,
    async_stream_wrapper,
    call_wrapper,
    passthrough,
    proxied,
    stream_wrapper,
)
from featurecost.instrumentation._nested import watch_nested_spans
from featurecost.instrumentation._spans import ResponseFacts, TokenUsage, int_or_none, int_or_zero
from featurecost.instrumentation._streams import AsyncTracedStream, ResponseAccumulator, StreamAccumulator
from featurecost.instrumentation.version import __version__

log = logging.getLogger(__name__)

_instruments = ("litellm >= 1.60",)
# Entry point → (operation, async). ``litellm.main`` holds the functions LiteLLM calls itself
# (``acompletion`` runs ``completion``); the package re-exports them.
_FUNCTIONS: dict[str, tuple[str, bool]] = {
    "completion": ("chat", False),
    "acompletion": ("chat", True),
    "text_completion": ("text_completion", False),
    "atext_completion": ("text_completion", True),
    "embedding": ("embeddings", False),
    "aembedding": ("embeddings", True),
}
_MODULES = ("litellm", "litellm.main")
_UNKNOWN_PROVIDER = "litellm"  # a model LiteLLM cannot place: the collector prices nothing for it


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def usage_from_litellm(usage: Any) -> TokenUsage | None:
    """LiteLLM's ``Usage`` (OpenAI-shaped, already in GenAI semconv meaning)."""
    if usage is None:
        return None
    prompt_details = _field(usage, "prompt_tokens_details")
    completion_details = _field(usage, "completion_tokens_details")
    cache_read = int_or_zero(_field(prompt_details, "cached_tokens")) or int_or_zero(
        _field(usage, "cache_read_input_tokens")
    )
    cache_write = int_or_zero(_field(usage, "cache_creation_input_tokens")) or int_or_zero(
        _field(prompt_details, "cache_creation_tokens")
    )
    ttl = _field(prompt_details, "cache_creation_token_details")
    return TokenUsage(
        input_tokens=int_or_zero(_field(usage, "prompt_tokens")),
        output_tokens=int_or_zero(_field(usage, "completion_tokens")),
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_write,
        reasoning_tokens=int_or_zero(_field(completion_details, "reasoning_tokens")),
        cache_creation_5m_tokens=int_or_none(_field(ttl, "ephemeral_5m_input_tokens")) if ttl is not None else None,
        cache_creation_1h_tokens=int_or_none(_field(ttl, "ephemeral_1h_input_tokens")) if ttl is not None else None,
        input_audio_tokens=int_or_zero(_field(prompt_details, "audio_tokens")),
        output_audio_tokens=int_or_zero(_field(completion_details, "audio_tokens")),
    )


def _response_facts(response: Any) -> ResponseFacts:
    """What one response (or one stream chunk) says: model, id, finish reasons, LiteLLM's cost."""
    facts = ResponseFacts(model=_field(response, "model"), response_id=_field(response, "id"))
    reasons = [str(r) for c in _field(response, "choices") or () if (r := _field(c, "finish_reason"))]
    facts.finish_reasons = reasons or None
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, Mapping) else None
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        facts.client_cost_usd = repr(cost)  # LiteLLM's estimate: kept apart by the collector
    return facts


class _Accumulator(ResponseAccumulator):
    """A whole response, or the chunks of a ``CustomStreamWrapper`` (usage on the last one)."""

    def __init__(self, hide_usage_chunk: bool = False) -> None:
        self._hide_usage_chunk = hide_usage_chunk
        self._facts = ResponseFacts()
        self._reasons: list[str] = []
        self._usage: Any = None

    def on_item(self, item: Any) -> bool:
        facts, kept = _response_facts(item), self._facts
        self._reasons += facts.finish_reasons or []
        # the first chunk that reports a fact sets it
        kept.model = kept.model if kept.model is not None else facts.model
        kept.response_id = kept.response_id if kept.response_id is not None else facts.response_id
        kept.client_cost_usd = kept.client_cost_usd if kept.client_cost_usd is not None else facts.client_cost_usd
        usage = _field(item, "usage")
        if usage is not None:
            self._usage = usage
            # the usage-only chunk we asked for (stream_options.include_usage) is not the caller's
            return not (self._hide_usage_chunk and not _field(item, "choices"))
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_litellm(self._usage)

    def response_facts(self) -> ResponseFacts:
        return dataclasses.replace(self._facts, finish_reasons=self._reasons or None)


def _call_facts(response: Any) -> Facts:
    return accumulated(_Accumulator)(response)


def _placed(kwargs: Mapping[str, Any]) -> tuple[str, Request]:
    """LiteLLM's provider, and the request: the model without LiteLLM's ``provider/`` prefix."""
    import litellm

    model = kwargs.get("model")
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if not isinstance(model, str) or not model:
        return _UNKNOWN_PROVIDER, Request()
    try:
        bare, provider, _, resolved_base = litellm.get_llm_provider(
            model=model, custom_llm_provider=kwargs.get("custom_llm_provider"), api_base=base
        )
    except Exception:  # LiteLLM itself will refuse the call with its own error
        log.debug("featurecost: LiteLLM could not place %r", model, exc_info=True)
        return _UNKNOWN_PROVIDER, Request(model=model)
    request = Request(model=bare, stream=bool(kwargs.get("stream")))
    endpoint = base or resolved_base
    if isinstance(endpoint, str) and "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.hostname:
            request.server_address = parts.hostname
            with contextlib.suppress(ValueError):  # a port out of range: no port
                request.server_port = parts.port or None
    tier = kwargs.get("service_tier")
    if isinstance(tier, str):
        request.service_tier = tier
    return str(provider or _UNKNOWN_PROVIDER), request


def _positional(args: tuple[Any, ...], kwargs: dict[str, Any], operation: str) -> dict[str, Any]:
    """The call's arguments by name: ``model`` and ``messages`` (``prompt``, ``input``) may come by position."""
    if not args:
        return kwargs
    second = {"chat": "messages", "text_completion": "prompt", "embeddings": "input"}[operation]
    named = dict(zip(("model", second), args, strict=False))
    return {**named, **kwargs}


def _wrapper(tracer: Tracer, operation: str, is_async: bool) -> Callable[..., Any]:
    def sdk_call(provider: str, request: Request) -> Method:
        return Method(operation, lambda _instance: provider, lambda _instance, _kwargs: request)

    def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Method, bool, bool, dict[str, Any]]:
        named = _positional(args, kwargs, operation)
        provider, request = _placed(named)
        streaming = bool(named.get("stream"))
        hide = False
        if streaming and not (named.get("stream_options") or {}).get("include_usage"):
            # LiteLLM reports a stream's usage only when asked; the extra chunk is hidden again
            kwargs = {**kwargs, "stream_options": {**(named.get("stream_options") or {}), "include_usage": True}}
            hide = True
        return sdk_call(provider, request), streaming, hide, kwargs

    def sync(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if passthrough():  # inside another featurecost call (acompletion → completion): that span bills it
            return wrapped(*args, **kwargs)
        try:
            sdk, streaming, hide, kwargs = prepare(args, kwargs)
        except Exception:
            log.debug("featurecost: could not read a LiteLLM call", exc_info=True)
            return wrapped(*args, **kwargs)
        if streaming:
            return stream_wrapper(tracer, sdk, proxied(lambda: _Accumulator(hide)))(wrapped, instance, args, kwargs)
        return call_wrapper(tracer, sdk, _call_facts)(wrapped, instance, args, kwargs)

    async def asynchronous(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if passthrough():
            return await wrapped(*args, **kwargs)
        try:
            sdk, streaming, hide, kwargs = prepare(args, kwargs)
        except Exception:
            log.debug("featurecost: could not read a LiteLLM call", exc_info=True)
            return await wrapped(*args, **kwargs)
        if streaming:
            new: Callable[[], StreamAccumulator] = lambda: _Accumulator(hide)  # noqa: E731
            traced = async_stream_wrapper(tracer, sdk, proxied(new, AsyncTracedStream))
            return await traced(wrapped, instance, args, kwargs)
        return await async_call_wrapper(tracer, sdk, _call_facts)(wrapped, instance, args, kwargs)

    return asynchronous if is_async else sync


class LiteLLMInstrumentor(SafeInstrumentor):
    """Instruments LiteLLM's completion, text_completion and embedding functions, sync and async.

    LiteLLM is patched when the app imports it, not by ``instrument()``: importing it costs
    seconds (and fetches its model cost map), which an app that has it installed but does not
    use it — or ``opentelemetry-instrument`` starting any app — should not pay.
    """

    _generation = 0  # the instrument() a pending import hook belongs to
    _patched = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        cls = type(self)
        cls._generation += 1
        generation = cls._generation

        def patch(_module: Any) -> None:
            if generation != cls._generation or cls._patched:
                return  # an earlier instrument() was undone, or this one already patched
            try:
                for module in _MODULES:
                    for name, (operation, is_async) in _FUNCTIONS.items():
                        wrap_function_wrapper(module, name, _wrapper(tracer, operation, is_async))
            except Exception:
                # Runs inside the app's ``import litellm``: a LiteLLM we do not know must import
                # all the same, uninstrumented.
                log.exception("featurecost: could not instrument LiteLLM; it runs uninstrumented")
                cls._patched = True
                try:
                    self._uninstrument()
                except Exception:
                    log.exception("featurecost: could not undo a partial LiteLLM instrumentation")
                return
            cls._patched = True

        register_post_import_hook(patch, "litellm")  # runs now when litellm is already imported

    def _uninstrument(self, **kwargs: Any) -> None:
        import importlib

        cls = type(self)
        cls._generation += 1
        if not cls._patched:
            return
        for module in _MODULES:
            loaded = importlib.import_module(module)
            for name in _FUNCTIONS:
                unwrap(loaded, name)
        cls._patched = False
