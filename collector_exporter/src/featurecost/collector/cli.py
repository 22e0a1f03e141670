"""``featurecost``: run the collector, read the money."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from featurecost.collector.import_cli import import_app
from featurecost.collector.report_commands import register as register_reports
from featurecost.collector.reports import FeatureCostRow, Window, feature_costs
from featurecost.collector.server import CollectorConfig, default_storage_dsn, serve
from featurecost.collector.storage import Storage

app = typer.Typer(help="featurecost: which feature, tenant and user is eating your LLM bill.", no_args_is_help=True)
report_app = typer.Typer(help="Read costs (through the collector's API, or straight from storage).")
app.add_typer(report_app, name="report")
register_reports(report_app)
app.add_typer(import_app, name="import")

DEFAULT_API = "http://127.0.0.1:8787"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def collector(
    data_dir: Annotated[
        Path, typer.Option(envvar="FEATURECOST_DATA_DIR", help="Where the WAL (and embedded chDB data) live.")
    ] = Path("./featurecost-data"),
    storage: Annotated[
        str | None,
        typer.Option(
            envvar="FEATURECOST_STORAGE",
            help="clickhouse-connect DSN: chdb:///path (embedded) or http(s)://user:pass@host:8123/db. "
            "Default: chDB in DATA_DIR/clickhouse.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(envvar="FEATURECOST_HOST", help="Interface to listen on.")] = "127.0.0.1",
    otlp_http_port: Annotated[int, typer.Option(envvar="FEATURECOST_OTLP_HTTP_PORT")] = 4318,
    api_port: Annotated[int, typer.Option(envvar="FEATURECOST_API_PORT")] = 8787,
    log_level: Annotated[str, typer.Option(envvar="FEATURECOST_LOG_LEVEL")] = "INFO",
) -> None:
    """Run the collector: OTLP/HTTP on --otlp-http-port, report API on --api-port."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = CollectorConfig(
        storage_dsn=storage or default_storage_dsn(data_dir),
        wal_dir=data_dir / "wal",
        host=host,
        otlp_http_port=otlp_http_port,
        api_port=api_port,
    )
    asyncio.run(serve(config))


def _window(since: str | None, until: str | None, days: int, env: str) -> Window:
    now = datetime.now(UTC)
    end = datetime.fromisoformat(until) if until else now + timedelta(seconds=1)
    start = datetime.fromisoformat(since) if since else end - timedelta(days=days)
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if start >= end:
        raise typer.BadParameter("--since must be before --until")
    return Window(start, end, env)


def _fetch_feature_costs(api: str, window: Window) -> list[FeatureCostRow]:
    params = {
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "environment": window.environment,
    }
    try:
        response = httpx.get(f"{api.rstrip('/')}/api/v1/reports/feature-costs", params=params, timeout=30)
    except httpx.HTTPError as exc:
        raise typer.BadParameter(
            f"cannot reach the collector API at {api} ({exc}); start `featurecost collector` "
            "or read storage directly with --storage"
        ) from exc
    if response.status_code != 200:
        raise typer.BadParameter(f"collector API answered {response.status_code}: {response.text}")
    return [FeatureCostRow.from_json(row) for row in response.json()["rows"]]


def _money(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value:,.6f}"


def render_feature_costs(rows: list[FeatureCostRow], console: Console, title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("feature", no_wrap=True)
    for header in ("calls", "actions", "sessions", "input tok", "output tok", "cache read", "cache write"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("cost USD", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("unpriced", justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.feature,
            f"{r.calls:,}",
            f"{r.actions:,}",
            f"{r.sessions:,}",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cache_read_tokens:,}",
            f"{r.cache_write_tokens:,}",
            _money(r.cost_usd),
            "" if r.share is None else f"{r.share * 100:.1f}%",
            f"{r.unpriced_calls:,}" if r.unpriced_calls else "",
        )
    total = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    table.caption = f"total priced spend ${total:,.6f}"
    console.print(table)
    for r in rows:
        for reason in r.unpriced_reasons:
            console.print(f"[yellow]unpriced[/] {r.feature}: {reason}")


@report_app.command("features")
def report_features(
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (default: --days before --until).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    days: Annotated[int, typer.Option(help="Window length when --since is not given.")] = 7,
    env: Annotated[str, typer.Option(help="deployment.environment.name to report on.")] = "production",
    api: Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector report API.")] = DEFAULT_API,
    storage: Annotated[
        str | None,
        typer.Option(envvar="FEATURECOST_STORAGE", help="Read this DSN directly instead of the API."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")] = OutputFormat.table,
) -> None:
    """Per-feature cost: calls, actions, sessions, tokens, cost and share of total."""
    window = _window(since, until, days, env)
    if storage:
        store = Storage(storage)
        try:
            rows = feature_costs(store, window)
        finally:
            store.close()
    else:
        rows = _fetch_feature_costs(api, window)
    if output is OutputFormat.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
    elif output is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(FeatureCostRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            data = row.to_json()
            data["unpriced_reasons"] = "; ".join(data["unpriced_reasons"])
            writer.writerow(data)
    else:
        span = f"{window.since:%Y-%m-%d %H:%M} → {window.until:%Y-%m-%d %H:%M} UTC"
        title = f"LLM cost by feature · {window.environment} · {span}"
        # Off a terminal rich assumes 80 columns and would elide the numbers.
        console = Console() if sys.stdout.isatty() else Console(width=200)
        render_feature_costs(rows, console, title)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
