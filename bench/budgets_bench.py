"""Budget evaluation and guard overhead, as ratios against baselines measured in the same run.

    .venv/bin/python -m bench.budgets_bench [--calls 200000]

1. One budget evaluation (4 budgets: fixed scope, each tenant, each user, a month) over N
   calls in embedded chDB, against the per-feature report query over the same month.
2. The guard's check with a cached decision, and with a decision fetched from the API on
   every call (ttl=0, loopback HTTP), against calling the SDK-shaped function unguarded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from featurecost.collector.api.budgets import budget_routes
from featurecost.collector.budgets.clock import ManualClock
from featurecost.collector.budgets.config import parse_budgets
from featurecost.collector.budgets.evaluator import BudgetEvaluator
from featurecost.collector.reports import Window, feature_costs
from featurecost.collector.storage.client import Storage
from featurecost.instrumentation import attributes as attrs
from featurecost.instrumentation.guard import Guard, Price
from testsupport.budgets import make_call
from testsupport.servers import serve_in_thread

BUDGETS = """
budgets:
  - {name: bot-daily, scope: {feature: support-bot, environment: production}, period: day, limit_usd: "1000"}
  - {name: tenant-monthly, scope: {tenant: "*"}, period: month, limit_usd: "1000"}
  - {name: user-weekly, scope: {user: "*", environment: production}, period: week, limit_usd: "10"}
  - {name: all-monthly, period: month, timezone: America/New_York, limit_usd: "100000"}
alerts: {rules: {budgets: false, regressions: false, anomalous_sessions: false}}
"""


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def seed(storage: Storage, calls: int, now: datetime) -> None:
    rng = random.Random(7)
    features = ("support-bot", "draft-email", "summarize-thread", "search")
    batch = []
    for _ in range(calls):
        start = now - timedelta(seconds=rng.randrange(30 * 86400))
        batch.append(
            make_call(
                start,
                Decimal(rng.randrange(1, 5000)) / 100000,
                feature=rng.choice(features),
                tenant=f"t-{rng.randrange(50)}",
                user=f"u-{rng.randrange(2000)}",
                environment="production" if rng.random() < 0.9 else "staging",
            )
        )
        if len(batch) == 20000:
            storage.insert_calls(batch, uuid.uuid4().hex)
            batch = []
    if batch:
        storage.insert_calls(batch, uuid.uuid4().hex)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(f"chdb://{Path(tmp) / 'clickhouse'}")
        storage.migrate()
        seed(storage, args.calls, now)
        evaluator = BudgetEvaluator(storage, parse_budgets(BUDGETS), clock=ManualClock(now))
        month = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
        report = timed(lambda: feature_costs(storage, month), 5)
        evaluate = timed(evaluator.evaluate, 5)
        statuses = len(evaluator.snapshot.statuses) if evaluator.snapshot else 0
        print(f"{args.calls:,} calls, {statuses:,} budget statuses")
        print(f"  report query (baseline)   {report * 1000:8.1f} ms")
        print(f"  budget evaluation         {evaluate * 1000:8.1f} ms   ratio {evaluate / report:5.2f}x")

        def sdk_call(**kwargs: Any) -> dict[str, Any]:
            return kwargs

        request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 50}]}
        attribution = {attrs.FEATURE: "support-bot", attrs.TENANT: "t-1", attrs.USER: "u-1", attrs.SESSION: "s"}
        prices = {"gpt-4o-mini": Price(Decimal("0.15"), Decimal("0.60"))}
        n = 2000
        with serve_in_thread(Starlette(routes=budget_routes(evaluator))) as url:
            cached = Guard(url, prices=prices, ttl=3600)
            uncached = Guard(url, prices=prices, ttl=0)

            def loop(guard: Guard | None) -> Callable[[], None]:
                def run() -> None:
                    for _ in range(n):
                        kwargs = request if guard is None else guard.check(request, attribution).kwargs
                        sdk_call(**kwargs)

                return run

            base = timed(loop(None), 3) / n
            hit = timed(loop(cached), 3) / n
            miss = timed(loop(uncached), 1) / n
        print("guard per call")
        print(f"  unguarded (baseline)      {base * 1e6:8.2f} µs")
        print(f"  cached decision           {hit * 1e6:8.2f} µs   ratio {hit / base:7.1f}x")
        print(f"  decision over HTTP        {miss * 1e6:8.2f} µs   ratio {miss / base:7.1f}x")
        storage.close()


if __name__ == "__main__":
    main()
