"""Reports over months of calls: rollups vs raw ``calls FINAL``, measured in one run.

Generates N calls (default 10M, ~13 weeks, 8 features, 200 tenants, 5 calls per user
action, 3 actions per session, 1 % unpriced, 5 % staging) straight into chDB with
INSERT ... SELECT FROM numbers() — the materialized views build the rollups as in
production — then times each report from the rollups and from the raw source and
prints the ratio. Not a test: run it by hand.

    .venv/bin/python bench/reports_10m.py [--calls 10000000] [--repeat 3] [--dir /tmp/fc-bench]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurecost.collector.reports import (
    Dimension,
    Source,
    Window,
    breakdown,
    decomposition,
    outliers,
    regressions,
    shared_cost_allocation,
    tenant_margin,
    weekly_features,
)
from featurecost.collector.storage.client import Storage

START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
DAYS = 91
CHUNK = 1_000_000

GENERATE = """
INSERT INTO calls (trace_id, span_id, start_time, end_time, environment, service_name, feature, tenant, user_id,
    plan, root_id, session_id, version, operation, provider, request_model, response_model, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, usage_source, status, cost_usd,
    input_cost_usd, output_cost_usd, price_source, price_data_version, unpriced_reason)
SELECT
    lower(hex(cityHash64(action))) AS trace_id,
    lower(hex(number)) AS span_id,
    toDateTime64({start:DateTime}, 6, 'UTC') + toIntervalSecond(cityHash64(session) % {seconds:UInt64})
        + toIntervalSecond((number % 15) * 20) AS start_time,
    start_time + toIntervalSecond(2) AS end_time,
    if(cityHash64(session, 9) % 20 = 0, 'staging', 'production') AS environment,
    'bench' AS service_name,
    ['support-bot', 'draft-email', 'summarize', 'search', 'embeddings', 'agent', 'classify', 'unattributed']
        [1 + cityHash64(session, 1) % 8] AS feature,
    concat('tenant-', toString(cityHash64(session, 2) % 200)) AS tenant,
    concat('user-', toString(cityHash64(session, 3) % 5000)) AS user_id,
    ['free', 'pro', 'enterprise'][1 + cityHash64(session, 2) % 3] AS plan,
    toString(action) AS root_id,
    toString(session) AS session_id,
    ['v1', 'v2'][1 + session % 2] AS version,
    'chat' AS operation,
    if(feature IN ('draft-email', 'agent'), 'anthropic', 'openai') AS provider,
    if(provider = 'anthropic', 'claude-sonnet-4-6', 'gpt-4o-mini') AS request_model,
    request_model AS response_model,
    500 + cityHash64(number, 4) % 3000 AS input_tokens,
    50 + cityHash64(number, 5) % 800 AS output_tokens,
    if(number % 3 = 0, input_tokens / 2, 0) AS cache_read_tokens,
    if(provider = 'anthropic' AND number % 7 = 0, 200, 0) AS cache_write_tokens,
    0 AS reasoning_tokens,
    'reported' AS usage_source,
    'ok' AS status,
    if(number % 100 = 0, NULL,
       toDecimal128(input_tokens * if(provider = 'anthropic', 3, 0.15)
                    + output_tokens * if(provider = 'anthropic', 15, 0.6), 18) / 1000000) AS cost_usd,
    cost_usd AS input_cost_usd,
    toDecimal128(0, 18) AS output_cost_usd,
    if(cost_usd IS NULL, '', 'bench') AS price_source,
    'bench' AS price_data_version,
    if(cost_usd IS NULL, 'no price for bench/model', '') AS unpriced_reason
FROM (SELECT number, intDiv(number, 5) AS action, intDiv(number, 15) AS session
      FROM numbers({offset:UInt64}, {count:UInt64}))
"""


def timed(fn: Callable[[], Any], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="chDB directory (default: a temporary one)")
    args = parser.parse_args()
    path = args.dir or Path(tempfile.mkdtemp(prefix="featurecost-bench-"))
    storage = Storage(f"chdb://{path}")
    try:
        storage.migrate()
        began = time.perf_counter()
        for offset in range(0, args.calls, CHUNK):
            storage.command(
                GENERATE,
                {"start": START.replace(tzinfo=None), "seconds": DAYS * 86400, "offset": offset,
                 "count": min(CHUNK, args.calls - offset)},
            )  # fmt: skip
        load = time.perf_counter() - began
        stored = storage.stored_calls()
        counts = {
            table: storage.query_text(f"SELECT count() AS n FROM {table}")[0]["n"]
            for table in ("rollup_hourly", "rollup_actions")
        }
        print(f"loaded {stored:,} calls in {load:.1f}s (rollup_hourly {counts['rollup_hourly']:,} rows, "
              f"rollup_actions {counts['rollup_actions']:,} rows)")  # fmt: skip
        # Time reports as they run in steady state, not against the load's own merges.
        settle = time.perf_counter()
        while storage.query_text("SELECT count() AS n FROM system.merges")[0]["n"]:
            if time.perf_counter() - settle > 600:
                print("merges still running after 600s; timing anyway")
                break
            time.sleep(1)
        print(f"background merges settled after {time.perf_counter() - settle:.0f}s")
        window = Window(START, START + timedelta(days=DAYS))
        reports: dict[str, Callable[[Source], Any]] = {
            "weekly (13 weeks)": lambda s: weekly_features(storage, window, s),
            "breakdown by tenant": lambda s: breakdown(storage, window, Dimension.tenant, source=s),
            "top-10 outliers": lambda s: outliers(storage, window, 10, s),
            "decomposition": lambda s: decomposition(storage, window, s),
            "regressions": lambda s: regressions(storage, window, s),
            "margin": lambda s: tenant_margin(storage, window, s),
            "allocation": lambda s: shared_cost_allocation(storage, window, ["embeddings"], s),
        }
        print(f"{'report':<22} {'rollup s':>9} {'raw s':>9} {'raw/rollup':>10}")
        for name, report in reports.items():
            assert report(Source.rollup) == report(Source.raw), f"{name}: rollup and raw disagree"
            rollup = timed(lambda r=report: r(Source.rollup), args.repeat)  # type: ignore[misc]
            raw = timed(lambda r=report: r(Source.raw), args.repeat)  # type: ignore[misc]
            print(f"{name:<22} {rollup:>9.3f} {raw:>9.3f} {raw / rollup:>9.1f}x")
    finally:
        storage.close()
        if args.dir is None:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
