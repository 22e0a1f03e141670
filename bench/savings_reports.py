"""The savings finder over many calls: how long whatif, batch, cache-opportunity and the
top-savings ranking take, and how many calls per second whatif re-prices.

Generates N calls (default 1M, 13 weeks, 8 features) into chDB as bench/reports_10m.py
does, with the savings attributes set: a quarter of the calls carry
``featurecost.latency = background``, the rest a prompt-prefix fingerprint (one of 50
prefixes of 8,192 characters). whatif re-prices every call of one feature (1/8 of N) in
Python through the pricer, so its time grows with the feature's calls; the others
aggregate in SQL first. Not a test: run it by hand.

    .venv/bin/python bench/savings_reports.py [--calls 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.reports_10m import CHUNK, DAYS, GENERATE, START, timed
from featurecost.collector.reports import Window
from featurecost.collector.reports.batch import batch_opportunity
from featurecost.collector.reports.cache_opportunity import cache_opportunity
from featurecost.collector.reports.opportunities import opportunities
from featurecost.collector.reports.whatif import Target, whatif
from featurecost.collector.storage.client import Storage

# the same calls as reports_10m, plus the attributes the savings finder reads
SAVINGS = GENERATE.replace("unpriced_reason)\nSELECT", "unpriced_reason, attributes)\nSELECT").replace(
    "AS unpriced_reason\nFROM",
    "AS unpriced_reason,\n"
    "    if(number % 4 = 0, map('featurecost.latency', 'background'),\n"
    "       map('featurecost.prompt.prefix_hash', lower(hex(cityHash64(session, 7) % 50)),\n"
    "           'featurecost.prompt.prefix_class', '8192')) AS attributes\nFROM",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assert SAVINGS != GENERATE, "reports_10m's generator changed: update the attribute splice"
    path = Path(tempfile.mkdtemp(prefix="featurecost-savings-bench-"))
    storage = Storage(f"chdb://{path}")
    try:
        storage.migrate()
        for offset in range(0, args.calls, CHUNK):
            storage.command(
                SAVINGS,
                {"start": START.replace(tzinfo=None), "seconds": DAYS * 86400, "offset": offset,
                 "count": min(CHUNK, args.calls - offset)},
            )  # fmt: skip
        window = Window(START, START + timedelta(days=DAYS))
        feature_calls = storage.query_text(
            "SELECT count() AS n FROM calls FINAL WHERE feature = 'summarize' AND environment = 'production'"
        )[0]["n"]
        print(f"{storage.stored_calls():,} calls; whatif re-prices {feature_calls:,} (feature summarize)")
        reports: dict[str, Any] = {
            "whatif summarize -> gpt-4o": lambda: whatif(storage, window, "summarize", Target("openai", "gpt-4o")),
            "batch": lambda: batch_opportunity(storage, window),
            "cache-opportunity": lambda: cache_opportunity(storage, window),
            "opportunities (top 3)": lambda: opportunities(storage, window),
        }
        print(f"{'report':<28} {'median s':>9}")
        for name, report in reports.items():
            seconds = timed(report, args.repeat)
            extra = f"  ({feature_calls / seconds:,.0f} calls/s)" if name.startswith("whatif") else ""
            print(f"{name:<28} {seconds:>9.3f}{extra}")
    finally:
        storage.close()
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
