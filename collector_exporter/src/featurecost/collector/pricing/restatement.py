"""Restatement: re-price stored calls after a price fix without touching a stored row.

Stored calls are history: what featurecost said a call cost, with which price entry. When a
price was wrong (a contract price added late, a model that was unknown), ``reprice`` prices
the calls again and appends one ``cost_restatements`` row per call whose cost changed,
carrying the delta. Reports add the deltas, so sums are right and the audit trail stays.

Idempotent: a call is compared against its cost *as already restated*, so running the same
reprice twice appends nothing the second time. A call whose new pricing is unpriced keeps
its old cost (a price that disappeared must not turn into $0); it is counted, not restated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.storage.client import Storage, money

_PACKAGE = "featurecost.collector.pricing"

RESTATEMENT_COLUMNS = (
    "trace_id", "span_id", "start_time", "environment", "service_name", "feature", "tenant", "user_id",
    "plan", "root_id", "session_id", "version", "operation", "provider", "request_model", "response_model",
    "restatement_id", "previous_cost_usd", "cost_usd", "cost_delta_usd", "input_cost_delta_usd",
    "output_cost_delta_usd", "price_source", "price_entry", "price_data_version", "unpriced_reason", "reason",
)  # fmt: skip

# What the pricer reads from a stored call: every CallRecord field but what pricing sets and
# the detail kept only for display (raw counts, attributes, supersession).
_NOT_PRICER_INPUT = frozenset(
    {
        "cost_usd", "input_cost_usd", "output_cost_usd", "price_source", "price_entry", "price_data_version",
        "unpriced_reason", "client_cost_usd", "cost_delta_vs_client_usd", "attributes", "raw_usage",
        "usage_convention", "usage_issues", "response_id", "superseded_by", "rollup_sign",
    }
)  # fmt: skip
_RECORD_FIELDS = tuple(f.name for f in fields(CallRecord) if f.name not in _NOT_PRICER_INPUT)


@dataclass
class RepriceResult:
    examined: int = 0
    restated: int = 0
    still_unpriced: int = 0
    would_become_unpriced: int = 0
    total_delta_usd: Decimal = Decimal(0)
    rows: list[list[Any]] = field(default_factory=list)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stored_call(row: dict[str, Any]) -> CallRecord:
    """A stored calls row back as the record the pricer takes (usage and dimensions only)."""
    values = {name: row[name] for name in _RECORD_FIELDS}
    values["start_time"] = _utc(values["start_time"])
    values["end_time"] = _utc(values["end_time"])
    return CallRecord(**values)


def reprice(
    storage: Storage,
    pricer: Pricer,
    since: datetime,
    until: datetime,
    *,
    model: str = "",
    reason: str = "reprice",
    dry_run: bool = False,
) -> RepriceResult:
    """Price the calls in [since, until) again and append a delta for each whose cost changed."""
    parameters = {
        "since": since.astimezone(UTC).replace(tzinfo=None),
        "until": until.astimezone(UTC).replace(tzinfo=None),
        "model": model,
    }
    result = RepriceResult()
    for row in storage.query_named(_PACKAGE, "prices_reprice_candidates", parameters):
        result.examined += 1
        restated = int(row["restatements"] or 0) > 0
        current = money(row["restated_cost_usd"] if restated else row["stored_cost_usd"])
        current_input = money(row["stored_input_cost_usd"] or Decimal(0)) or Decimal(0)
        current_output = money(row["stored_output_cost_usd"] or Decimal(0)) or Decimal(0)
        if restated:
            current_input += row["restated_input_cost_usd"] or Decimal(0)
            current_output += row["restated_output_cost_usd"] or Decimal(0)
        call = pricer.price(stored_call(row))
        new = money(call.cost_usd)
        if new is None:
            if current is None:
                result.still_unpriced += 1
            else:
                result.would_become_unpriced += 1
            continue
        if new == current:
            continue
        delta = new - (current or Decimal(0))
        input_delta = (money(call.input_cost_usd) or Decimal(0)) - current_input
        output_delta = (money(call.output_cost_usd) or Decimal(0)) - current_output
        stamp = f"{call.trace_id}/{call.span_id}|{call.price_entry}|{call.price_data_version}|{new}|{current}"
        restatement_id = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        result.rows.append(
            [
                call.trace_id, call.span_id, call.start_time, call.environment, call.service_name, call.feature,
                call.tenant, call.user_id, call.plan, call.root_id, call.session_id, call.version, call.operation,
                call.provider, call.request_model, call.response_model, restatement_id, current, new, delta,
                input_delta, output_delta, call.price_source, call.price_entry, call.price_data_version,
                call.unpriced_reason, reason,
            ]
        )  # fmt: skip
        result.restated += 1
        result.total_delta_usd += delta
    if result.rows and not dry_run:
        token = hashlib.sha256("".join(str(r[16]) for r in result.rows).encode()).hexdigest()
        storage.insert_rows("cost_restatements", result.rows, RESTATEMENT_COLUMNS, f"restate:{token}")
    return result
