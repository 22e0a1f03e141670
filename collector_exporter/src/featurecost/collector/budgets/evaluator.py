"""Evaluate every budget: spend in its current period against its thresholds.

The collector runs this on a schedule (``BudgetEvaluator.start``); the last result is
the snapshot the decision API answers from, so a decision costs a dict lookup, not a
query. Spend is as fresh as the last evaluation: a burst between two evaluations can
overshoot a hard limit by what it spends in that interval (docs/budgets.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from featurecost.collector.budgets.clock import Clock, SystemClock
from featurecost.collector.budgets.config import SCOPE_DIMENSIONS, Budget, BudgetsConfig
from featurecost.collector.budgets.periods import Period, period_containing
from featurecost.collector.budgets.spend import scope_spend
from featurecost.collector.storage.client import Storage

log = logging.getLogger(__name__)


class Level(StrEnum):
    ok = "ok"
    soft = "soft"
    hard = "hard"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    scope: dict[str, str]  # the concrete values this status covers (fixed + "each" group)
    period: Period
    spend_usd: Decimal
    calls: int
    unpriced_calls: int

    @property
    def level(self) -> Level:
        if self.spend_usd >= self.budget.hard_usd:
            return Level.hard
        if self.spend_usd >= self.budget.soft_usd:
            return Level.soft
        return Level.ok

    @property
    def remaining_usd(self) -> Decimal:
        """What may still be spent before the hard limit (never negative)."""
        return max(self.budget.hard_usd - self.spend_usd, Decimal(0))

    @property
    def used(self) -> Decimal:
        return self.spend_usd / self.budget.limit_usd

    def scope_key(self) -> str:
        return ",".join(f"{d}={self.scope[d]}" for d in SCOPE_DIMENSIONS if d in self.scope) or "all"

    def matches(self, request: dict[str, str]) -> bool:
        """Does a call with these dimensions count against this status's spend?"""
        return all(request.get(dim, "") == value for dim, value in self.scope.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget.name,
            "scope": dict(self.scope),
            "period": {
                "kind": self.period.kind.value,
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "timezone": self.period.timezone,
            },
            "spend_usd": str(self.spend_usd),
            "limit_usd": str(self.budget.limit_usd),
            "soft_usd": str(self.budget.soft_usd),
            "hard_usd": str(self.budget.hard_usd),
            "remaining_usd": str(self.remaining_usd),
            "used": str(self.used),
            "level": self.level.value,
            "enforce": self.budget.enforce,
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
        }


def evaluate_budgets(storage: Storage, config: BudgetsConfig, now: datetime) -> list[BudgetStatus]:
    statuses: list[BudgetStatus] = []
    for budget in config.budgets:
        period = period_containing(budget.period, now, config.zone_of(budget), budget.week_start)
        groups = scope_spend(storage, budget.scope, period)
        fixed = budget.scope.fixed()
        if not budget.scope.each() and not groups:
            statuses.append(BudgetStatus(budget, fixed, period, Decimal(0), 0, 0))
        for group in groups:
            statuses.append(
                BudgetStatus(
                    budget, {**fixed, **group.group}, period, group.spend_usd, group.calls, group.unpriced_calls
                )
            )
    return statuses


@dataclass(frozen=True, slots=True)
class Snapshot:
    evaluated_at: datetime
    statuses: tuple[BudgetStatus, ...] = field(default_factory=tuple)


class BudgetEvaluator:
    """Runs ``evaluate_budgets`` (and then ``after_evaluation``, the alert rules) on a schedule."""

    def __init__(
        self,
        storage: Storage,
        config: BudgetsConfig,
        *,
        clock: Clock | None = None,
        interval: float = 60.0,
        after_evaluation: Sequence[Callable[[Snapshot], None]] = (),
    ) -> None:
        self.storage = storage
        self.config = config
        self.clock = clock or SystemClock()
        self.interval = interval
        self.after_evaluation = list(after_evaluation)
        self.failures = 0
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        with self._lock:
            return self._snapshot

    def evaluate(self) -> Snapshot:
        now = self.clock.now()
        snapshot = Snapshot(now, tuple(evaluate_budgets(self.storage, self.config, now)))
        with self._lock:
            self._snapshot = snapshot
        for hook in self.after_evaluation:
            hook(snapshot)
        return snapshot

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="featurecost-budgets", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate()
            except Exception:
                # Storage hiccups must not kill the schedule; the last snapshot stays.
                self.failures += 1
                log.exception("budget evaluation failed")
            self._stop.wait(self.interval)
