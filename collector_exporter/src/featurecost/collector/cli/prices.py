"""``featurecost prices``: how a call was priced, which models have no price, re-pricing.

They go through the running collector's API (``--api``; with embedded chDB the collector owns
the data directory), or read storage directly with ``--storage`` (a stopped collector's
directory, or a ClickHouse server).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featurecost.collector.cli.options import collector_api, opened_storage, time_option
from featurecost.collector.cli.output import console as cli_console
from featurecost.collector.cli.output import text
from featurecost.collector.pricing.overrides import PricesFileError
from featurecost.collector.pricing.pricer import PriceData, PriceDataError, Pricer
from featurecost.collector.pricing.restatement import reprice
from featurecost.collector.pricing.service import (
    PricesQueryError,
    explain_call,
    reprice_result_json,
    reprice_summary,
    unpriced_models,
)

prices_app = typer.Typer(help="Prices: explain a call's cost, list unpriced models, re-price after a fix.")

StorageOption = Annotated[
    str | None,
    typer.Option(
        envvar="FEATURECOST_STORAGE",
        help="Read this DSN directly (a stopped collector's chdb:///DATA_DIR/clickhouse, or http(s)://...) "
        "instead of the API.",
    ),
]
ApiOption = Annotated[str, typer.Option(envvar="FEATURECOST_API", help="The running collector's API.")]
DEFAULT_API = "http://127.0.0.1:8787"
PricesFileOption = Annotated[
    Path | None,
    typer.Option(envvar="FEATURECOST_PRICES_FILE", help="YAML prices file (see docs/pricing.md)."),
]


PriceDataOption = Annotated[
    Path | None,
    typer.Option(
        "--price-data",
        envvar="FEATURECOST_PRICE_DATA",
        help="With --storage: a newer genai-prices data file (its data.json) instead of the pinned package's "
        "data. Through the API the collector uses what `featurecost prices update` loaded.",
    ),
]


def _pricer(prices_file: Path | None, price_data: Path | None = None) -> Pricer:
    try:
        data = PriceData.load(price_data) if price_data else None
    except PriceDataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--price-data") from exc
    try:
        return Pricer.from_file(prices_file, data)
    except PricesFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prices-file") from exc


def _when(value: str | None, default: datetime, option: str) -> datetime:
    return time_option(value, option) if value else default


def _money(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value:,.9f}"


def _lines_table(title: str, lines: list[list[str]]) -> Table:
    table = Table(title=text(title), title_justify="left", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in lines:
        table.add_row(text(key), text(value))
    return table


@prices_app.command("explain")
def explain(
    span_id: Annotated[str, typer.Argument(help="The call's span id (hex), e.g. from `report outliers`.")],
    trace_id: Annotated[str, typer.Option(help="Trace id, when span ids could collide.")] = "",
    api: ApiOption = DEFAULT_API,
    storage: StorageOption = None,
    prices_file: PricesFileOption = None,
) -> None:
    """How a stored call was priced, and how it would be priced now."""
    if storage:
        pricer = _pricer(prices_file)
        with opened_storage(storage) as store:
            try:
                payload = explain_call(store, pricer, span_id, trace_id)
            except PricesQueryError as exc:
                raise typer.BadParameter(str(exc), param_hint="SPAN_ID") from exc
    else:
        _api_uses_its_prices_file(prices_file)
        payload = collector_api("GET", api, "/api/v1/prices/explain", params={"span_id": span_id, "trace_id": trace_id})
    console = cli_console()
    console.print(_lines_table(f"call {payload['trace_id']}/{payload['span_id']} as stored", payload["stored"]))
    console.print(_lines_table("priced now", payload["now"]))


@prices_app.command("unpriced")
def unpriced(
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (default: 30 days before --until).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    api: ApiOption = DEFAULT_API,
    storage: StorageOption = None,
) -> None:
    """Models seen without a price: calls, tokens, first/last seen and why."""
    end = _when(until, datetime.now(UTC) + timedelta(seconds=1), "--until")
    start = _when(since, end - timedelta(days=30), "--since")
    if storage:
        with opened_storage(storage) as store:
            rows = unpriced_models(store, start, end)
    else:
        params = {"since": start.isoformat(), "until": end.isoformat()}
        rows = collector_api("GET", api, "/api/v1/prices/unpriced", params=params)["rows"]
    if output == "json":
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=text(f"unpriced models · {start:%Y-%m-%d} → {end:%Y-%m-%d}"), title_justify="left")
    # the endpoint column only when a call names one (self-hosted servers, unknown hosts)
    endpoints = any(r.get("endpoint") for r in rows)
    headers = ("provider", "model", *(("endpoint",) if endpoints else ()), "calls", "input tok", "output tok",
               "last seen", "reason")  # fmt: skip
    for header in headers:
        numeric = header in ("calls", "input tok", "output tok")
        table.add_column(header, justify="right" if numeric else "left", overflow="fold", no_wrap=header == "model")
    for r in rows:
        table.add_row(
            text(r["provider"]), text(r["model"]), *((text(r.get("endpoint") or "-"),) if endpoints else ()),
            f"{r['calls']:,}", f"{r['input_tokens']:,}", f"{r['output_tokens']:,}",
            text(r["last_seen"][:16].replace("T", " ")), text(r["reason"]),
        )  # fmt: skip
    hint = "add them to the prices file, then `featurecost prices reprice --since …`"
    table.caption = hint if rows else "every model priced"
    cli_console().print(table)


@prices_app.command("reprice")
def reprice_command(
    since: Annotated[str, typer.Option(help="ISO-8601 start of the calls to re-price, e.g. 2026-11-01.")],
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    model: Annotated[str, typer.Option(help="Only calls of this (request or response) model.")] = "",
    price_data: PriceDataOption = None,
    reason: Annotated[str, typer.Option(help="Why, kept on every restatement row.")] = "reprice",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be restated; append nothing.")] = False,
    api: ApiOption = DEFAULT_API,
    storage: StorageOption = None,
    prices_file: PricesFileOption = None,
) -> None:
    """Price stored calls again; append a restatement (a cost delta) for each whose cost changed.

    Through the API the collector re-reads its own prices file (the one it was started with)
    and prices new calls with it from then on; with --storage, pass the same --prices-file.
    """
    start = _when(since, datetime.now(UTC), "--since")
    end = _when(until, datetime.now(UTC) + timedelta(seconds=1), "--until")
    if start >= end:
        raise typer.BadParameter(f"--since ({start:%Y-%m-%d %H:%M}) must be before --until ({end:%Y-%m-%d %H:%M})")
    if storage:
        pricer = _pricer(prices_file, price_data)
        with opened_storage(storage, migrate=True) as store:
            result = reprice_result_json(
                reprice(store, pricer, start, end, model=model, reason=reason, dry_run=dry_run), dry_run
            )
    else:
        _api_uses_its_prices_file(prices_file)
        if price_data is not None:
            raise typer.BadParameter(
                "through the API the collector prices with the data it has loaded (`featurecost prices update`); "
                "--price-data goes with --storage",
                param_hint="--price-data",
            )
        params = {"since": start.isoformat(), "until": end.isoformat(), "model": model, "reason": reason,
                  "dry_run": str(dry_run).lower()}  # fmt: skip
        result = collector_api("POST", api, "/api/v1/prices/reprice", params=params, timeout=600)
    print(reprice_summary(result))


def _api_uses_its_prices_file(prices_file: Path | None) -> None:
    if prices_file is not None:
        raise typer.BadParameter(
            "through the API the collector uses the prices file it was started with (edit that one); "
            "--prices-file goes with --storage",
            param_hint="--prices-file",
        )


@prices_app.command("update")
def update(
    data_file: Annotated[
        Path | None, typer.Argument(help="genai-prices data file (data.json); omit with --pinned.", show_default=False)
    ] = None,
    api: Annotated[
        str, typer.Option(envvar="FEATURECOST_API", help="The running collector's API.")
    ] = "http://127.0.0.1:8787",
    pinned: Annotated[bool, typer.Option(help="Go back to the pinned genai-prices package data.")] = False,
) -> None:
    """Load newer genai-prices data into the running collector (no restart); list what it now prices.

    From then on new calls are priced with it and stamped with its version (the collector keeps
    the file for restarts). Stored unpriced calls are not changed: the table shows which the new
    data would price; `featurecost prices reprice --since ...` restates them.
    """
    if pinned == (data_file is not None):
        raise typer.BadParameter("give a data file, or --pinned to go back to the package's data")
    if data_file is None:
        result = collector_api("DELETE", api, "/api/v1/prices/data")
    else:
        try:
            content = data_file.read_bytes()
            PriceData.parse(content, str(data_file))  # a clear error here rather than from the API
        except (OSError, PriceDataError) as exc:
            raise typer.BadParameter(str(exc), param_hint="DATA_FILE") from exc
        result = collector_api("POST", api, "/api/v1/prices/data", content=content, timeout=300)
    print(f"the collector now prices with {result['data_version']}")
    newly = result["newly_priced"]
    if not newly:
        if data_file is not None:
            print("no stored unpriced call would be priced by it")
        return
    table = Table(title="stored unpriced calls this data now prices", title_justify="left")
    for header in ("provider", "model", "calls", "priced as", "was unpriced because"):
        table.add_column(header)
    for row in newly:
        table.add_row(
            text(row["provider"]), text(row["model"]), f"{row['calls']:,}", text(row["entry"]), text(row["was"])
        )
    table.caption = "restate them: featurecost prices reprice --since ..."
    cli_console().print(table)


def check_prices_file(path: Path | None) -> None:
    """Fail at start-up, with the entry at fault, rather than misprice calls later."""
    _pricer(path)
