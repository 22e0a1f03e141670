"""Anthropic usage, from whole messages and from message streams.

Anthropic reports ``input_tokens`` *excluding* cache reads and writes; the semconv
input total adds both back, with cache read and creation as subsets. Cache writes
split into 5-minute and 1-hour TTLs (``usage.cache_creation``), priced differently.

In a stream, ``message_start`` carries the usage known when the answer starts and
each ``message_delta`` carries *cumulative* counts: a field present in a delta
replaces the earlier value, never adds to it. Some gateways only report cache counts
in ``message_delta``; replacing field by field takes them wherever they come.
"""

from __future__ import annotations

from typing import Any

from featurecost.instrumentation._spans import ResponseFacts, TokenUsage, int_or_none, int_or_zero

_COUNT_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_counts(usage: Any) -> dict[str, Any]:
    """The counts ``usage`` reports (absent fields left out), ready to merge cumulatively."""
    counts: dict[str, Any] = {}
    if usage is None:
        return counts
    for name in _COUNT_FIELDS:
        value = int_or_none(_get(usage, name))
        if value is not None:
            counts[name] = value
    split = _get(usage, "cache_creation")
    if split is not None:
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            value = int_or_none(_get(split, name))
            if value is not None:
                counts[name] = value
    tier = _get(usage, "service_tier")
    if tier is not None:
        counts["service_tier"] = str(tier)
    return counts


def usage_from_counts(counts: dict[str, Any]) -> TokenUsage | None:
    if not any(name in counts for name in _COUNT_FIELDS):
        return None
    uncached = int_or_zero(counts.get("input_tokens"))
    cache_read = int_or_zero(counts.get("cache_read_input_tokens"))
    cache_creation = int_or_zero(counts.get("cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=uncached + cache_read + cache_creation,
        output_tokens=int_or_zero(counts.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_creation_tokens=cache_creation,
        cache_creation_5m_tokens=counts.get("ephemeral_5m_input_tokens"),
        cache_creation_1h_tokens=counts.get("ephemeral_1h_input_tokens"),
    )


def usage_from_anthropic(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    return usage_from_counts(usage_counts(usage))


def message_facts(message: Any) -> tuple[ResponseFacts, TokenUsage | None]:
    usage = getattr(message, "usage", None)
    stop_reason = getattr(message, "stop_reason", None)
    facts = ResponseFacts(
        model=getattr(message, "model", None),
        response_id=getattr(message, "id", None),
        service_tier=getattr(usage, "service_tier", None),
        finish_reasons=[str(stop_reason)] if stop_reason else None,
    )
    return facts, usage_from_anthropic(usage)


class MessageStreamAccumulator:
    """Raw message stream events (``stream=True`` and the ``.stream()`` helper alike)."""

    __slots__ = ("_counts", "_ended", "_id", "_model", "_stop_reason")

    def __init__(self, injected: bool = False) -> None:
        self._counts: dict[str, Any] = {}
        self._id: Any = None
        self._model: Any = None
        self._stop_reason: Any = None
        self._ended = False

    def on_item(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self._id = getattr(message, "id", None)
            self._model = getattr(message, "model", None)
            self._counts.update(usage_counts(getattr(message, "usage", None)))
        elif kind == "message_delta":
            self._stop_reason = getattr(getattr(event, "delta", None), "stop_reason", None) or self._stop_reason
            self._counts.update(usage_counts(getattr(event, "usage", None)))
        elif kind == "message_stop":
            self._ended = True
        return True

    def saw_end(self) -> bool:
        return self._ended

    def usage(self) -> TokenUsage | None:
        return usage_from_counts(self._counts)

    def response_facts(self) -> ResponseFacts:
        return ResponseFacts(
            model=self._model,
            response_id=self._id,
            service_tier=self._counts.get("service_tier"),
            finish_reasons=[str(self._stop_reason)] if self._stop_reason else None,
        )
