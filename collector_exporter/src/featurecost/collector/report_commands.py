"""``featurecost report <name>``: every named report, as a table, JSON or CSV.

Reads through the collector's report API by default (with embedded chDB the collector
owns the data directory), or straight from storage with ``--storage``. Both paths run
``reports.run_report``, so they print the same numbers.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from featurecost.collector.cli_options import collector_api, time_option
from featurecost.collector.pricing import Pricer
from featurecost.collector.reports import (
    Dimension,
    ReportError,
    ReportOptions,
    Source,
    Window,
    rebuild_rollups,
    run_report,
)
from featurecost.collector.storage import Storage

DEFAULT_API = "http://127.0.0.1:8787"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


Since = Annotated[str | None, typer.Option(help="ISO-8601 start (default: --days before --until).")]
Until = Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")]
Days = Annotated[int, typer.Option(help="Window length when --since is not given.")]
Env = Annotated[str, typer.Option(help="deployment.environment.name; 'all' for every environment.")]
Api = Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector report API.")]
StorageDsn = Annotated[
    str | None, typer.Option(envvar="FEATURECOST_STORAGE", help="Read this DSN directly instead of the API.")
]
Output = Annotated[Format, typer.Option("--format", help="table, json or csv.")]
PricesFile = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        envvar="FEATURECOST_PRICES_FILE",
        exists=True,
        dir_okay=False,
        help="With --storage: the collector's prices file, so savings use contract prices (the API uses its own).",
    ),
]
SourceOption = Annotated[
    Source, typer.Option("--source", help="rollup (fast) or raw (calls FINAL: exact even if a span was stored twice).")
]


def window(since: str | None, until: str | None, days: int, env: str) -> Window:
    end = time_option(until, "--until") if until else datetime.now(UTC) + timedelta(seconds=1)
    start = time_option(since, "--since") if since else end - timedelta(days=days)
    if start >= end:
        raise typer.BadParameter("--since must be before --until")
    return Window(start, end, env)


def fetch(name: str, api: str, win: Window, options: ReportOptions) -> dict[str, Any]:
    params = {**{k: v for k, v in win.to_json().items()}, **options.to_query()}
    return collector_api(
        "GET",
        api,
        f"/api/v1/reports/{name}",
        params=params,
        timeout=120,
        unreachable_hint="start `featurecost collector` or read storage directly with --storage",
    )


def produce(
    name: str, api: str, storage: str | None, win: Window, options: ReportOptions, prices: Path | None = None
) -> dict[str, Any]:
    """The report from the collector API, or with ``storage`` straight from that DSN (then
    ``prices`` is the prices file the collector uses, for reports that price tokens)."""
    if not storage:
        return fetch(name, api, win, options)
    store = Storage(storage)
    try:
        return run_report(name, store, win, options, Pricer.from_file(prices) if prices else None)
    except ReportError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        store.close()


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and (key.endswith(("_usd", "_pct", "_share", "share", "ratio")) or "per_action" in key):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        if key.endswith("_usd"):
            return f"-${-number:,.6f}" if number < 0 else f"${number:,.6f}"
        if key.endswith("_pct"):
            return f"{number:,.1f}%"
        if key.endswith(("share", "ratio")):
            return f"{number * 100:,.1f}%"
        return f"{number:,.2f}"
    return str(value)


def render(payload: dict[str, Any], output: Format, title: str) -> None:
    rows: list[dict[str, Any]] = payload["rows"]
    if output is Format.json:
        print(json.dumps(payload, indent=2))
        return
    if output is Format.csv:
        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "; ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
        return
    win = payload["window"]
    console = Console() if sys.stdout.isatty() else Console(width=240)
    table = Table(title=f"{title} · {win['environment']} · {win['since']} → {win['until']}", title_justify="left")
    columns = list(rows[0]) if rows else []
    for key in columns:
        table.add_column(key.replace("_", " "), justify="left" if key in ("feature", "value") else "right")
    for row in rows:
        table.add_row(*(_cell(k, row[k]) for k in columns))
    extras = {k: v for k, v in payload.items() if k not in ("rows", "window", "report", "source", "opportunities")}
    if extras:
        table.caption = "  ".join(
            f"{k}: {_cell(k, v)}"
            if not isinstance(v, dict)
            else "  ".join(f"{kk}: {_cell(kk, vv)}" for kk, vv in v.items())
            for k, v in extras.items()
        )
    console.print(table)
    if not rows:
        console.print("no calls in this window")
    _print_opportunities(console, payload.get("opportunities"))


def _print_opportunities(console: Console, found: list[dict[str, Any]] | None) -> None:
    """The savings finder's top opportunities under the weekly table, one line each."""
    if found is None:
        return
    if not found:
        console.print("Top savings: none found in this window (see `featurecost report batch`).")
        return
    console.print("Top savings:")
    for o in found:
        weekly = _cell("saving_per_week_usd", o["saving_per_week_usd"])
        console.print(
            f"  {o['rank']}. {weekly}/week · {o['kind']} · {o['feature']}: {o['action']}", markup=False, highlight=False
        )


def rebuild(month: int, api: str, storage: str | None) -> None:
    if storage:
        store = Storage(storage)
        try:
            rebuild_rollups(store, month)
        finally:
            store.close()
        return
    path = "/api/v1/rollups/rebuild"
    collector_api("POST", api, path, params={"month": month}, timeout=600, unreachable_hint="or use --storage")


def register(report_app: typer.Typer) -> None:
    """Add the named reports to ``featurecost report``."""

    def emit(name: str, title: str, since: str | None, until: str | None, days: int, env: str, api: str,
             storage: str | None, output: Format, options: ReportOptions,
             prices: Path | None = None) -> None:  # fmt: skip
        render(produce(name, api, storage, window(since, until, days, env), options, prices), output, title)

    @report_app.command("weekly")
    def weekly(
        since: Since = None, until: Until = None, days: Days = 28, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """The weekly per-feature row: spend, session p50/p95, cost-to-revenue, WoW, anomalies."""
        emit("weekly", "LLM cost per feature and week", since, until, days, env, api, storage, output,
             ReportOptions(source=source))  # fmt: skip

    @report_app.command("breakdown")
    def breakdown(
        by: Annotated[Dimension, typer.Option("--by", help="Dimension to split each feature by.")] = Dimension.tenant,
        feature: Annotated[str, typer.Option(help="Only this feature.")] = "",
        since: Since = None, until: Until = None, days: Days = 7, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Cost per feature by tenant, user, plan, provider, model or version (A/B cost per action)."""
        emit("breakdown", f"LLM cost by feature x {by.value}", since, until, days, env, api, storage, output,
             ReportOptions(source=source, dimension=by, feature=feature))  # fmt: skip

    @report_app.command("decomposition")
    def decomposition(
        since: Since = None, until: Until = None, days: Days = 7, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Per root action: input / output / cache read / cache write / reasoning tokens and turns."""
        emit("decomposition", "What one user action consumes", since, until, days, env, api, storage, output,
             ReportOptions(source=source))  # fmt: skip

    @report_app.command("cache")
    def cache(
        since: Since = None, until: Until = None, days: Days = 7, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
        prices: PricesFile = None,
    ) -> None:  # fmt: skip
        """Prompt-cache effectiveness per feature: hit ratio and dollars saved (at each tenant's prices)."""
        emit("cache", "Prompt cache per feature", since, until, days, env, api, storage, output,
             ReportOptions(source=source), prices)  # fmt: skip

    @report_app.command("outliers")
    def outliers(
        top: Annotated[int, typer.Option("--top", "-n", help="How many actions.", min=1, max=10_000)] = 10,
        since: Since = None, until: Until = None, days: Days = 7, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """The costliest user actions, their share of spend, and the unattributed share."""
        emit("outliers", f"Top {top} user actions by cost", since, until, days, env, api, storage, output,
             ReportOptions(source=source, n=top))  # fmt: skip

    @report_app.command("regressions")
    def regressions(
        since: Since = None, until: Until = None, days: Days = 56, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Features whose median session cost rose ≥ 5 % week over week for ≥ 2 weeks in a row."""
        emit("regressions", "Session cost regressions", since, until, days, env, api, storage, output,
             ReportOptions(source=source))  # fmt: skip

    @report_app.command("margin")
    def margin(
        since: Since = None, until: Until = None, days: Days = 30, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Per-tenant margin and cost per active user (needs `featurecost import usage`)."""
        emit("margin", "Tenant margin", since, until, days, env, api, storage, output,
             ReportOptions(source=source))  # fmt: skip

    @report_app.command("unit-costs")
    def unit_costs(
        since: Since = None, until: Until = None, days: Days = 30, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Per feature: spend per imported product usage unit (usage.<feature> CSV columns)."""
        emit("unit-costs", "LLM cost per product usage unit", since, until, days, env, api, storage, output,
             ReportOptions(source=source))  # fmt: skip

    @report_app.command("allocation")
    def allocation(
        shared: Annotated[list[str], typer.Option("--shared", help="A shared feature (repeatable).")],
        since: Since = None, until: Until = None, days: Days = 30, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
    ) -> None:  # fmt: skip
        """Spread shared features' spend (e.g. embeddings) over the features that use them."""
        emit("allocation", "Spend with shared cost allocated", since, until, days, env, api, storage, output,
             ReportOptions(source=source, shared=tuple(shared)))  # fmt: skip

    @report_app.command("drift")
    def drift(
        rebuild_month: Annotated[
            list[int] | None,
            typer.Option("--rebuild", help="Re-derive this month (YYYYMM) of the rollups from the raw calls first."),
        ] = None,
        api: Api = DEFAULT_API, storage: StorageDsn = None, output: Output = Format.table,
    ) -> None:  # fmt: skip
        """Rollups vs raw calls per month: drift > 0 means a span was counted twice."""
        for month in rebuild_month or []:
            rebuild(month, api, storage)
        now = datetime.now(UTC)
        emit("drift", "Rollup drift (rollup calls - stored calls)", None, now.isoformat(), 1, "all", api, storage,
             output, ReportOptions())  # fmt: skip

    @report_app.command("whatif")
    def whatif(
        feature: Annotated[str, typer.Option(help="The feature whose calls to re-price.")],
        model: Annotated[str, typer.Option("--model", help="Target provider/model, e.g. openai/gpt-4o-mini.")],
        tenant: Annotated[str, typer.Option(help="Only this tenant's calls (at its contract prices).")] = "",
        token_ratio: Annotated[
            float | None,
            typer.Option(
                "--token-ratio",
                help="Target tokens / current tokens for the same text (tokenizers differ); scales every count.",
            ),
        ] = None,
        since: Since = None, until: Until = None, days: Days = 28, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, prices: PricesFile = None,
    ) -> None:  # fmt: skip
        """Re-price a feature's actual calls at another model's prices of the same days, per week and user action."""
        ratio = Decimal(str(token_ratio)) if token_ratio is not None else None
        emit("whatif", f"{feature} at {model} (what-if)", since, until, days, env, api, storage, output,
             ReportOptions(source=Source.raw, feature=feature, model=model, tenant=tenant, token_ratio=ratio),
             prices)  # fmt: skip

    @report_app.command("batch")
    def batch(
        since: Since = None, until: Until = None, days: Days = 28, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, prices: PricesFile = None,
    ) -> None:  # fmt: skip
        """Features whose calls run outside user requests, at the provider's Batch API prices: $ saved per week."""
        emit("batch", "Batch API opportunity per feature", since, until, days, env, api, storage, output,
             ReportOptions(source=Source.raw), prices)  # fmt: skip

    @report_app.command("cache-opportunity")
    def cache_opportunity(
        since: Since = None, until: Until = None, days: Days = 28, env: Env = "production", api: Api = DEFAULT_API,
        storage: StorageDsn = None, output: Output = Format.table, source: SourceOption = Source.rollup,
        prices: PricesFile = None,
    ) -> None:  # fmt: skip
        """Per feature: uncached input share, cache prices, and $/week saved if repeated prompt prefixes were cached."""
        emit("cache-opportunity", "Prompt-cache opportunity per feature", since, until, days, env, api, storage,
             output, ReportOptions(source=source), prices)  # fmt: skip
