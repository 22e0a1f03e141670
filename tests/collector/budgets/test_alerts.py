"""Alerts: stored once per rule/scope/period/level, delivered to real local webhooks with retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from featurecost.collector.budgets.alerts import AlertStatus, AlertStore, WebhookNotifier
from featurecost.collector.budgets.clock import ManualClock
from featurecost.collector.budgets.config import parse_budgets
from featurecost.collector.budgets.evaluator import BudgetEvaluator, Snapshot
from featurecost.collector.budgets.findings import anomalous_sessions, session_cost_regressions
from featurecost.collector.budgets.service import build_evaluator
from featurecost.collector.storage.client import Storage
from testsupport.budgets import Receiver, insert, make_call, truncate
from testsupport.servers import serve_in_thread


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def budgets_yaml(*hooks: tuple[str, str], rules: str = "{regressions: false, anomalous_sessions: false}") -> str:
    webhooks = "".join(
        f"\n    - url: {url}\n      format: {fmt}\n      headers: {{X-Token: secret-1}}" for url, fmt in hooks
    )
    return f"""
budgets:
  - name: bot-daily
    scope: {{feature: support-bot}}
    period: day
    timezone: Europe/Berlin
    limit_usd: "10"
alerts:
  max_attempts: 3
  rules: {rules}
  webhooks:{webhooks or " []"}
"""


class Delays:
    def __init__(self) -> None:
        self.seen: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)  # backoff is recorded, not slept


def make(storage: Storage, yaml: str, now: datetime, tries: int = 3) -> tuple[BudgetEvaluator, ManualClock, Delays]:
    clock, delays = ManualClock(now), Delays()
    config = parse_budgets(yaml)
    notifier = WebhookNotifier(config.alerts.webhooks, tries=tries, backoff=0.5, sleep=delays)
    return build_evaluator(storage, config, clock=clock, notifier=notifier), clock, delays


def test_each_level_fires_once_per_period_and_again_next_period(storage: Storage) -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as url:
        ev, clock, _ = make(storage, budgets_yaml((f"{url}/hook", "json")), utc(2026, 3, 28, 12))
        insert(storage, make_call(utc(2026, 3, 28, 9), "8.5"))
        ev.evaluate()
        ev.evaluate()  # same period, same level: no second alert
        assert [r["body"]["level"] for r in receiver.received] == ["soft"]
        body = receiver.received[0]["body"]
        assert body["rule"] == "budget"
        assert body["period"] == "2026-03-28"
        assert body["details"]["spend_usd"] == "8.500000000000000000"
        assert body["dedupe_key"] == "budget|bot-daily:feature=support-bot|2026-03-28|soft"
        assert receiver.received[0]["headers"]["x-token"] == "secret-1"

        insert(storage, make_call(utc(2026, 3, 28, 10), "2"))
        ev.evaluate()
        ev.evaluate()
        assert [r["body"]["level"] for r in receiver.received] == ["soft", "hard"]
        assert "denied" in receiver.received[1]["body"]["message"]

        # Berlin's 23-hour day (DST starts 2026-03-29): the new period begins at 22:00 UTC.
        insert(storage, make_call(utc(2026, 3, 28, 23, 30), "12"))
        clock.set(utc(2026, 3, 28, 23, 45))
        ev.evaluate()
        assert [r["body"]["period"] for r in receiver.received] == ["2026-03-28", "2026-03-28", "2026-03-29"]
        assert receiver.received[2]["body"]["level"] == "hard"  # straight to hard: one alert

    stored = AlertStore(storage).recent()
    assert len(stored) == 3
    assert {a.status for a in stored} == {AlertStatus.delivered}


def test_collectors_sharing_storage_deliver_each_alert_once(storage: Storage) -> None:
    """Replicas each run the evaluator on one ClickHouse: while one collector is still sending
    an alert, another finds it pending — and must not send it a second time."""
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as url:
        yaml = budgets_yaml((f"{url}/hook", "json"))
        first, _, _ = make(storage, yaml, utc(2026, 3, 28, 12))
        second, _, _ = make(storage, yaml, utc(2026, 3, 28, 12))
        insert(storage, make_call(utc(2026, 3, 28, 9), "8.5"))
        receiver.while_first_is_open = second.evaluate  # the other replica's turn, mid-delivery
        first.evaluate()
        second.evaluate()
    assert [r["body"]["level"] for r in receiver.received] == ["soft"]
    (stored,) = AlertStore(storage).recent()
    assert (stored.status, stored.attempts) == (AlertStatus.delivered, 1)


def test_an_alert_claimed_by_a_collector_that_died_is_delivered_after_its_lease(storage: Storage) -> None:
    receiver = Receiver()
    with serve_in_thread(receiver.app()) as url:
        evaluator, _, _ = make(storage, budgets_yaml((f"{url}/hook", "json")), utc(2026, 3, 28, 12))
        insert(storage, make_call(utc(2026, 3, 28, 9), "8.5"))
        key = "budget|bot-daily:feature=support-bot|2026-03-28|soft"
        # another collector claimed the first attempt and died before sending it
        dead = [[key, 1, "dead-collector", datetime.now(UTC) - timedelta(seconds=601)]]
        storage.insert_rows("alert_claims", dead, ("dedupe_key", "attempt", "collector", "claimed_at"))
        evaluator.evaluate()
        assert [r["body"]["dedupe_key"] for r in receiver.received] == [key]  # lease (600 s) over: taken over
        truncate(storage)
        insert(storage, make_call(utc(2026, 3, 28, 9), "8.5"))
        live = [[key, 1, "live-collector", datetime.now(UTC)]]
        storage.insert_rows("alert_claims", live, ("dedupe_key", "attempt", "collector", "claimed_at"))
        evaluator.evaluate()
        assert len(receiver.received) == 1  # a live claim by another collector: this one skips
    (stored,) = AlertStore(storage).recent()
    assert stored.status is AlertStatus.pending


def test_a_500_is_retried_with_backoff_then_delivered(storage: Storage) -> None:
    receiver = Receiver(script=[500, 503])
    with serve_in_thread(receiver.app()) as url:
        ev, _, delays = make(storage, budgets_yaml((f"{url}/hook", "json")), utc(2026, 3, 28, 12))
        insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
        ev.evaluate()
    assert receiver.attempts == 3
    assert len(receiver.received) == 1
    assert delays.seen == [0.5, 1.0]
    (alert,) = AlertStore(storage).recent()
    assert alert.status is AlertStatus.delivered
    assert alert.attempts == 1


def test_an_outage_keeps_the_alert_pending_until_the_webhook_is_back(storage: Storage) -> None:
    receiver = Receiver(script=[500, 500])
    with serve_in_thread(receiver.app()) as url:
        ev, clock, _ = make(storage, budgets_yaml((f"{url}/hook", "json")), utc(2026, 3, 28, 12), tries=2)
        insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
        ev.evaluate()
        (alert,) = AlertStore(storage).recent()
        assert (alert.status, alert.attempts) == (AlertStatus.pending, 1)
        assert "HTTP 500" in alert.last_error
        assert receiver.received == []
        clock.advance(timedelta(minutes=1))
        ev.evaluate()  # next run: delivered, and still only one alert
    assert len(receiver.received) == 1
    (alert,) = AlertStore(storage).recent()
    assert (alert.status, alert.attempts) == (AlertStatus.delivered, 2)


def test_webhooks_that_accepted_are_not_sent_the_alert_again(storage: Storage) -> None:
    good, flaky = Receiver(), Receiver(script=[500, 500])
    with serve_in_thread(good.app()) as good_url, serve_in_thread(flaky.app()) as flaky_url:
        yaml = budgets_yaml((f"{good_url}/hook", "json"), (f"{flaky_url}/hook", "slack"))
        ev, _, _ = make(storage, yaml, utc(2026, 3, 28, 12), tries=2)
        insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
        ev.evaluate()
        ev.evaluate()
    assert len(good.received) == 1
    assert len(flaky.received) == 1
    slack = flaky.received[0]["body"]
    assert set(slack) == {"text", "blocks"}
    assert slack["text"].startswith("Budget bot-daily: soft threshold reached (90% of $10)")
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "context"]
    assert "2026-03-28" in slack["blocks"][2]["elements"][0]["text"]


def test_a_4xx_is_final_and_attempts_are_bounded(storage: Storage) -> None:
    receiver = Receiver(script=[404])
    with serve_in_thread(receiver.app()) as url:
        ev, _, delays = make(storage, budgets_yaml((f"{url}/hook", "json")), utc(2026, 3, 28, 12))
        insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
        ev.evaluate()
        ev.evaluate()
    assert receiver.attempts == 1
    assert delays.seen == []
    (alert,) = AlertStore(storage).recent()
    assert alert.status is AlertStatus.failed
    assert "HTTP 404" in alert.last_error


def test_unreachable_webhook_gives_up_after_max_attempts(storage: Storage) -> None:
    from testsupport.harness import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    ev, clock, _ = make(storage, budgets_yaml((dead, "json")), utc(2026, 3, 28, 12), tries=1)
    insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
    for _ in range(4):
        ev.evaluate()
        clock.advance(timedelta(minutes=1))
    (alert,) = AlertStore(storage).recent()
    assert (alert.status, alert.attempts) == (AlertStatus.failed, 3)
    assert "ConnectError" in alert.last_error


def test_unpriced_calls_raise_their_own_alert_and_stored_without_webhooks(storage: Storage) -> None:
    ev, _, _ = make(storage, budgets_yaml(), utc(2026, 3, 28, 12))
    insert(storage, make_call(utc(2026, 3, 28, 9), None), make_call(utc(2026, 3, 28, 9), "1"))
    ev.evaluate()
    (alert,) = AlertStore(storage).recent()
    assert alert.finding.level == "unpriced"
    assert alert.status is AlertStatus.stored
    assert "1 calls have no known price" in alert.finding.message


def test_regression_rule_fires_on_two_rising_weeks(storage: Storage) -> None:
    now = utc(2026, 11, 25, 12)  # Wednesday; complete weeks: Nov 2, 9, 16
    medians = {"rising": ("1.00", "1.06", "1.12"), "flat": ("1.00", "1.06", "1.07")}
    for feature, costs in medians.items():
        for week, cost in enumerate(costs):
            start = utc(2026, 11, 2, 10) + timedelta(weeks=week)
            for n in range(3):  # three sessions of two calls each per week
                session = f"{feature}-{week}-{n}"
                half = Decimal(cost) / 2
                insert(
                    storage,
                    make_call(start, half, feature=feature, session=session),
                    make_call(start + timedelta(minutes=5), half, feature=feature, session=session),
                )
    found = session_cost_regressions(storage, now)
    assert [f.scope for f in found] == ["production/rising"]
    assert found[0].period == "week-of-2026-11-16"
    assert Decimal(found[0].details["previous_p50_usd"]) == Decimal("1.06")
    assert Decimal(found[0].details["session_p50_usd"]) == Decimal("1.12")
    assert found[0].details["consecutive_weeks"] == 2


def test_anomalous_session_rule_through_the_alert_pipeline(storage: Storage) -> None:
    receiver = Receiver()
    now = utc(2026, 11, 23, 12)
    for n in range(12):  # normal weeks: $0.10 sessions, enough of them for a verdict
        insert(storage, make_call(now - timedelta(days=3, hours=n), "0.10", feature="chat", session=f"ok-{n}"))
    insert(storage, make_call(now - timedelta(hours=2), "0.15", feature="chat", session="fine"))
    insert(storage, *(make_call(now - timedelta(hours=1), "0.5", feature="chat", session="runaway") for _ in range(3)))
    assert [f.details["session_id"] for f in anomalous_sessions(storage, now)] == ["runaway"]
    with serve_in_thread(receiver.app()) as url:
        yaml = budgets_yaml((f"{url}/hook", "json"), rules="{regressions: false}")
        ev, clock, _ = make(storage, yaml, now)
        ev.evaluate()
        clock.advance(timedelta(minutes=30))
        ev.evaluate()
    bodies = [r["body"] for r in receiver.received]
    assert [b["rule"] for b in bodies] == ["anomalous-session"]
    assert bodies[0]["details"]["session_cost_usd"] == "1.500000000000000000"
    assert "15x the median" in bodies[0]["title"]


def test_a_failing_rule_does_not_stop_the_others(storage: Storage) -> None:
    from featurecost.collector.budgets.alerts import AlertManager, BudgetRule, FindingsRule

    def broken(now: datetime) -> list[Any]:
        raise RuntimeError("reports query failed")

    config = parse_budgets(budgets_yaml())
    insert(storage, make_call(utc(2026, 3, 28, 9), "9"))
    manager = AlertManager(AlertStore(storage), config.alerts, [FindingsRule("broken", broken), BudgetRule()])
    ev = BudgetEvaluator(storage, config, clock=ManualClock(utc(2026, 3, 28, 12)), after_evaluation=[manager])
    snapshot: Snapshot = ev.evaluate()
    assert snapshot.statuses[0].level.value == "soft"
    assert [a.finding.level for a in AlertStore(storage).recent()] == ["soft"]
