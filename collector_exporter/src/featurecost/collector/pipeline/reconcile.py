"""One provider call, one bill: reconcile spans that report the same provider response.

Real apps run several instrumentations at once (OpenLLMetry, OpenInference, Logfire,
OpenLIT, the SDKs' own tracing, ours). Each may emit a span for the same provider call,
and not always as parent and child: some start their span without making it current,
some after the call returned. The one fact they share is the provider's response id
(``gen_ai.response.id``). So spans of one trace that report the same response id are one
call: exactly one of them counts, the others are stored *superseded* and counted by no
report or rollup. "Of one trace" is widened with care: spans from the same service with
the same response id are one call when they share the trace *or* overlap in
time (a tool starting a root span of its own puts the same call in another trace).

Which one counts does not depend on arrival order: the best by ``_rank`` (attributed
first, then with usage, then not failed, then the smallest span id) over every span of the
call seen so far. When a better span arrives after a worse one was already counted, the
worse one is *withdrawn*: its stored row is re-inserted with ``superseded_by`` set and
``rollup_sign = -1`` (``calls`` is a ReplacingMergeTree: the re-insert replaces it; the
rollup views subtract it, migration 0050), and any restatement deltas it had are negated
by one more restatement. Nothing is mutated or deleted.

Which stored calls to look up: a durable memory of the (trace, response id) keys stored
so far (the same structure as the seen-span memory), so the common case — a response id
never seen before — costs a set lookup and no query.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from featurecost.collector import attributes as attrs
from featurecost.collector.ingest.seen_spans import SeenSpans
from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.pricing.restatement import _utc
from featurecost.collector.storage.client import CALL_COLUMNS, Storage

_PACKAGE = "featurecost.collector.pipeline"
# spans of one call start within the call; a day either side covers any real call
_WINDOW = timedelta(days=1)


def response_key(call: CallRecord) -> str:
    """Spans that can be one call: the same provider response id from the same service. Not
    the provider: the tools name it differently for one call (ours from the endpoint, another
    from the SDK). Not the trace alone: a tool that starts a root span of its own
    (OpenLLMetry's ``start_span`` with no enclosing request span) puts the call in another trace."""
    return f"{call.service_name}/{call.response_id}"


# Two spans of one call both cover the provider's answer: they overlap in time. A gateway
# that reuses response ids (some self-hosted servers) does so across *different* calls,
# which do not overlap unless run in parallel — and those are told apart by the trace.
_OVERLAP_SLACK = timedelta(seconds=1)


def _same_call(a: CallRecord, b: CallRecord) -> bool:
    if a.trace_id == b.trace_id:
        return True
    return a.start_time <= b.end_time + _OVERLAP_SLACK and b.start_time <= a.end_time + _OVERLAP_SLACK


def _calls_of(members: list[CallRecord]) -> list[tuple[CallRecord, list[CallRecord]]]:
    """``members`` (one response key) split into calls: (the span that counts, the others)."""
    remaining = sorted(members, key=_rank)
    calls = []
    while remaining:
        winner = remaining[0]
        same = [m for m in remaining[1:] if _same_call(m, winner)]
        calls.append((winner, same))
        taken = {id(winner), *map(id, same)}
        remaining = [m for m in remaining if id(m) not in taken]
    return calls


def _rank(call: CallRecord) -> tuple[bool, bool, bool, str]:
    """Sort key: the smallest counts. Attribution first, because the row that counts must
    say which feature, tenant and user spent the money."""
    attributed = call.feature != attrs.DEFAULT_FEATURE or bool(call.tenant) or bool(call.user_id)
    return (not attributed, call.usage_source == attrs.USAGE_MISSING, call.status != "ok", call.span_id)


@dataclass(slots=True)
class Reconciled:
    """What to store for one batch: its calls (losers marked superseded) plus withdrawals of
    earlier counted rows, and the restatement rows that cancel a withdrawn call's deltas."""

    calls: list[CallRecord]
    withdrawals: list[CallRecord] = field(default_factory=list)
    restatements: list[list[Any]] = field(default_factory=list)

    @property
    def rows(self) -> list[CallRecord]:
        return self.calls + self.withdrawals

    @property
    def superseded(self) -> int:
        return sum(1 for call in self.calls if call.superseded_by) + sum(1 for w in self.withdrawals if w.rollup_sign)


def _stored_call(row: dict[str, Any]) -> CallRecord:
    values = {name: row[name] for name in CALL_COLUMNS}
    values["start_time"] = _utc(values["start_time"])
    values["end_time"] = _utc(values["end_time"])
    values["attributes"] = dict(values["attributes"])
    values["raw_usage"] = dict(values["raw_usage"])
    values["usage_issues"] = list(values["usage_issues"])
    return CallRecord(**values)


class Reconciler:
    def __init__(self, storage: Storage, directory: Path, window: int = 500_000) -> None:
        self.storage = storage
        self.memory = SeenSpans(directory, window=window)

    def reconcile(self, calls: list[CallRecord]) -> Reconciled:
        """Mark this batch's losers superseded and withdraw stored rows a batch call beats.

        ``calls`` are the batch's fresh calls (never stored before); they are updated in place.
        Deterministic for the same batch and stored state, so a replayed batch plans the
        same rows under the same insert deduplication tokens.
        """
        groups: dict[str, list[CallRecord]] = {}
        for call in calls:
            if call.response_id:
                groups.setdefault(response_key(call), []).append(call)
        if not groups:
            return Reconciled(calls)
        stored = self._stored(
            [group[0] for key, group in groups.items() if key in self.memory],
            {call.trace_id + call.span_id for call in calls},
        )
        result = Reconciled(calls)
        withdrawn: dict[str, str] = {}  # span key -> winner span id
        for key, members in groups.items():
            earlier = stored.get(key, [])
            if len(members) + len(earlier) < 2:
                continue
            fresh = {id(call) for call in members}
            for winner, others in _calls_of([*members, *earlier]):
                for other in others:
                    if id(other) in fresh:
                        other.superseded_by = winner.span_id
                        other.rollup_sign = 0
                    elif not other.superseded_by:  # counted so far: withdraw it from the rollups
                        result.withdrawals.append(
                            dataclasses.replace(other, superseded_by=winner.span_id, rollup_sign=-1)
                        )
                        withdrawn[other.trace_id + other.span_id] = winner.span_id
                    elif other.superseded_by != winner.span_id:  # superseded already: point it at the winner
                        result.withdrawals.append(
                            dataclasses.replace(other, superseded_by=winner.span_id, rollup_sign=0)
                        )
                        withdrawn[other.trace_id + other.span_id] = winner.span_id
        if withdrawn:
            result.restatements = self._cancel_restatements(withdrawn)
        return result

    def remember(self, calls: Iterable[CallRecord]) -> None:
        """Durably note the response keys now stored (after their insert succeeded)."""
        self.memory.add(response_key(call) for call in calls if call.response_id)

    def close(self) -> None:
        self.memory.close()

    def _stored(self, probes: Sequence[CallRecord], batch_keys: set[str]) -> dict[str, list[CallRecord]]:
        """Stored rows sharing a response key with ``probes``, without the batch's own spans
        (a replayed batch finds its first attempt's rows: those are the same spans)."""
        if not probes:
            return {}
        parameters = {
            "since": (min(call.start_time for call in probes) - _WINDOW).replace(tzinfo=None),
            "until": (max(call.start_time for call in probes) + _WINDOW).replace(tzinfo=None),
            "responses": sorted({call.response_id for call in probes}),
        }
        wanted = {response_key(call) for call in probes}
        found: dict[str, list[CallRecord]] = {}
        for row in self.storage.query_named(_PACKAGE, "reconcile_twins", parameters):
            call = _stored_call(row)
            key = response_key(call)
            if key in wanted and call.trace_id + call.span_id not in batch_keys:
                found.setdefault(key, []).append(call)
        for rows in found.values():
            rows.sort(key=lambda call: call.span_id)
        return found

    def _cancel_restatements(self, withdrawn: dict[str, str]) -> list[list[Any]]:
        """One restatement per withdrawn call that still has a net delta, negating it."""
        rows: list[list[Any]] = []
        restated = self.storage.query_named(_PACKAGE, "reconcile_restated", {"keys": sorted(withdrawn)})
        if not restated:
            return rows
        calls = {
            row["trace_id"] + row["span_id"]: _stored_call(row)
            for row in self.storage.query_text(
                "SELECT * FROM calls FINAL WHERE concat(trace_id, span_id) IN {keys:Array(String)}",
                {"keys": [r["trace_id"] + r["span_id"] for r in restated]},
            )
        }
        for entry in restated:
            call = calls.get(entry["trace_id"] + entry["span_id"])
            if call is None:
                continue
            delta: Decimal = entry["cost_delta_usd"]
            winner = withdrawn[call.trace_id + call.span_id]
            stamp = f"superseded|{call.trace_id}/{call.span_id}|{winner}|{delta}"
            rows.append(
                [
                    call.trace_id, call.span_id, call.start_time, call.environment, call.service_name, call.feature,
                    call.tenant, call.user_id, call.plan, call.root_id, call.session_id, call.version, call.operation,
                    call.provider, call.request_model, call.response_model,
                    hashlib.sha256(stamp.encode()).hexdigest()[:16], (call.cost_usd or Decimal(0)) + delta,
                    call.cost_usd, -delta, -entry["input_cost_delta_usd"], -entry["output_cost_delta_usd"],
                    call.price_source, call.price_entry, call.price_data_version, call.unpriced_reason,
                    f"superseded by span {winner}",
                ]
            )  # fmt: skip
        return rows
