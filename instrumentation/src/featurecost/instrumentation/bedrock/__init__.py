"""Amazon Bedrock Runtime (boto3/botocore) instrumentation.

botocore builds its client classes at run time from service models, so there is no
``BedrockRuntime.converse`` to wrap. Like opentelemetry-instrumentation-botocore we wrap
``botocore.client.BaseClient._make_api_call`` — the one method every operation of every
client goes through — and act only for the ``bedrock-runtime`` service's model calls:
``Converse``, ``ConverseStream``, ``InvokeModel`` and ``InvokeModelWithResponseStream``.

Usage semantics: Bedrock's ``inputTokens`` *exclude* cache reads and writes
(``cacheReadInputTokens``, ``cacheWriteInputTokens``); the span carries the semconv total
with the cache parts as subsets. ``InvokeModel`` bodies are each model family's own
format; we read the usage from the body where the family reports it and otherwise from
the ``X-Amzn-Bedrock-*-Token-Count`` headers Bedrock adds for every family.

The budget guard, when configured, is asked before each of these calls (``_check_budget``):
botocore's ``api_params`` are the request, ``modelId`` read as the model.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from featurecost.instrumentation import _transport
from featurecost.instrumentation._instrumentor import SafeInstrumentor
from featurecost.instrumentation._lifecycle import Facts, Method, Request, passthrough, run_call, run_stream
from featurecost.instrumentation._nested import watch_nested_spans
from featurecost.instrumentation._spans import LLMCall, ResponseFacts, TokenUsage, int_or_zero
from featurecost.instrumentation._streams import ResponseAccumulator, TracedStream
from featurecost.instrumentation.guard import Ticket, active_guard, check_call
from featurecost.instrumentation.version import __version__

log = logging.getLogger(__name__)
_instruments = ("botocore >= 1.34.116",)  # the first release with the Converse API
PROVIDER = "aws.bedrock"
_SERVICE = "bedrock-runtime"
_INPUT_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"
_CACHE_READ_HEADER = "x-amzn-bedrock-cache-read-input-token-count"
_CACHE_WRITE_HEADER = "x-amzn-bedrock-cache-write-input-token-count"
_MODEL_CALLS = frozenset({"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"})


def _total(uncached: int, cache_read: int, cache_write: int, output: int) -> TokenUsage:
    return TokenUsage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_write,
    )


def usage_from_converse(usage: Mapping[str, Any] | None) -> TokenUsage | None:
    if not usage:
        return None
    return _total(
        int_or_zero(usage.get("inputTokens")),
        int_or_zero(usage.get("cacheReadInputTokens")),
        int_or_zero(usage.get("cacheWriteInputTokens")),
        int_or_zero(usage.get("outputTokens")),
    )


def usage_from_headers(headers: Mapping[str, str]) -> TokenUsage | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    if _INPUT_HEADER not in lowered and _OUTPUT_HEADER not in lowered:
        return None

    def count(name: str) -> int:
        value = lowered.get(name, "0")
        return int(value) if value.isdigit() else 0

    return _total(count(_INPUT_HEADER), count(_CACHE_READ_HEADER), count(_CACHE_WRITE_HEADER), count(_OUTPUT_HEADER))


def usage_from_invoke_body(body: Mapping[str, Any]) -> TokenUsage | None:
    """Usage as each model family writes it into an ``InvokeModel`` response body."""
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        if "input_tokens" in usage:  # Anthropic Messages: input excludes cache
            return _total(
                int_or_zero(usage.get("input_tokens")),
                int_or_zero(usage.get("cache_read_input_tokens")),
                int_or_zero(usage.get("cache_creation_input_tokens")),
                int_or_zero(usage.get("output_tokens")),
            )
        if "inputTokens" in usage:  # Amazon Nova: input excludes cache
            return _total(
                int_or_zero(usage.get("inputTokens")),
                int_or_zero(usage.get("cacheReadInputTokenCount")),
                int_or_zero(usage.get("cacheWriteInputTokenCount")),
                int_or_zero(usage.get("outputTokens")),
            )
        if "prompt_tokens" in usage:  # OpenAI-compatible (gpt-oss, DeepSeek …): cache inside prompt
            details = usage.get("prompt_tokens_details")
            cached = int_or_zero(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
            return TokenUsage(
                input_tokens=int_or_zero(usage.get("prompt_tokens")),
                output_tokens=int_or_zero(usage.get("completion_tokens")),
                cache_read_tokens=cached,
            )
    if "prompt_token_count" in body:  # Meta Llama
        return TokenUsage(
            input_tokens=int_or_zero(body.get("prompt_token_count")),
            output_tokens=int_or_zero(body.get("generation_token_count")),
        )
    if "inputTextTokenCount" in body:  # Amazon Titan text and embeddings
        results = body.get("results")
        output = sum(int_or_zero(r.get("tokenCount")) for r in results if isinstance(r, Mapping)) if results else 0
        return TokenUsage(input_tokens=int_or_zero(body.get("inputTextTokenCount")), output_tokens=output)
    return None


def _invocation_metrics(chunk: Mapping[str, Any]) -> TokenUsage | None:
    """The per-stream totals Bedrock appends to the last chunk of every family's stream."""
    metrics = chunk.get("amazon-bedrock-invocationMetrics")
    if not isinstance(metrics, Mapping):
        return None
    return _total(
        int_or_zero(metrics.get("inputTokenCount")),
        int_or_zero(metrics.get("cacheReadInputTokenCount")),
        int_or_zero(metrics.get("cacheWriteInputTokenCount")),
        int_or_zero(metrics.get("outputTokenCount")),
    )


def _service_tier(result: Mapping[str, Any]) -> Any:
    tier = result.get("serviceTier")
    return tier.get("type") if isinstance(tier, Mapping) else tier


def _converse_facts(result: Mapping[str, Any]) -> Facts:
    reason = result.get("stopReason")
    facts = ResponseFacts(finish_reasons=[str(reason)] if reason else None, service_tier=_service_tier(result))
    return facts, usage_from_converse(result.get("usage"))


def _headers(result: Mapping[str, Any]) -> Mapping[str, str]:
    headers = result.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers if isinstance(headers, Mapping) else {}


def _invoke_facts(result: dict[str, Any]) -> Facts:
    usage = None
    facts = ResponseFacts(service_tier=result.get("serviceTier"))
    body = result.get("body")
    content_type = str(result.get("contentType", ""))
    if body is not None and hasattr(body, "read") and "json" in content_type:
        # The body is a one-shot stream: read it and hand the application an identical one.
        from botocore.response import StreamingBody

        data = body.read()
        result["body"] = StreamingBody(io.BytesIO(data), len(data))
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            usage = usage_from_invoke_body(parsed)
            facts.model = parsed.get("model")
            facts.response_id = parsed.get("id")
            reason = parsed.get("stop_reason") or parsed.get("stopReason")
            if isinstance(reason, str):
                facts.finish_reasons = [reason]
    return facts, usage or usage_from_headers(_headers(result))


class _ConverseStreamAccumulator(ResponseAccumulator):
    def __init__(self) -> None:
        self.usage_seen: Any = None
        self.stop_reason: Any = None
        self.service_tier: Any = None

    def on_item(self, item: Mapping[str, Any]) -> bool:
        if "messageStop" in item:
            self.stop_reason = item["messageStop"].get("stopReason")
        if "metadata" in item:
            self.usage_seen = item["metadata"].get("usage")
            self.service_tier = _service_tier(item["metadata"])
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_converse(self.usage_seen)

    def response_facts(self) -> ResponseFacts:
        reasons = [str(self.stop_reason)] if self.stop_reason else None
        return ResponseFacts(finish_reasons=reasons, service_tier=self.service_tier)


class _InvokeStreamAccumulator(ResponseAccumulator):
    """InvokeModelWithResponseStream: chunks carry the family's own events; the last one
    also carries Bedrock's invocation metrics, which we prefer (same for every family)."""

    def __init__(self) -> None:
        self.metrics: TokenUsage | None = None
        self.model: Any = None
        self.response_id: Any = None
        self.stop_reason: Any = None
        self.anthropic_usage: dict[str, Any] = {}

    def on_item(self, item: Mapping[str, Any]) -> bool:
        payload = item.get("chunk", {}).get("bytes")
        if not payload:
            return True
        chunk = json.loads(payload)
        if not isinstance(chunk, Mapping):
            return True
        self.metrics = _invocation_metrics(chunk) or self.metrics
        message = chunk.get("message")
        if isinstance(message, Mapping):  # Anthropic message_start
            self.model = message.get("model") or self.model
            self.response_id = message.get("id") or self.response_id
            self.anthropic_usage.update(message.get("usage") or {})
        if chunk.get("type") == "message_delta":
            self.anthropic_usage.update(chunk.get("usage") or {})
            self.stop_reason = (chunk.get("delta") or {}).get("stop_reason") or self.stop_reason
        return True

    def usage(self) -> TokenUsage | None:
        if self.metrics is not None:
            return self.metrics
        return usage_from_invoke_body({"usage": self.anthropic_usage}) if self.anthropic_usage else None

    def response_facts(self) -> ResponseFacts:
        reasons = [str(self.stop_reason)] if self.stop_reason else None
        return ResponseFacts(model=self.model, response_id=self.response_id, finish_reasons=reasons)


def _max_tokens_of(params: Mapping[str, Any]) -> Any:
    config = params.get("inferenceConfig")
    if isinstance(config, Mapping):  # Converse, ConverseStream
        return config.get("maxTokens")
    return _invoke_body(params).get("max_tokens")


def _invoke_body(params: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        body = json.loads(params.get("body") or b"{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, Mapping) else {}


def _guard_view(params: Mapping[str, Any]) -> dict[str, Any]:
    """The request as the budget guard reads requests: ``model`` for ``modelId``, the
    output cap as ``max_tokens``, and for ``InvokeModel`` the text of the JSON body."""
    view = dict(params)
    view["model"] = params.get("modelId")
    if "body" in params:
        body = _invoke_body(params)
        for key in ("messages", "system", "prompt"):
            if key in body:
                view.setdefault(key, body[key])
    max_tokens = _max_tokens_of(params)
    if isinstance(max_tokens, int):
        view["max_tokens"] = max_tokens
    return view


def _request(instance: Any, params: dict[str, Any]) -> Request:
    endpoint_url = getattr(getattr(instance, "meta", None), "endpoint_url", "")
    model = params.get("modelId")
    return Request(
        model=model if isinstance(model, str) else None,
        max_tokens=_max_tokens_of(params),
        server_address=urlparse(str(endpoint_url)).hostname,
    )


def _check_budget(params: dict[str, Any]) -> Ticket | None:
    """The budget guard's check (when one is configured), before the span: a denied call
    raises and is never sent. A soft-limit callback may change the request: a new
    ``model`` becomes the ``modelId``, and Bedrock's own parameters are taken as changed."""
    if active_guard() is None:
        return None
    try:
        view = _guard_view(params)
    except Exception:  # our request extractor failed: the call goes on unchecked, never blocked by us
        log.debug("featurecost: could not read a Bedrock request for the budget guard", exc_info=True)
        return None
    model = view["model"]
    ticket = check_call(view, PROVIDER)
    if ticket is not None and ticket.degraded:
        for key in params.keys() & view.keys():
            params[key] = view[key]
        if view.get("model") != model and isinstance(view.get("model"), str):
            params["modelId"] = view["model"]
    return ticket


def _check(params: dict[str, Any], provider: str) -> Ticket | None:
    return _check_budget(params)


def _provider(instance: Any) -> str:
    return PROVIDER


def _stream_tracer(key: str, new_accumulator: Callable[[], ResponseAccumulator]) -> Callable[[Any, LLMCall], Any]:
    def trace_result(result: Any, call: LLMCall) -> Any:
        # the event stream reads the response as it is iterated: each step runs in the call's context
        result[key] = TracedStream(result[key], call, new_accumulator(), in_call=True)
        return result

    return trace_result


def _api_call_wrapper(tracer: trace.Tracer) -> Callable[..., Any]:
    """Our span around a Bedrock model call.

    The contrib botocore instrumentation (which ``opentelemetry-instrument`` enables whenever it
    is installed) wraps the same method with a GenAI span of its own: outside ours, ours marks
    it superseded; inside ours, ``_nested`` does. Either way the collector bills the call once.
    botocore has one method for every operation: the targets are the model calls among them,
    the lifecycle's request is the operation's ``api_params``.
    """
    method = Method("chat", _provider, _request, check=_check)
    responses = {"Converse": _converse_facts, "InvokeModel": _invoke_facts}
    streams = {operation: _stream_tracer(key, new) for operation, (key, new) in _STREAMS.items()}

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        operation = args[0] if args else kwargs.get("operation_name")
        params = args[1] if len(args) > 1 else kwargs.get("api_params", {})
        meta = getattr(instance, "meta", None)
        service = getattr(getattr(meta, "service_model", None), "service_name", None)
        if service == _SERVICE:
            _transport.watch_botocore_client(instance)
        if service != _SERVICE or operation not in _MODEL_CALLS or passthrough() or not isinstance(params, dict):
            return wrapped(*args, **kwargs)
        trace_result = streams.get(operation)
        if trace_result is not None:
            return run_stream(tracer, method, trace_result, wrapped, instance, args, kwargs, params)
        return run_call(tracer, method, responses[operation], wrapped, instance, args, kwargs, params)

    return wrapper


# streamed operations: (the result key of the event stream, its accumulator)
_STREAMS: dict[str, tuple[str, Callable[[], ResponseAccumulator]]] = {
    "ConverseStream": ("stream", _ConverseStreamAccumulator),
    "InvokeModelWithResponseStream": ("body", _InvokeStreamAccumulator),
}


class BedrockInstrumentor(SafeInstrumentor):
    """Instruments Bedrock Runtime model calls made through any boto3/botocore client."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        watch_nested_spans(kwargs.get("tracer_provider"))
        wrap_function_wrapper("botocore.client", "BaseClient._make_api_call", _api_call_wrapper(tracer))

    def _uninstrument(self, **kwargs: Any) -> None:
        import botocore.client

        unwrap(botocore.client.BaseClient, "_make_api_call")
