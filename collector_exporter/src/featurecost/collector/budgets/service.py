"""Assemble the budget evaluator and its alert rules for a running collector."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from featurecost.collector.budgets.alerts import (
    AlertManager,
    AlertRule,
    AlertStore,
    BudgetRule,
    FindingsRule,
    WebhookNotifier,
)
from featurecost.collector.budgets.clock import Clock
from featurecost.collector.budgets.config import BudgetsConfig
from featurecost.collector.budgets.evaluator import BudgetEvaluator
from featurecost.collector.budgets.findings import anomalous_sessions, session_cost_regressions
from featurecost.collector.storage.client import Storage


def alert_rules(storage: Storage, config: BudgetsConfig) -> list[AlertRule]:
    switches = config.alerts.rules
    rules: list[AlertRule] = []
    if switches.budgets:
        rules.append(BudgetRule())
    if switches.regressions:
        # Weekly medians move slowly: once an hour is plenty.
        rules.append(FindingsRule("regression", partial(session_cost_regressions, storage), timedelta(hours=1)))
    if switches.anomalous_sessions:
        rules.append(FindingsRule("anomalous-session", partial(anomalous_sessions, storage), timedelta(minutes=10)))
    return rules


def build_evaluator(
    storage: Storage,
    config: BudgetsConfig,
    *,
    interval: float = 60.0,
    clock: Clock | None = None,
    notifier: WebhookNotifier | None = None,
) -> BudgetEvaluator:
    manager = AlertManager(AlertStore(storage), config.alerts, alert_rules(storage, config), notifier)
    return BudgetEvaluator(storage, config, clock=clock, interval=interval, after_evaluation=[manager])
