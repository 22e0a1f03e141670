"""``featurecost budgets ...``: check the budgets file, see where every budget stands, list alerts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from featurecost.collector.budgets.alerts import AlertStore
from featurecost.collector.budgets.config import BudgetsConfig, BudgetsFileError, load_budgets
from featurecost.collector.budgets.evaluator import evaluate_budgets
from featurecost.collector.budgets.periods import period_containing
from featurecost.collector.cli.options import collector_api, time_option
from featurecost.collector.cli.output import text
from featurecost.collector.storage.client import Storage

budgets_app = typer.Typer(help="Budgets and alerts: check the budgets file, see spend against limits.")

DEFAULT_API = "http://127.0.0.1:8787"
_LEVEL_STYLE = {"ok": "green", "soft": "yellow", "hard": "bold red"}


class Format(StrEnum):
    table = "table"
    json = "json"


def load_budgets_option(path: Path | None) -> BudgetsConfig | None:
    """The collector's ``--budgets-file``: a bad file stops start-up with the reason."""
    if path is None:
        return None
    try:
        return load_budgets(path)
    except BudgetsFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--budgets-file") from exc


def _console() -> Console:
    # Off a terminal rich assumes 80 columns and would elide the numbers. No emoji codes or
    # highlighting: scope values and alert titles carry feature/tenant names from spans.
    return Console(emoji=False, highlight=False, width=None if sys.stdout.isatty() else 200)


def _get(api: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return collector_api(
        "GET",
        api,
        path,
        params=params,
        unreachable_hint="start `featurecost collector --budgets-file ...` or read storage directly with --storage "
        "and --budgets-file",
    )


def _parse_at(at: str | None) -> datetime:
    return datetime.now(UTC) if at is None else time_option(at, "--at")


def render_status(statuses: list[dict[str, Any]], evaluated_at: str, console: Console) -> None:
    table = Table(title=text(f"Budgets · evaluated {evaluated_at}"), title_justify="left")
    for header in ("budget", "scope", "period"):
        table.add_column(header, no_wrap=True)
    for header in ("spent USD", "limit USD", "used", "remaining USD", "calls", "unpriced"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("level", no_wrap=True)
    for s in statuses:
        scope = ", ".join(f"{k}={v}" for k, v in s["scope"].items()) or "all calls"
        level = s["level"] + ("" if s["enforce"] or s["level"] != "hard" else " (alert only)")
        table.add_row(
            text(s["budget"]),
            text(scope),
            text(f"{s['period']['label']} {s['period']['timezone']}"),
            f"{Decimal(s['spend_usd']):,.6f}",
            f"{Decimal(s['limit_usd']):,.2f}",
            f"{Decimal(s['used']) * 100:.1f}%",
            f"{Decimal(s['remaining_usd']):,.6f}",
            f"{s['calls']:,}",
            text(f"{s['unpriced_calls']:,}", style="yellow") if s["unpriced_calls"] else "",
            text(level, style=_LEVEL_STYLE[s["level"]]),
        )
    console.print(table)
    for s in statuses:
        if s["unpriced_calls"]:
            console.print(
                text("warning ", style="yellow")
                + text(
                    f"{s['budget']}: {s['unpriced_calls']} unpriced calls are not in the spend; "
                    "the real spend is higher."
                )
            )


@budgets_app.command("status")
def status(
    api: Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector API.")] = DEFAULT_API,
    storage: Annotated[
        str | None,
        typer.Option(envvar="FEATURECOST_STORAGE", help="Evaluate against this DSN directly (needs --budgets-file)."),
    ] = None,
    budgets_file: Annotated[
        Path | None, typer.Option(envvar="FEATURECOST_BUDGETS_FILE", help="Budgets file, with --storage.")
    ] = None,
    at: Annotated[str | None, typer.Option(help="With --storage: evaluate the periods containing this time.")] = None,
    output: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Spend against every budget in its current period (from the collector, or from storage)."""
    if storage:
        config = load_budgets_option(budgets_file)
        if config is None:
            raise typer.BadParameter("--storage needs --budgets-file (or FEATURECOST_BUDGETS_FILE)")
        now = _parse_at(at)
        store = Storage(storage)
        try:
            statuses = [s.to_json() for s in evaluate_budgets(store, config, now)]
        finally:
            store.close()
        data: dict[str, Any] = {"evaluated_at": now.isoformat(), "budgets": statuses}
    else:
        if at is not None:
            raise typer.BadParameter("--at needs --storage: the collector evaluates the current periods")
        data = _get(api, "/api/v1/budgets/status")
    if output is Format.json:
        print(json.dumps(data, indent=2))
    else:
        render_status(data["budgets"], data["evaluated_at"], _console())


@budgets_app.command("check")
def check(
    budgets_file: Annotated[Path, typer.Argument(envvar="FEATURECOST_BUDGETS_FILE", help="The budgets file.")],
) -> None:
    """Validate a budgets file and show the period each budget is in now."""
    config = load_budgets_option(budgets_file)
    assert config is not None
    now = datetime.now(UTC)
    console = _console()
    table = Table(title=f"{budgets_file}: {len(config.budgets)} budgets", title_justify="left")
    for header in ("budget", "scope", "period now", "limit USD", "soft", "hard", "at hard"):
        table.add_column(header, no_wrap=True)
    for b in config.budgets:
        period = period_containing(b.period, now, config.zone_of(b), b.week_start)
        table.add_row(
            text(b.name),
            text(b.scope.describe()),
            f"{period.label} {period.timezone} ({period.start:%Y-%m-%d %H:%M} → {period.end:%Y-%m-%d %H:%M} UTC)",
            f"{b.limit_usd:,.2f}",
            f"{b.soft_threshold:.0%}",
            f"{b.hard_threshold:.0%}",
            "deny" if b.enforce else "alert only",
        )
    console.print(table)
    hooks = ", ".join(f"{w.format.value} → {w.url.split('?')[0]}" for w in config.alerts.webhooks) or "none"
    console.print(text(f"webhooks: {hooks}"))


@budgets_app.command("alerts")
def alerts(
    api: Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector API.")] = DEFAULT_API,
    storage: Annotated[
        str | None, typer.Option(envvar="FEATURECOST_STORAGE", help="Read this DSN directly instead of the API.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Recent alerts and their delivery state."""
    if storage:
        store = Storage(storage)
        try:
            rows = [
                {**a.to_json(), "status": a.status.value, "attempts": a.attempts}
                for a in AlertStore(store).recent(limit)
            ]
        finally:
            store.close()
    else:
        rows = _get(api, "/api/v1/budgets/alerts", {"limit": limit})["alerts"]
    if output is Format.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Alerts", title_justify="left")
    for header in ("raised at", "rule", "level", "title", "delivery"):
        table.add_column(header)
    for row in rows:
        cells = (row["raised_at"], row["rule"], row["level"], row["title"], f"{row['status']} ({row['attempts']})")
        table.add_row(*(text(cell) for cell in cells))
    _console().print(table)
