"""The data behind ``featurecost prices``, for the CLI (``--storage``) and the collector's API.

With embedded chDB the running collector owns the data directory, so the CLI reaches the
data through the API; against a stopped collector or a ClickHouse server it reads storage
itself. Both paths run these functions, so they print the same thing. Every value is plain
JSON (strings, numbers, lists) so the API can return it as is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from featurecost.collector.pricing.pricer import Pricer, explain_lines
from featurecost.collector.pricing.restatement import RepriceResult, stored_call
from featurecost.collector.storage.client import Storage

_PACKAGE = "featurecost.collector.pricing"

# (label, value) lines, printed as a two-column table
Lines = list[list[str]]


class PricesQueryError(ValueError):
    """The request cannot be answered as asked (no such call, ambiguous span id)."""


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value:,.9f}"


def unpriced_models(storage: Storage, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Models seen without a price in [since, until): calls, tokens, first/last seen, why."""
    rows = storage.query_named(_PACKAGE, "prices_unpriced", {"since": _naive_utc(since), "until": _naive_utc(until)})
    return [
        {**row, "first_seen": row["first_seen"].isoformat(), "last_seen": row["last_seen"].isoformat()} for row in rows
    ]


def explain_call(storage: Storage, pricer: Pricer, span_id: str, trace_id: str = "") -> dict[str, Any]:
    """How a stored call was priced (``stored``) and how ``pricer`` prices it now (``now``)."""
    rows = storage.query_named(_PACKAGE, "prices_call", {"span_id": span_id, "trace_id": trace_id})
    if not rows:
        raise PricesQueryError(f"no stored call with span id {span_id}")
    if len(rows) > 1:
        raise PricesQueryError("several calls share that span id; pass --trace-id")
    row = rows[0]
    stored: Lines = [[key, str(row[key] or "-")] for key in (
        "provider", "request_model", "response_model", "tenant", "service_tier", "start_time")]  # fmt: skip
    stored.append(
        [
            "usage",
            f"input {row['input_tokens']} (cache read {row['cache_read_tokens']}, "
            f"cache write {row['cache_write_tokens']}, 1h {row['cache_write_1h_tokens']}), "
            f"output {row['output_tokens']} (reasoning {row['reasoning_tokens']})",
        ]
    )
    stored.append(["raw usage", json.dumps(dict(row["raw_usage"]), sort_keys=True) or "-"])
    stored.append(["usage convention", row["usage_convention"] or "-"])
    if row["usage_issues"]:
        stored.append(["usage issues", "; ".join(row["usage_issues"])])
    stored.append(["cost", _usd(row["cost_usd"])])
    stored.append(["input / output cost", f"{_usd(row['input_cost_usd'])} / {_usd(row['output_cost_usd'])}"])
    stored.append(["priced by", f"{row['price_source'] or '-'} · {row['price_entry'] or '-'}"])
    stored.append(["data version", row["price_data_version"] or "-"])
    if row["unpriced_reason"]:
        stored.append(["unpriced because", row["unpriced_reason"]])
    if row["client_cost_usd"] is not None:
        claimed = f"{_usd(row['client_cost_usd'])} (ours - theirs: {row['cost_delta_vs_client_usd']})"
        stored.append(["client-claimed cost", claimed])
    if int(row["restatements"] or 0):
        stored.append(
            [
                "restated",
                f"{row['restatements']}x; now {_usd(row['restated_cost_usd'])} by {row['restated_price_entry']} "
                f"({row['restated_price_data_version']}; {row['restated_reason']})",
            ]
        )
    record = stored_call(row)
    card = pricer.rate_card(record) if record.model else None
    priced = pricer.quote(record).apply(record)  # the lines below name the provider it is priced as
    now: Lines = [[key, value] for key, value in explain_lines(record, card).items()] if card is not None else []
    now.append(["cost", _usd(priced.cost_usd)])
    if priced.unpriced_reason:
        now.append(["unpriced because", priced.unpriced_reason])
    return {"trace_id": row["trace_id"], "span_id": row["span_id"], "stored": stored, "now": now}


def reprice_result_json(result: RepriceResult, dry_run: bool) -> dict[str, Any]:
    return {
        "examined": result.examined,
        "restated": result.restated,
        "dry_run": dry_run,
        "total_delta_usd": str(result.total_delta_usd),
        "still_unpriced": result.still_unpriced,
        "would_become_unpriced": result.would_become_unpriced,
    }


def reprice_summary(result: dict[str, Any]) -> str:
    verb = "would restate" if result["dry_run"] else "restated"
    return (
        f"examined {result['examined']} calls; {verb} {result['restated']} "
        f"(total delta ${Decimal(result['total_delta_usd']):,.9f}); {result['still_unpriced']} still unpriced; "
        f"{result['would_become_unpriced']} kept (new pricing has no price)"
    )
