"""``make demo``: the main job end to end on the embedded default.

collector (chDB) ← OTLP ← sample app (real SDKs, instrumented from outside) → provider stand-in,
then the per-feature cost table and the page's URL. In a terminal the collector keeps serving
(the page, the CLI through its API) until Ctrl-C; otherwise (CI, a pipe) every process is
shut down at the end, as ``--no-serve`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from testsupport.harness import (
    Collector,
    HarnessError,
    StandIn,
    app_environment,
    run_instrumented,
    start_collector,
    start_stand_in,
)


def demo_usage_csv(now: datetime) -> str:
    """Monthly revenue and active users of the demo's tenants (see demo/app.py)."""
    period = f"{now:%Y-%m}"
    rows = [("acme", "1200", 3), ("globex", "310.50", 2), ("initech", "0", 1)]
    return "tenant,period,revenue_usd,active_users\n" + "".join(
        f"{tenant},{period},{revenue},{users}\n" for tenant, revenue, users in rows
    )


def interactive() -> bool:
    """A person at a terminal (not CI, not a pipe): worth keeping the page up for them."""
    return sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="demo state (data, logs)")
    parser.add_argument("--keep", action="store_true", help="keep data from earlier runs")
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the collector serving the page until Ctrl-C (default: only in an interactive terminal)",
    )
    args = parser.parse_args()
    serve = interactive() if args.serve is None else bool(args.serve)
    if args.dir.exists() and not args.keep:
        shutil.rmtree(args.dir)
    data_dir, log_dir = args.dir / "data", args.dir / "logs"
    collector: Collector | None = None
    stand_in: StandIn | None = None
    try:
        print("starting the collector (embedded chDB) …", flush=True)
        collector = start_collector(data_dir, log_dir)
        before = int(collector.status()["stored_calls"])
        print(f"  OTLP/HTTP {collector.otlp_endpoint}  ·  report API {collector.api_url}  ·  data {data_dir}")
        stand_in = start_stand_in(log_dir)
        print(f"starting the LLM provider stand-in … {stand_in.url}")
        print("running the sample app under opentelemetry-instrument …", flush=True)
        print("  " + run_instrumented("demo.app", app_environment(collector, stand_in), log_dir).strip())
        served = len(stand_in.served())
        print(f"waiting for the {served} LLM calls to be stored …", flush=True)
        collector.wait_for_calls(before + served)
        collector.wait_drained()
        cli = [sys.executable, "-m", "featurecost.collector.cli.app"]
        subprocess.run([*cli, "report", "features", "--api", collector.api_url], check=True)
        # The sample SaaS's revenue this month, so the weekly row and margins have a denominator.
        usage_csv = args.dir / "usage.csv"
        usage_csv.write_text(demo_usage_csv(datetime.now(UTC)))
        print(f"importing product revenue ({usage_csv}) …", flush=True)
        subprocess.run([*cli, "import", "usage", str(usage_csv), "--api", collector.api_url], check=True)
        for report in ("weekly", "margin"):
            subprocess.run([*cli, "report", report, "--days", "7", "--api", collector.api_url], check=True)
        page = f"{collector.api_url}/?environment=production"
        print(f"\nthe built-in page: {page}\n(click a feature for its tenants, models and costliest actions)")
        if serve:
            stand_in.process.stop()
            print(
                f"serving until Ctrl-C · try: featurecost report outliers --api {collector.api_url}"
                f"  ·  featurecost prices unpriced --api {collector.api_url}",
                flush=True,
            )
            try:
                collector.process.popen.wait()
            except KeyboardInterrupt:
                print("\nstopping …", flush=True)
    except HarnessError as exc:
        print(f"demo failed: {exc}\nlogs: {log_dir}", file=sys.stderr)
        return 1
    finally:
        for process in (stand_in.process if stand_in else None, collector.process if collector else None):
            if process is not None:
                code = process.stop()
                if code not in (0, -15):
                    print(f"{process.name} exited with {code}; see {process.log_path}", file=sys.stderr)
    print(f"done: all processes stopped; data kept in {data_dir} (logs in {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
