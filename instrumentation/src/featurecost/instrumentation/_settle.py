"""Settling the budget guard: a call's estimate is replaced by its actual cost, for every SDK.

The guard checks a call before it is made with an *estimate*; once the provider reported
the usage, the session's tally must hold the actual cost. The usage is read from the
call's span — what the instrumentors recorded, in GenAI-semconv terms — so one rule serves
plain calls and streams of every SDK alike. Never raises: settling is bookkeeping.
"""

from __future__ import annotations

import logging
from typing import Any

from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation.guard import Ticket, active_guard

log = logging.getLogger(__name__)


def settle(ticket: Ticket | None, provider: str, span: Any) -> None:
    """Settle ``ticket`` (None: nothing was checked) with the usage recorded on ``span``."""
    if ticket is None:
        return
    try:
        guard = active_guard()
        found = getattr(span, "attributes", None) or {}
        input_tokens = found.get(attrs.GEN_AI_USAGE_INPUT_TOKENS)
        output_tokens = found.get(attrs.GEN_AI_USAGE_OUTPUT_TOKENS)
        if guard is None or not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
            return
        guard.settle(ticket, input_tokens, output_tokens, provider)
    except Exception:
        log.debug("featurecost: could not settle a budget ticket", exc_info=True)


def settle_call(call: Any) -> None:
    """Settle a streamed call (``LLMCall``) once its span ended; at most once per call."""
    checked = getattr(call, "settle_with", None)
    if checked is None:
        return
    call.settle_with = None
    settle(checked[0], checked[1], call.span)
