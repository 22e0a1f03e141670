"""The budget decision for one call: allow, soft (degrade) or deny.

Every budget status whose scope covers the call's feature/tenant/user/environment is
consulted and the strictest answer wins: a hard level on an enforced budget denies,
any other soft or hard level answers soft, otherwise allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from featurecost.collector.budgets.evaluator import BudgetStatus, Level, Snapshot


class Verdict(StrEnum):
    allow = "allow"
    soft = "soft"
    deny = "deny"


_RANK = {Verdict.allow: 0, Verdict.soft: 1, Verdict.deny: 2}


def verdict_of(status: BudgetStatus) -> Verdict:
    if status.level is Level.hard:
        return Verdict.deny if status.budget.enforce else Verdict.soft
    if status.level is Level.soft:
        return Verdict.soft
    return Verdict.allow


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    evaluated_at: datetime
    deciding: BudgetStatus | None  # the status behind the verdict (None when nothing matched)
    matched: tuple[BudgetStatus, ...]

    @property
    def remaining_usd(self) -> Decimal | None:
        """Least headroom before any matching hard limit."""
        return min((s.remaining_usd for s in self.matched), default=None)

    def to_json(self) -> dict[str, Any]:
        remaining = self.remaining_usd
        return {
            "decision": self.verdict.value,
            "evaluated_at": self.evaluated_at.isoformat(),
            "budget": None if self.deciding is None else self.deciding.budget.name,
            "remaining_usd": None if remaining is None else str(remaining),
            "unpriced_calls": sum(s.unpriced_calls for s in self.matched),
            "budgets": [s.to_json() for s in self.matched],
        }


def decide(snapshot: Snapshot, request: dict[str, str]) -> Decision:
    matched = tuple(s for s in snapshot.statuses if s.matches(request))
    deciding: BudgetStatus | None = None
    verdict = Verdict.allow
    for status in matched:
        candidate = verdict_of(status)
        # Strictest wins; between equals, the one closest to its hard limit.
        if (
            deciding is None
            or _RANK[candidate] > _RANK[verdict]
            or (_RANK[candidate] == _RANK[verdict] and status.remaining_usd < deciding.remaining_usd)
        ):
            deciding, verdict = status, candidate
    return Decision(verdict, snapshot.evaluated_at, deciding, matched)
