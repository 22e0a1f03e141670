"""``featurecost import``: bring product data next to the LLM costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from featurecost.collector.cli.options import api_auth_headers, opened_storage
from featurecost.collector.cli.output import fail
from featurecost.collector.cli.output import text as literal
from featurecost.collector.storage.usage_import import UsageImportError, parse_usage_csv, store_usage

import_app = typer.Typer(
    help="Import product usage and revenue (for margin and cost-to-revenue).", no_args_is_help=True
)

DEFAULT_API = "http://127.0.0.1:8787"


@import_app.command("usage")
def usage(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file.")],
    api: Annotated[str, typer.Option(envvar="FEATURECOST_API", help="Collector API to send it to.")] = DEFAULT_API,
    storage: Annotated[
        str | None, typer.Option(envvar="FEATURECOST_STORAGE", help="Write this DSN directly instead of the API.")
    ] = None,
) -> None:
    """Import revenue / active users / feature usage per tenant and period from CSV.

    Columns: tenant; day, period (YYYY-MM) or period_start + period_end; revenue_usd;
    optionally active_users and any number of usage.FEATURE counts. A file with any bad
    row is rejected whole and every bad row is listed. Format: docs/reports.md.
    """
    console = Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)
    text = file.read_text(encoding="utf-8")
    try:
        rows = parse_usage_csv(text)
    except UsageImportError as exc:
        for error in exc.errors:
            console.print(literal(f"{file}:{error.line} ", style="red") + literal(error.message))
        console.print(literal("nothing imported", style="red") + literal(f": {len(exc.errors)} problem(s)"))
        raise typer.Exit(1) from exc
    if storage:
        with opened_storage(storage, migrate=True) as store:
            imported = store_usage(store, rows, file.name)
    else:
        try:
            response = httpx.post(
                f"{api.rstrip('/')}/api/v1/import/usage",
                content=text.encode("utf-8"),
                params={"source": file.name},
                headers={"content-type": "text/csv", **api_auth_headers("POST")},
                timeout=120,
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach the collector API at {api} ({type(exc).__name__}); start it, or use --storage")
        if response.status_code != 200:
            fail(f"collector API answered {response.status_code}: {response.text}")
        imported = int(response.json()["imported"])
    console.print(literal(f"imported {imported} row(s) from {file}"))
