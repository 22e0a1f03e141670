"""Settling the budget guard: a call's estimate is replaced by its actual cost, for every SDK.

The guard checks a call before it is made with an *estimate*; once the provider reported
the usage, the session's tally must hold the actual cost. The usage is what the call's
extractor reported, in GenAI-semconv terms (input includes cache reads and writes), so one
rule serves plain calls and streams of every SDK alike — whether or not the span is sampled.
Never raises: settling is bookkeeping.
"""

from __future__ import annotations

import logging
from typing import Any

from featurecost.instrumentation._spans import TokenUsage
from featurecost.instrumentation.guard import Ticket, active_guard

log = logging.getLogger(__name__)


def settle_usage(ticket: Ticket | None, provider: str, usage: TokenUsage | None) -> None:
    """Settle ``ticket`` (None: nothing was checked) with ``usage`` (None: not reported, the estimate stays)."""
    if ticket is None or usage is None:
        return
    try:
        guard = active_guard()
        if guard is not None:
            guard.settle(ticket, usage.input_tokens, usage.output_tokens, provider)
    except Exception:
        log.debug("featurecost: could not settle a budget ticket", exc_info=True)


def settle_call(call: Any, usage: TokenUsage | None) -> None:
    """Settle a streamed call (``LLMCall``) once its span ended; at most once per call."""
    checked = getattr(call, "settle_with", None)
    if checked is None:
        return
    call.settle_with = None
    settle_usage(checked[0], checked[1], usage)
