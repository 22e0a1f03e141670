"""Plausibility bounds on what a client can claim about one call.

Spans come from untrusted clients. A token count of 10^14 would be priced as a
$15,000,000 call, an int64-max count overflows every rollup sum, and a claimed cost
of 1e30 does not fit the Decimal(38, 18) money columns. Such a call is still stored
(it happened, and the raw values help find the broken instrumentation) but with its
normalized counts zeroed, the implausible values kept in ``usage_issues`` (and in
``raw_usage`` when they fit its UInt64), and a NULL cost with the reason: unknown,
never a made-up number.
"""

from __future__ import annotations

from decimal import Decimal

from featurecost.collector.pipeline.records import CallRecord

# No model has a context window near a billion tokens; one call reporting more is broken.
MAX_TOKENS = 1_000_000_000
# The priciest call the price data can produce with MAX_TOKENS is far below this.
MAX_COST_USD = Decimal(1_000_000)
# The money columns are Decimal(38, 18): 20 integer digits.
_MONEY_LIMIT = Decimal(10) ** 20
_UINT64_MAX = 2**64 - 1

TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
)
_COST_COLUMNS = ("cost_usd", "input_cost_usd", "output_cost_usd", "cost_delta_vs_client_usd")


def clamp_usage(call: CallRecord) -> str:
    """Zero implausible usage claims on ``call`` before pricing; the reason, or ``""``."""
    problems: list[str] = []
    for column in TOKEN_COLUMNS:
        value = getattr(call, column)
        if not 0 <= value <= MAX_TOKENS:
            problems.append(f"{column}={value}")
    for key, value in list(call.raw_usage.items()):
        if not 0 <= value <= _UINT64_MAX:
            del call.raw_usage[key]  # cannot be stored as UInt64; the issue keeps it
            problems.append(f"{key}={value}")
    if call.client_cost_usd is not None and not (
        call.client_cost_usd.is_finite() and 0 <= call.client_cost_usd <= MAX_COST_USD
    ):
        problems.append(f"client cost {call.client_cost_usd}")
        call.client_cost_usd = None
    if not problems:
        return ""
    reason = f"implausible usage: {', '.join(problems)} (bound {MAX_TOKENS} tokens, ${MAX_COST_USD})"
    call.usage_issues = [*call.usage_issues, reason]
    if any(not 0 <= getattr(call, column) <= MAX_TOKENS for column in TOKEN_COLUMNS):
        for column in TOKEN_COLUMNS:
            setattr(call, column, 0)
    return reason


def unprice(call: CallRecord, reason: str) -> None:
    """NULL cost with ``reason``: what pricing does for a call it cannot price."""
    for column in _COST_COLUMNS:
        setattr(call, column, None)
    call.price_source = ""
    call.price_entry = ""
    call.unpriced_reason = reason


def cost_problem(call: CallRecord) -> str:
    """Why the priced ``call``'s money does not fit the columns, or ``""``."""
    for column in (*_COST_COLUMNS, "client_cost_usd"):
        value: Decimal | None = getattr(call, column)
        if value is not None and not (value.is_finite() and abs(value) < _MONEY_LIMIT):
            return f"{column}={value} does not fit Decimal(38, 18)"
    if call.cost_usd is not None and call.cost_usd > MAX_COST_USD:
        return f"computed cost ${call.cost_usd} over the ${MAX_COST_USD} bound for one call"
    return ""
