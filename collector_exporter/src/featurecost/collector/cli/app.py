"""``featurecost``: run the collector, read the money."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from featurecost.collector.cli.budgets import budgets_app, load_budgets_option
from featurecost.collector.cli.imports import import_app
from featurecost.collector.cli.options import hide_flag_types, opened_storage
from featurecost.collector.cli.output import console as cli_console
from featurecost.collector.cli.output import money, plain_numbers, text
from featurecost.collector.cli.prices import check_prices_file, prices_app
from featurecost.collector.cli.reports import DAYS, DEFAULT_API, Days, Format, explain_empty, fetch, window
from featurecost.collector.cli.reports import register as register_reports
from featurecost.collector.cli.storage import storage_app
from featurecost.collector.config import ConfigError, build_config
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT
from featurecost.collector.reports import FeatureCostRow, ReportOptions, feature_costs
from featurecost.collector.server import StartupError, serve
from featurecost.collector.version import __version__
from featurecost.collector.workers import check_leftover_wals, supervise

hide_flag_types()
app = typer.Typer(help="featurecost: which feature, tenant and user is eating your LLM bill.", no_args_is_help=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"featurecost {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """featurecost: which feature, tenant and user is eating your LLM bill."""


report_app = typer.Typer(help="Read costs (through the collector's API, or straight from storage).")
app.add_typer(report_app, name="report")
app.add_typer(storage_app, name="storage")
app.add_typer(budgets_app, name="budgets")
app.add_typer(prices_app, name="prices")
register_reports(report_app)
app.add_typer(import_app, name="import")

_DEFAULT_NOTE = re.compile(r"\s*\[default: ([^\]]+)\]")


def _opt(envvar: str, help: str, *decls: str, **kwargs: Any) -> Any:
    # The defaults live in CollectorConfig (a file may set them), so the option's own
    # default is None and the help names the effective default.
    note = _DEFAULT_NOTE.search(help)
    if note:
        kwargs.setdefault("show_default", note.group(1))
        help = _DEFAULT_NOTE.sub("", help)
    return typer.Option(*decls, envvar=f"FEATURECOST_{envvar}", help=help, **kwargs)


@app.command()
def collector(
    config_file: Annotated[
        Path | None,
        _opt("CONFIG", "TOML config file (flags and FEATURECOST_* env override it).", "--config", exists=True),
    ] = None,
    data_dir: Annotated[
        Path | None, _opt("DATA_DIR", "Where the WAL (and embedded chDB data) live. [default: ./featurecost-data]")
    ] = None,
    storage: Annotated[
        str | None,
        _opt(
            "STORAGE",
            "clickhouse-connect DSN: chdb:///path (embedded) or http(s)://user:pass@host:8123/db. "
            "[default: chDB in DATA_DIR/clickhouse]",
        ),
    ] = None,
    host: Annotated[str | None, _opt("HOST", "Interface to listen on. [default: 127.0.0.1]")] = None,
    otlp_http_port: Annotated[int | None, _opt("OTLP_HTTP_PORT", "OTLP/HTTP port. [default: 4318]")] = None,
    otlp_grpc_port: Annotated[
        int | None, _opt("OTLP_GRPC_PORT", "OTLP/gRPC port; -1 disables gRPC. [default: 4317]")
    ] = None,
    api_port: Annotated[int | None, _opt("API_PORT", "Report API, health and /metrics. [default: 8787]")] = None,
    max_body_bytes: Annotated[
        int | None, _opt("MAX_BODY_BYTES", "Largest OTLP request (after gunzip). [default: 16 MiB]")
    ] = None,
    max_inflight_bytes: Annotated[
        int | None,
        _opt("MAX_INFLIGHT_BYTES", "OTLP/HTTP bodies held at once before 503 + Retry-After. [default: 512 MiB]"),
    ] = None,
    wal_max_bytes: Annotated[
        int | None, _opt("WAL_MAX_BYTES", "Unstored WAL bytes before backpressure (503). [default: 2 GiB]")
    ] = None,
    wal_max_age_seconds: Annotated[
        float | None, _opt("WAL_MAX_AGE_SECONDS", "Age of the oldest unstored data before backpressure.")
    ] = None,
    wal_min_free_disk_bytes: Annotated[
        int | None, _opt("WAL_MIN_FREE_DISK_BYTES", "Free disk to keep; below it: backpressure. [default: 256 MiB]")
    ] = None,
    batch_rows: Annotated[int | None, _opt("BATCH_ROWS", "Calls per insert batch. [default: 50000]")] = None,
    flush_interval: Annotated[
        float | None, _opt("FLUSH_INTERVAL", "Seconds a partial batch waits for more. [default: 0.5]")
    ] = None,
    retention_days: Annotated[
        int | None, _opt("RETENTION_DAYS", "Calls older than this are dropped at ingest. [default: 400]")
    ] = None,
    max_future_skew_seconds: Annotated[
        float | None,
        _opt("MAX_FUTURE_SKEW_SECONDS", "Spans starting/ending later than now + this are rejected. [default: 3600]"),
    ] = None,
    auth_token: Annotated[
        str | None, _opt("AUTH_TOKEN", "Require 'Authorization: Bearer TOKEN' on OTLP ingest.")
    ] = None,
    api_token: Annotated[
        str | None,
        _opt("API_TOKEN", "Require 'Authorization: Bearer TOKEN' on the API (all but /healthz, /readyz)."),
    ] = None,
    admin_token: Annotated[
        str | None, _opt("ADMIN_TOKEN", "Token for API writes (usage import, rollup rebuild). [default: --api-token]")
    ] = None,
    metrics_public: Annotated[
        bool | None, _opt("METRICS_PUBLIC", "Serve /metrics without a token.", "--metrics-public/--no-metrics-public")
    ] = None,
    api_max_body_bytes: Annotated[
        int | None, _opt("API_MAX_BODY_BYTES", "Largest request body the API accepts. [default: 8 MiB]")
    ] = None,
    tls_cert: Annotated[
        Path | None, _opt("TLS_CERT", "PEM certificate chain: serve OTLP and the API over TLS.")
    ] = None,
    tls_key: Annotated[Path | None, _opt("TLS_KEY", "PEM private key for --tls-cert.")] = None,
    forward_endpoint: Annotated[
        str | None, _opt("FORWARD_ENDPOINT", "Also send priced spans (cost attributes added) to this OTLP/HTTP URL.")
    ] = None,
    drain_timeout: Annotated[
        float | None, _opt("DRAIN_TIMEOUT", "Seconds to store what the WAL holds on SIGTERM. [default: 30]")
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="FEATURECOST_LOG_LEVEL")] = "INFO",
    budgets_file: Annotated[
        Path | None,
        typer.Option(envvar="FEATURECOST_BUDGETS_FILE", help="YAML budgets and alerts (docs/budgets.md)."),
    ] = None,
    budget_interval: Annotated[
        float | None, _opt("BUDGET_INTERVAL", "Seconds between budget evaluations. [default: 60]")
    ] = None,
    workers: Annotated[
        int | None,
        _opt(
            "WORKERS",
            "Collector processes sharing the OTLP ports, one per core to use; on embedded chDB "
            "worker 0 owns the engine and the others store through it. [default: 1]",
            min=1,
        ),
    ] = None,
    prices_file: Annotated[
        Path | None,
        typer.Option(
            envvar="FEATURECOST_PRICES_FILE",
            help="YAML prices file: contract prices, discounts, "
            "self-hosted models (docs/pricing.md). Checked at start-up.",
        ),
    ] = None,
) -> None:
    """Run the collector: OTLP/HTTP on --otlp-http-port, OTLP/gRPC on --otlp-grpc-port,
    report API, /healthz, /readyz and /metrics on --api-port."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(
            config_file,
            {
                "data_dir": data_dir,
                "storage_dsn": storage,
                "host": host,
                "otlp_http_port": otlp_http_port,
                "otlp_grpc_port": otlp_grpc_port,
                "api_port": api_port,
                "max_body_bytes": max_body_bytes,
                "max_inflight_bytes": max_inflight_bytes,
                "wal_max_bytes": wal_max_bytes,
                "wal_max_age_seconds": wal_max_age_seconds,
                "wal_min_free_disk_bytes": wal_min_free_disk_bytes,
                "batch_rows": batch_rows,
                "flush_interval": flush_interval,
                "retention_days": retention_days,
                "max_future_skew_seconds": max_future_skew_seconds,
                "auth_token": auth_token,
                "api_token": api_token,
                "admin_token": admin_token,
                "metrics_public": metrics_public,
                "api_max_body_bytes": api_max_body_bytes,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "forward_endpoint": forward_endpoint,
                "drain_timeout": drain_timeout,
                "prices_file": prices_file,
                "budgets_file": budgets_file,
                "budget_interval": budget_interval,
                "workers": workers,
            },
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    check_prices_file(config.prices_file)
    budgets = load_budgets_option(config.budgets_file)
    try:
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot use the data directory {config.data_dir}: {exc}") from exc
        check_leftover_wals(config)
        if config.workers > 1:
            code = supervise(config, log_level)
            if code:
                raise typer.Exit(code)
        else:
            asyncio.run(serve(config, budgets=budgets))
    except StartupError as exc:  # one line, no traceback: the operator fixes a port or a directory
        console = Console(stderr=True, soft_wrap=True)
        console.print(f"featurecost collector: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from exc


def render_feature_costs(rows: list[FeatureCostRow], console: Console, title: str) -> None:
    table = Table(title=text(title), title_justify="left")
    widest = max([7, *(len(r.feature) for r in rows)])
    table.add_column("feature", overflow="fold", min_width=min(widest, 24))
    # sessions and cache writes are in --format json/csv; the table fits 120 columns without them
    for header in ("calls", "actions", "input tok", "output tok", "cache read"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("unpriced", justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            text(r.feature),
            f"{r.calls:,}",
            f"{r.actions:,}",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cache_read_tokens:,}",
            money(r.cost_usd),
            "" if r.share is None else f"{r.share * 100:.1f}%",
            f"{r.unpriced_calls:,}" if r.unpriced_calls else "",
        )
    total = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    table.caption = f"total priced spend {money(total)}"
    console.print(table)
    for r in rows:
        for reason in r.unpriced_reasons:
            line = Text("unpriced ", style="yellow")
            line.append_text(text(f"{r.feature}: {reason}"))
            console.print(line, soft_wrap=True)


@report_app.command("features")
def report_features(
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (default: --days before --until).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    days: Days = DAYS,
    env: Annotated[
        str, typer.Option(help="deployment.environment.name; 'all' for every environment.")
    ] = DEFAULT_ENVIRONMENT,
    feature: Annotated[str, typer.Option(help="Only this feature.")] = "",
    tenant: Annotated[str, typer.Option(help="Only this tenant's calls.")] = "",
    api: Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector report API.")] = DEFAULT_API,
    storage: Annotated[
        str | None,
        typer.Option(envvar="FEATURECOST_STORAGE", help="Read this DSN directly instead of the API."),
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
) -> None:
    """Per-feature cost: calls, actions, sessions, tokens, cost and share of total.

    Always exact: it reads the stored calls (and restatements), not the rollups."""
    win = window(since, until, days, env)
    if storage:
        with opened_storage(storage) as store:
            rows = feature_costs(store, win, feature, tenant)
    else:
        payload = fetch("feature-costs", api, win, ReportOptions(feature=feature, tenant=tenant))
        rows = [FeatureCostRow.from_json(row) for row in payload["rows"]]
    if output is Format.json:
        print(json.dumps([plain_numbers(row.to_json()) for row in rows], indent=2))
    elif output is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(FeatureCostRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            data = plain_numbers(row.to_json())
            data["unpriced_reasons"] = "; ".join(data["unpriced_reasons"])
            writer.writerow(data)
    else:
        span = f"{win.since:%Y-%m-%d %H:%M} → {win.until:%Y-%m-%d %H:%M} UTC"
        title = f"LLM cost by feature · {win.environment} · {span}"
        console = cli_console()
        if rows:
            render_feature_costs(rows, console, title)
        else:
            console.print(text(title))
            console.print(text(explain_empty(api, storage, win.environment, feature)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
