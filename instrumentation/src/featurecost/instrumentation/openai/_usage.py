"""OpenAI usage and response facts, from whole responses and from streams.

OpenAI already counts the way the GenAI semantic conventions do: cached tokens are
inside ``prompt_tokens`` / ``input_tokens``, reasoning and audio output inside
``completion_tokens`` / ``output_tokens``. Nothing is added up here, only renamed.
"""

from __future__ import annotations

from typing import Any

from featurecost.instrumentation._spans import ResponseFacts, TokenUsage, int_or_zero


def usage_from_openai(usage: Any) -> TokenUsage | None:
    """Chat completions, legacy completions and embeddings (``prompt_tokens`` / ``completion_tokens``)."""
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return TokenUsage(
        input_tokens=int_or_zero(getattr(usage, "prompt_tokens", 0)),
        output_tokens=int_or_zero(getattr(usage, "completion_tokens", 0)),
        cache_read_tokens=int_or_zero(getattr(prompt_details, "cached_tokens", 0)),
        reasoning_tokens=int_or_zero(getattr(completion_details, "reasoning_tokens", 0)),
        input_audio_tokens=int_or_zero(getattr(prompt_details, "audio_tokens", 0)),
        output_audio_tokens=int_or_zero(getattr(completion_details, "audio_tokens", 0)),
    )


def usage_from_responses(usage: Any) -> TokenUsage | None:
    """The Responses API (``input_tokens`` / ``output_tokens``)."""
    if usage is None:
        return None
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    return TokenUsage(
        input_tokens=int_or_zero(getattr(usage, "input_tokens", 0)),
        output_tokens=int_or_zero(getattr(usage, "output_tokens", 0)),
        cache_read_tokens=int_or_zero(getattr(input_details, "cached_tokens", 0)),
        reasoning_tokens=int_or_zero(getattr(output_details, "reasoning_tokens", 0)),
    )


def _extra(model: Any, name: str) -> Any:
    """A field the SDK's model does not declare: pydantic keeps those in ``__pydantic_extra__``.
    Read there, a field that is absent (plain OpenAI) costs a dict lookup, not the
    AttributeError pydantic's ``__getattr__`` raises and ``getattr`` swallows."""
    extra = getattr(model, "__pydantic_extra__", None)
    if isinstance(extra, dict):
        found = extra.get(name)
        if found is not None or name not in getattr(type(model), "__pydantic_fields__", ()):
            return found
    return getattr(model, name, None)  # a declared field, or not a pydantic model


def gateway_facts(facts: ResponseFacts, response: Any, usage: Any) -> None:
    """What a gateway reports beyond OpenAI's fields: the billed cost in USD (OpenRouter's
    ``usage.cost`` number, Perplexity's ``usage.cost.total_cost``) and the upstream ``provider``
    that served the call (OpenRouter). Plain OpenAI responses have neither."""
    cost = _extra(usage, "cost")
    if isinstance(cost, dict):
        cost = cost.get("total_cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        facts.gateway_cost_usd = repr(cost)  # a decimal string: the collector keeps it exact
    upstream = _extra(response, "provider")
    if isinstance(upstream, str) and upstream:
        facts.upstream_provider = upstream


def _finish_reasons(choices: Any) -> list[str]:
    return [str(c.finish_reason) for c in choices or () if getattr(c, "finish_reason", None)]


def completion_facts(response: Any) -> tuple[ResponseFacts, TokenUsage | None]:
    """Facts and usage of a chat completion, legacy completion or embeddings response."""
    facts = ResponseFacts(
        model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        service_tier=getattr(response, "service_tier", None),
        finish_reasons=_finish_reasons(getattr(response, "choices", None)) or None,
    )
    usage = getattr(response, "usage", None)
    gateway_facts(facts, response, usage)
    return facts, usage_from_openai(usage)


def _responses_finish_reason(response: Any) -> str | None:
    status = getattr(response, "status", None)
    if status == "completed":
        return "stop"
    if status == "incomplete":
        return str(getattr(getattr(response, "incomplete_details", None), "reason", None) or "incomplete")
    return str(status) if status else None


def responses_facts(response: Any) -> tuple[ResponseFacts, TokenUsage | None]:
    reason = _responses_finish_reason(response)
    facts = ResponseFacts(
        model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        service_tier=getattr(response, "service_tier", None),
        finish_reasons=[reason] if reason else None,
    )
    return facts, usage_from_responses(getattr(response, "usage", None))


class ChatStreamAccumulator:
    """Chat completion and legacy completion chunks.

    With ``include_usage`` the last chunk has empty ``choices`` and the usage; when we
    asked for it (the caller did not), that chunk is hidden so the caller sees the
    stream it asked for.
    """

    __slots__ = ("_hide_usage_chunk", "_id", "_model", "_reasons", "_service_tier", "_usage", "_usage_chunk")

    def __init__(self, hide_usage_chunk: bool) -> None:
        self._hide_usage_chunk = hide_usage_chunk
        self._usage: Any = None
        self._usage_chunk: Any = None
        self._id: Any = None
        self._model: Any = None
        self._service_tier: Any = None
        self._reasons: dict[int, str] = {}

    def on_item(self, chunk: Any) -> bool:
        if self._id is None:
            self._id = getattr(chunk, "id", None)
            self._model = getattr(chunk, "model", None)
            self._service_tier = getattr(chunk, "service_tier", None)
        choices = getattr(chunk, "choices", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
            self._usage_chunk = chunk
            if self._hide_usage_chunk and not choices:
                return False
        if choices:
            # runs per chunk: most chunks carry one choice and no finish reason
            for choice in choices:
                if choice.finish_reason:
                    self._reasons[choice.index] = str(choice.finish_reason)
        return True

    def usage(self) -> TokenUsage | None:
        return usage_from_openai(self._usage)

    def saw_end(self) -> bool:
        # The SDK consumes ``[DONE]``; exhaustion is the end.
        return True

    def response_facts(self) -> ResponseFacts:
        facts = ResponseFacts(
            model=self._model,
            response_id=self._id,
            service_tier=self._service_tier,
            finish_reasons=[self._reasons[i] for i in sorted(self._reasons)] or None,
        )
        if self._usage_chunk is not None:
            gateway_facts(facts, self._usage_chunk, self._usage)
        return facts


_TERMINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStreamAccumulator:
    """Responses API events: the terminal event carries the whole response with its usage."""

    __slots__ = ("_error", "_final", "_started")

    def __init__(self) -> None:
        self._started: Any = None
        self._final: Any = None
        self._error: str | None = None

    def on_item(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind in _TERMINAL_RESPONSE_EVENTS:
            self._final = event.response
        elif kind == "response.created":
            self._started = event.response
        elif kind == "error":
            # an in-stream error is yielded as an event, not raised, by the SDK
            self._error = str(getattr(event, "code", None) or "error")
        return True

    def saw_end(self) -> bool:
        return self._final is not None

    def usage(self) -> TokenUsage | None:
        return usage_from_responses(getattr(self._final, "usage", None))

    def response_facts(self) -> ResponseFacts:
        response = self._final if self._final is not None else self._started
        facts = ResponseFacts()
        if response is not None:
            facts, _ = responses_facts(response)
            if self._final is None:
                facts.finish_reasons = None
        if self._error is not None:
            facts.error_type = self._error
        return facts
