"""Alerts: rules raise findings; each is stored once per (rule, scope, period, level) and
delivered to webhooks (generic JSON or Slack-compatible) with retries.

The store comes first and delivery second, so an alert the collector raised is never
lost to a webhook outage or a restart: undelivered alerts are retried on the next run,
and each webhook that already accepted one is not sent it again.

Rules are pluggable (``AlertRule``): budget levels come from the evaluator's snapshot;
regressions and anomalous sessions are adapters over any callable that returns findings.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import httpx

from featurecost.collector.budgets.config import AlertsConfig, Webhook, WebhookFormat
from featurecost.collector.budgets.evaluator import Level, Snapshot
from featurecost.collector.storage.client import Storage

log = logging.getLogger(__name__)

_PACKAGE = "featurecost.collector.budgets"
ALERT_COLUMNS = (
    "dedupe_key", "rule", "scope", "period", "level", "title", "message", "details", "raised_at",
    "status", "attempts", "last_error", "delivered_to", "delivered_at", "revision",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a rule noticed. Same rule+scope+period+level = same alert."""

    rule: str
    scope: str
    period: str
    level: str
    title: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return "|".join((self.rule, self.scope, self.period, self.level))


class AlertRule(Protocol):
    name: str

    def findings(self, snapshot: Snapshot) -> Sequence[Finding]: ...


class BudgetRule:
    """Soft and hard budget levels, and budgets whose spend includes unpriced calls."""

    name = "budget"

    def findings(self, snapshot: Snapshot) -> Sequence[Finding]:
        found = []
        for status in snapshot.statuses:
            budget, period = status.budget, status.period
            scope = f"{budget.name}:{status.scope_key()}"
            details = status.to_json()
            where = f"{budget.name} ({status.scope_key()}), {period.kind.value} {period.label} {period.timezone}"
            if status.level is not Level.ok:
                hard = status.level is Level.hard
                threshold = budget.hard_usd if hard else budget.soft_usd
                verb = "hard limit reached" if hard else "soft threshold reached"
                action = " — calls in this scope are denied" if hard and budget.enforce else ""
                found.append(
                    Finding(
                        self.name,
                        scope,
                        period.label,
                        status.level.value,
                        f"Budget {budget.name}: {verb} ({status.used:.0%} of ${budget.limit_usd})",
                        f"{where}: spent ${status.spend_usd:.2f} of ${budget.limit_usd} "
                        f"(threshold ${threshold:.2f}){action}.",
                        details,
                    )
                )
            if status.unpriced_calls:
                found.append(
                    Finding(
                        self.name,
                        scope,
                        period.label,
                        "unpriced",
                        f"Budget {budget.name}: {status.unpriced_calls} unpriced calls",
                        f"{where}: {status.unpriced_calls} calls have no known price, so the spent "
                        f"${status.spend_usd:.2f} understates the real spend. Add a price for their model.",
                        details,
                    )
                )
        return found


class FindingsRule:
    """Adapter: any callable ``(now) -> findings`` as a rule, run at most every ``min_interval``.

    Regression and anomaly rules are this adapter over a query function, so the
    source of the findings can change without touching storage or delivery.
    """

    def __init__(
        self, name: str, source: Callable[[datetime], Sequence[Finding]], min_interval: timedelta = timedelta(0)
    ) -> None:
        self.name = name
        self.source = source
        self.min_interval = min_interval
        self._last_run: datetime | None = None

    def findings(self, snapshot: Snapshot) -> Sequence[Finding]:
        now = snapshot.evaluated_at
        if self._last_run is not None and now - self._last_run < self.min_interval:
            return ()
        found = self.source(now)
        self._last_run = now
        return found


class AlertStatus(StrEnum):
    pending = "pending"  # some webhook has not accepted it yet
    delivered = "delivered"
    failed = "failed"  # a webhook refused it for good (4xx) or attempts ran out
    stored = "stored"  # no webhook configured: kept for `featurecost budgets alerts`


@dataclass(frozen=True, slots=True)
class Alert:
    finding: Finding
    raised_at: datetime
    status: AlertStatus
    attempts: int = 0
    last_error: str = ""
    delivered_to: tuple[str, ...] = ()
    delivered_at: datetime | None = None
    revision: int = 0

    def row(self) -> list[Any]:
        f = self.finding
        return [
            f.dedupe_key, f.rule, f.scope, f.period, f.level, f.title, f.message,
            json.dumps(f.details, sort_keys=True, default=str), self.raised_at, self.status.value,
            self.attempts, self.last_error, list(self.delivered_to), self.delivered_at, self.revision,
        ]  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Alert:
        finding = Finding(
            row["rule"], row["scope"], row["period"], row["level"], row["title"], row["message"],
            json.loads(row["details"] or "{}"),
        )  # fmt: skip
        return cls(
            finding,
            _aware(row["raised_at"]),
            AlertStatus(row["status"]),
            int(row["attempts"]),
            row["last_error"],
            tuple(row["delivered_to"]),
            None if row["delivered_at"] is None else _aware(row["delivered_at"]),
            int(row["revision"]),
        )

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "source": "featurecost",
            "dedupe_key": f.dedupe_key,
            "rule": f.rule,
            "scope": f.scope,
            "period": f.period,
            "level": f.level,
            "title": f.title,
            "message": f.message,
            "details": f.details,
            "raised_at": self.raised_at.isoformat(),
        }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class AlertStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def known(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        rows = self.storage.query_named(_PACKAGE, "alert_known_keys", {"keys": list(keys)})
        return {row["dedupe_key"] for row in rows}

    def save(self, alert: Alert) -> None:
        self.storage.insert_rows("alerts", [alert.row()], ALERT_COLUMNS)

    def claim(self, alert: Alert, attempt: int, collector: str, lease_seconds: int) -> bool:
        """Claim delivering ``attempt`` of ``alert`` for ``collector``; True when it is ours.

        Every collector that finds the alert pending claims it, then all read the same winner
        (the earliest live claim), so one of them sends it and the others skip it.
        """
        key = alert.finding.dedupe_key
        self.storage.insert_rows(
            "alert_claims",
            [[key, attempt, collector]],
            ("dedupe_key", "attempt", "collector"),
            # on a cluster the claim must be on its shard before the winner is read, not queued
            settings={"distributed_foreground_insert": 1},
        )
        rows = self.storage.query_named(
            _PACKAGE, "alert_claim_winner", {"key": key, "attempt": attempt, "lease_seconds": lease_seconds}
        )
        return bool(rows) and rows[0]["collector"] == collector

    def pending(self, max_attempts: int) -> list[Alert]:
        rows = self.storage.query_named(_PACKAGE, "alert_pending", {"max_attempts": max_attempts})
        return [Alert.from_row(row) for row in rows]

    def recent(self, limit: int = 50) -> list[Alert]:
        return [Alert.from_row(row) for row in self.storage.query_named(_PACKAGE, "alert_recent", {"limit": limit})]


def payload(alert: Alert, fmt: WebhookFormat) -> dict[str, Any]:
    if fmt is WebhookFormat.json:
        return alert.to_json()
    f = alert.finding
    context = f"rule `{f.rule}` · scope `{f.scope}` · period `{f.period}` · level `{f.level}`"
    return {
        "text": f"{f.title}\n{f.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f.message}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class _Permanent(Exception):
    pass


class WebhookNotifier:
    """POSTs alerts with retries: connection errors, 429 and 5xx are retried with
    exponential backoff; another 4xx is final (the payload or URL is wrong)."""

    def __init__(
        self,
        webhooks: Sequence[Webhook],
        *,
        client: httpx.Client | None = None,
        tries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.webhooks = list(webhooks)
        self.client = client or httpx.Client(timeout=10)
        self.tries = tries
        self.backoff = backoff
        self.sleep = sleep

    def send(self, webhook: Webhook, alert: Alert) -> None:
        """Deliver to one webhook or raise (``_Permanent`` when retrying cannot help)."""
        body = payload(alert, webhook.format)
        error = ""
        for attempt in range(self.tries):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.post(webhook.url, json=body, headers=webhook.headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code != 429 and response.status_code < 500:
                raise _Permanent(error)
        raise RuntimeError(error)

    def close(self) -> None:
        self.client.close()


def collector_identity() -> str:
    """This process, as alert claims name it: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# Longer than delivering to every webhook with retries takes; a claimer that died is replaced after it.
CLAIM_LEASE_SECONDS = 600


class AlertManager:
    """One evaluation's alerting: collect findings, store the new ones, deliver what is pending.

    Several collectors may share the storage (replicas behind a load balancer, each running
    the evaluator): the alert row is one row whoever stores it (ReplacingMergeTree, read
    with FINAL), and each delivery attempt is claimed first, so one collector sends it.
    """

    def __init__(
        self,
        store: AlertStore,
        config: AlertsConfig,
        rules: Sequence[AlertRule],
        notifier: WebhookNotifier | None = None,
        *,
        collector: str | None = None,
        claim_lease_seconds: int = CLAIM_LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.config = config
        self.rules = list(rules)
        self.notifier = notifier or WebhookNotifier(config.webhooks)
        self.collector = collector or collector_identity()
        self.claim_lease_seconds = claim_lease_seconds

    def __call__(self, snapshot: Snapshot) -> None:
        self.raise_new(snapshot)
        self.deliver_pending(snapshot.evaluated_at)

    def raise_new(self, snapshot: Snapshot) -> list[Alert]:
        findings: dict[str, Finding] = {}
        for rule in self.rules:
            try:
                for finding in rule.findings(snapshot):
                    findings.setdefault(finding.dedupe_key, finding)
            except Exception:
                log.exception("alert rule %s failed", rule.name)
        known = self.store.known(list(findings))
        status = AlertStatus.pending if self.notifier.webhooks else AlertStatus.stored
        raised = []
        for key, finding in findings.items():
            if key in known:
                continue
            alert = Alert(finding, snapshot.evaluated_at, status)
            self.store.save(alert)
            raised.append(alert)
            log.warning("alert: %s — %s", finding.title, finding.message)
        return raised

    def deliver_pending(self, now: datetime) -> list[Alert]:
        results = []
        for alert in self.store.pending(self.config.max_attempts):
            if not self.store.claim(alert, alert.attempts + 1, self.collector, self.claim_lease_seconds):
                continue  # another collector is delivering this attempt
            delivered, error, permanent = list(alert.delivered_to), "", False
            for webhook in self.notifier.webhooks:
                if webhook.url in delivered:
                    continue
                try:
                    self.notifier.send(webhook, alert)
                    delivered.append(webhook.url)
                except _Permanent as exc:
                    error, permanent = str(exc), True
                except Exception as exc:
                    error = str(exc)
            attempts = alert.attempts + 1
            if len(delivered) == len(self.notifier.webhooks):
                status = AlertStatus.delivered
            elif permanent or attempts >= self.config.max_attempts:
                status = AlertStatus.failed
                log.error("alert %s not delivered: %s", alert.finding.dedupe_key, error)
            else:
                status = AlertStatus.pending
            updated = replace(
                alert,
                status=status,
                attempts=attempts,
                last_error=error,
                delivered_to=tuple(delivered),
                delivered_at=now if status is AlertStatus.delivered else None,
                revision=alert.revision + 1,
            )
            self.store.save(updated)
            results.append(updated)
        return results
