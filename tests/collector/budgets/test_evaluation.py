"""Budget spend and decisions against real chDB storage, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from featurecost.collector.budgets.clock import ManualClock
from featurecost.collector.budgets.config import parse_budgets
from featurecost.collector.budgets.decision import Verdict, decide
from featurecost.collector.budgets.evaluator import BudgetEvaluator, Level
from featurecost.collector.storage.client import Storage
from testsupport.budgets import insert, make_call, restate


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def evaluator(storage: Storage, yaml: str, now: datetime) -> tuple[BudgetEvaluator, ManualClock]:
    clock = ManualClock(now)
    return BudgetEvaluator(storage, parse_budgets(yaml), clock=clock), clock


DAILY_NY = """
budgets:
  - name: bot-daily
    scope: {feature: support-bot, environment: production}
    period: day
    timezone: America/New_York
    limit_usd: "10"
    soft_threshold: 80%
"""


def test_daily_spend_follows_the_budget_zone_across_midnight(storage: Storage) -> None:
    # 2026-03-07 23:59 New York (EST) = 04:59 UTC on the 8th; 00:01 = 05:01 UTC.
    insert(
        storage,
        make_call(utc(2026, 3, 8, 4, 59), "3"),  # still March 7 in New York
        make_call(utc(2026, 3, 8, 5, 1), "4"),  # March 8
        make_call(utc(2026, 3, 8, 5, 1), "100", feature="other"),  # outside the scope
        make_call(utc(2026, 3, 8, 5, 1), "100", environment="staging"),  # outside the scope
    )
    ev, clock = evaluator(storage, DAILY_NY, utc(2026, 3, 8, 4, 59, 59))
    (status,) = ev.evaluate().statuses
    assert status.period.label == "2026-03-07"
    assert status.spend_usd == Decimal("3")
    assert status.level is Level.ok

    clock.set(utc(2026, 3, 8, 5, 0, 0))  # local midnight: a new day, a new period
    (status,) = ev.evaluate().statuses
    assert status.period.label == "2026-03-08"
    assert status.spend_usd == Decimal("4")
    assert status.level is Level.ok

    insert(storage, make_call(utc(2026, 3, 9, 3, 58), "4.5"))  # 22:58 EDT, same (23-hour) day
    clock.set(utc(2026, 3, 9, 3, 59))
    (status,) = ev.evaluate().statuses
    assert status.spend_usd == Decimal("8.5")
    assert status.level is Level.soft
    assert status.remaining_usd == Decimal("1.5")

    clock.set(utc(2026, 3, 9, 4))  # 00:00 EDT on March 9
    (status,) = ev.evaluate().statuses
    assert (status.period.label, status.spend_usd, status.calls) == ("2026-03-09", Decimal(0), 0)


def test_restatement_deltas_count_in_the_period_of_the_call(storage: Storage) -> None:
    early, late = make_call(utc(2026, 3, 8, 4, 59), "3"), make_call(utc(2026, 3, 8, 12), "6")
    insert(storage, early, late)
    # Re-priced later (on March 10): the deltas still land in the calls' own days.
    restate(storage, early, "-1", utc(2026, 3, 10))
    restate(storage, late, "2.5", utc(2026, 3, 10))
    ev, clock = evaluator(storage, DAILY_NY, utc(2026, 3, 8, 13))
    (status,) = ev.evaluate().statuses
    assert status.spend_usd == Decimal("8.5")
    assert status.level is Level.soft
    clock.set(utc(2026, 3, 7, 23))
    (status,) = ev.evaluate().statuses
    assert status.spend_usd == Decimal("2")


def test_unpriced_calls_are_counted_not_free(storage: Storage) -> None:
    priced = make_call(utc(2026, 3, 8, 12), "1")
    unknown, later_priced = make_call(utc(2026, 3, 8, 12), None), make_call(utc(2026, 3, 8, 13), None)
    insert(storage, priced, unknown, later_priced)
    restate(storage, later_priced, "0.25", utc(2026, 3, 9))  # a price arrived for this one
    ev, _ = evaluator(storage, DAILY_NY, utc(2026, 3, 8, 14))
    (status,) = ev.evaluate().statuses
    assert status.calls == 3
    assert status.unpriced_calls == 1
    assert status.spend_usd == Decimal("1.25")
    assert status.to_json()["unpriced_calls"] == 1


def test_each_tenant_has_its_own_budget_and_decisions_match_scopes(storage: Storage) -> None:
    yaml = """
budgets:
  - name: tenant-monthly
    scope: {tenant: "*", environment: production}
    period: month
    limit_usd: "100"
  - name: acme-bot-alerts
    scope: {tenant: acme, feature: support-bot}
    period: month
    limit_usd: "40"
    enforce: false
"""
    insert(
        storage,
        make_call(utc(2026, 2, 28, 23, 59, 59), "500", tenant="acme"),  # February: not this month
        make_call(utc(2026, 3, 1), "50", tenant="acme"),
        make_call(utc(2026, 3, 2), "60", tenant="acme", feature="draft-email"),
        make_call(utc(2026, 3, 2), "85", tenant="globex"),
        make_call(utc(2026, 3, 2), "1", tenant="initech"),
    )
    ev, _ = evaluator(storage, yaml, utc(2026, 3, 31, 23, 59, 59))
    snapshot = ev.evaluate()
    by_key = {(s.budget.name, s.scope.get("tenant")): s for s in snapshot.statuses}
    assert by_key[("tenant-monthly", "acme")].spend_usd == Decimal("110")
    assert by_key[("tenant-monthly", "acme")].level is Level.hard
    assert by_key[("tenant-monthly", "globex")].level is Level.soft
    assert by_key[("tenant-monthly", "initech")].level is Level.ok
    assert by_key[("acme-bot-alerts", "acme")].spend_usd == Decimal("50")
    assert by_key[("acme-bot-alerts", "acme")].level is Level.hard

    def verdict(**request: str) -> Verdict:
        return decide(snapshot, {"environment": "production", **request}).verdict

    assert verdict(feature="support-bot", tenant="acme") is Verdict.deny
    assert decide(snapshot, {"environment": "production", "tenant": "acme"}).deciding is not None
    assert verdict(feature="support-bot", tenant="globex") is Verdict.soft
    assert verdict(feature="support-bot", tenant="initech") is Verdict.allow
    assert verdict(feature="support-bot", tenant="newco") is Verdict.allow  # no spend yet
    assert decide(snapshot, {"environment": "staging", "tenant": "acme"}).verdict is Verdict.allow

    globex = decide(snapshot, {"environment": "production", "tenant": "globex", "feature": "x"})
    assert globex.remaining_usd == Decimal("15")
    assert globex.to_json()["budget"] == "tenant-monthly"


def test_alert_only_budget_answers_soft_at_its_hard_level(storage: Storage) -> None:
    yaml = """
budgets:
  - name: watch
    scope: {feature: support-bot}
    period: week
    limit_usd: "5"
    enforce: false
"""
    insert(storage, make_call(utc(2026, 11, 18), "7"))
    ev, clock = evaluator(storage, yaml, utc(2026, 11, 22, 23))
    decision = decide(ev.evaluate(), {"feature": "support-bot"})
    assert decision.verdict is Verdict.soft
    assert decision.remaining_usd == Decimal(0)
    clock.advance(timedelta(hours=1))  # Monday 2026-11-23 00:00 UTC: a new week
    assert decide(ev.evaluate(), {"feature": "support-bot"}).verdict is Verdict.allow


def test_scheduled_evaluation_publishes_snapshots(storage: Storage) -> None:
    insert(storage, make_call(utc(2026, 3, 8, 12), "9"))
    ev, _ = evaluator(storage, DAILY_NY, utc(2026, 3, 8, 13))
    seen: list[object] = []
    ev.after_evaluation.append(seen.append)
    ev.interval = 3600  # one evaluation, then the thread waits on its stop event
    assert ev.snapshot is None
    ev.start()
    try:
        from testsupport.harness import wait_until

        wait_until(lambda: ev.snapshot is not None, 30, "the first evaluation")
    finally:
        ev.stop()
    assert ev.snapshot is not None
    assert ev.snapshot.statuses[0].spend_usd == Decimal("9")
    assert seen == [ev.snapshot]
