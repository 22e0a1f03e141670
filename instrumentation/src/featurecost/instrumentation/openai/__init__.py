"""OpenAI SDK instrumentation: one GenAI span per billable call, with usage and attribution.

Covered, sync and async, on ``OpenAI``, ``AzureOpenAI`` and ``BedrockOpenAI`` clients:
chat completions (``create``, ``parse``, ``stream=True``, the ``.stream()`` helper),
the Responses API (``create``, ``parse``, ``stream=True``, ``.stream()``), embeddings
and legacy completions, also through ``.with_raw_response``.

Streamed chat and legacy completions report usage only when the request sets
``stream_options.include_usage``. Unless told not to (``inject_stream_usage=False`` or
``FEATURECOST_OPENAI_INJECT_STREAM_USAGE=false``), the instrumentor adds it to requests
that leave it unset — merged into the caller's ``stream_options``, never overriding an
explicit value — and hides the extra usage chunk from the caller, who therefore sees
exactly the stream it asked for.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import _transport
from featurecost.instrumentation._calls import Endpoint, async_wrapper, provider_by_client_class, sync_wrapper
from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._nested import watch_nested_spans
from featurecost.instrumentation._prefix import leading_instructions, safe_prefix_block
from featurecost.instrumentation._spans import Request
from featurecost.instrumentation.openai._usage import (
    ChatStreamAccumulator,
    ResponsesStreamAccumulator,
    completion_facts,
    responses_facts,
    usage_from_openai,
)
from featurecost.instrumentation.version import __version__

__all__ = ["OpenAIInstrumentor", "usage_from_openai"]

_instruments = ("openai >= 1.40",)
_PROVIDER = "openai"

provider_of = provider_by_client_class(
    {
        "AzureOpenAI": "azure.ai.openai",
        "AsyncAzureOpenAI": "azure.ai.openai",
        "BedrockOpenAI": "aws.bedrock",
        "AsyncBedrockOpenAI": "aws.bedrock",
    },
    _PROVIDER,
)


def _chat_instructions(kwargs: Mapping[str, Any]) -> str:
    return leading_instructions(kwargs.get("messages"))


def _responses_instructions(kwargs: Mapping[str, Any]) -> str:
    """``instructions`` then the leading system/developer input items: what the prompt starts with."""
    instructions = kwargs.get("instructions")
    blocks = [instructions if isinstance(instructions, str) else "", leading_instructions(kwargs.get("input"))]
    return "\n".join(b for b in blocks if b)


def _chat_request(kwargs: Mapping[str, Any]) -> Request:
    return Request(
        max_tokens=kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
        service_tier=kwargs.get("service_tier"),
        prefix_block=safe_prefix_block(_chat_instructions, kwargs),
    )


def _responses_request(kwargs: Mapping[str, Any]) -> Request:
    return Request(
        max_tokens=kwargs.get("max_output_tokens"),
        service_tier=kwargs.get("service_tier"),
        prefix_block=safe_prefix_block(_responses_instructions, kwargs),
    )


def _completion_request(kwargs: Mapping[str, Any]) -> Request:
    return Request(
        max_tokens=kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
        service_tier=kwargs.get("service_tier"),
    )


def _embeddings_request(kwargs: Mapping[str, Any]) -> Request:
    return Request()


# Azure OpenAI accepts ``stream_options`` from this API version on; older versions
# answer 400 to it, so their requests are left as they are.
_AZURE_STREAM_OPTIONS_SINCE = "2024-09-01"


def _include_usage(client: Any, kwargs: dict[str, Any]) -> bool:
    """Ask for the final usage chunk unless the caller decided; True when we added it."""
    api_version = getattr(client, "_api_version", None)
    if isinstance(api_version, str) and api_version[:10] < _AZURE_STREAM_OPTIONS_SINCE:
        return False
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" in options:
            return False
        kwargs["stream_options"] = {**options, "include_usage": True}
        return True
    if options is None or type(options).__name__ in ("Omit", "NotGiven"):
        kwargs["stream_options"] = {"include_usage": True}
        return True
    return False


def _chat_accumulator(injected: bool) -> ChatStreamAccumulator:
    return ChatStreamAccumulator(hide_usage_chunk=injected)


def _responses_accumulator(injected: bool) -> ResponsesStreamAccumulator:
    return ResponsesStreamAccumulator()


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def _endpoints(inject_stream_usage: bool) -> dict[str, Endpoint]:
    prepare = _include_usage if inject_stream_usage else None
    chat = Endpoint(
        operation="chat",
        provider_of=provider_of,
        request_facts=_chat_request,
        response_facts=completion_facts,
        new_accumulator=_chat_accumulator,
        prepare_stream=prepare,
    )
    return {
        "chat": chat,
        "responses": Endpoint(
            operation="chat",
            provider_of=provider_of,
            request_facts=_responses_request,
            response_facts=responses_facts,
            new_accumulator=_responses_accumulator,
        ),
        "embeddings": Endpoint(
            operation="embeddings",
            provider_of=provider_of,
            request_facts=_embeddings_request,
            response_facts=completion_facts,
        ),
        "text_completion": Endpoint(
            operation="text_completion",
            provider_of=provider_of,
            request_facts=_completion_request,
            response_facts=completion_facts,
            new_accumulator=_chat_accumulator,
            prepare_stream=prepare,
        ),
    }


# (module, sync class, async class, methods, endpoint)
_TARGETS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("openai.resources.chat.completions.completions", "Completions", "AsyncCompletions", ("create", "parse"), "chat"),
    ("openai.resources.responses.responses", "Responses", "AsyncResponses", ("create", "parse"), "responses"),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", ("create",), "embeddings"),
    ("openai.resources.completions", "Completions", "AsyncCompletions", ("create",), "text_completion"),
)


def _each_target() -> list[tuple[Any, str, str, bool, str]]:
    """(module, class name, method, is async, endpoint) for every target this SDK version has."""
    found = []
    for module_name, sync_cls, async_cls, methods, endpoint in _TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for cls_name, is_async in ((sync_cls, False), (async_cls, True)):
            cls = getattr(module, cls_name, None)
            for method in methods:
                if cls is not None and callable(getattr(cls, method, None)):
                    found.append((module, cls_name, method, is_async, endpoint))
    return found


class OpenAIInstrumentor(SafeInstrumentor):
    """Instruments the ``openai`` SDK; ``instrument(inject_stream_usage=False)`` leaves stream requests as they are."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        _transport.install("openai")
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        inject = kwargs.get("inject_stream_usage")
        if inject is None:
            inject = _env_flag("FEATURECOST_OPENAI_INJECT_STREAM_USAGE", True)
        endpoints = _endpoints(bool(inject))
        for module, cls_name, method, is_async, endpoint in _each_target():
            make: Callable[..., Any] = async_wrapper if is_async else sync_wrapper
            wrap_function_wrapper(module, f"{cls_name}.{method}", make(tracer, endpoints[endpoint]))

    def _uninstrument(self, **kwargs: Any) -> None:
        _transport.uninstall("openai")
        for module, cls_name, method, _, _ in _each_target():
            unwrap(getattr(module, cls_name), method)
