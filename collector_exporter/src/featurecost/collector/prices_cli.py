"""``featurecost prices``: how a call was priced, which models have no price, re-pricing.

These read storage directly (``--storage``). With embedded chDB the collector owns the data
directory, so run them against a stopped collector's directory or a ClickHouse server.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from featurecost.collector.cli_options import collector_api, time_option
from featurecost.collector.overrides import PricesFileError
from featurecost.collector.pricing import PriceData, PriceDataError, Pricer, explain_lines
from featurecost.collector.restatement import reprice, stored_call
from featurecost.collector.storage import Storage

prices_app = typer.Typer(help="Prices: explain a call's cost, list unpriced models, re-price after a fix.")

_PACKAGE = "featurecost.collector"
StorageOption = Annotated[
    str,
    typer.Option(envvar="FEATURECOST_STORAGE", help="clickhouse-connect DSN: chdb:///path or http(s)://..."),
]
PricesFileOption = Annotated[
    Path | None,
    typer.Option(envvar="FEATURECOST_PRICES_FILE", help="YAML prices file (see docs/pricing.md)."),
]


def _console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=200)


PriceDataOption = Annotated[
    Path | None,
    typer.Option(
        "--price-data",
        envvar="FEATURECOST_PRICE_DATA",
        help="A newer genai-prices data file (its data.json) instead of the pinned package's data.",
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


@prices_app.command("explain")
def explain(
    span_id: Annotated[str, typer.Argument(help="The call's span id (hex).")],
    storage: StorageOption,
    trace_id: Annotated[str, typer.Option(help="Trace id, when span ids could collide.")] = "",
    prices_file: PricesFileOption = None,
) -> None:
    """How a stored call was priced, and how it would be priced now."""
    store = Storage(storage)
    try:
        rows = store.query_named(_PACKAGE, "prices_call", {"span_id": span_id, "trace_id": trace_id})
    finally:
        store.close()
    if not rows:
        raise typer.BadParameter(f"no stored call with span id {span_id}", param_hint="SPAN_ID")
    if len(rows) > 1:
        raise typer.BadParameter("several calls share that span id; pass --trace-id", param_hint="SPAN_ID")
    row = rows[0]
    console = _console()
    stored = Table(title=f"call {row['trace_id']}/{row['span_id']} as stored", title_justify="left", show_header=False)
    for key in ("provider", "request_model", "response_model", "tenant", "service_tier", "start_time"):
        stored.add_row(key, str(row[key]) or "-")
    usage = (
        f"input {row['input_tokens']} (cache read {row['cache_read_tokens']}, "
        f"cache write {row['cache_write_tokens']}, 1h {row['cache_write_1h_tokens']}), "
        f"output {row['output_tokens']} (reasoning {row['reasoning_tokens']})"
    )
    stored.add_row("usage", usage)
    stored.add_row("raw usage", json.dumps(dict(row["raw_usage"]), sort_keys=True) or "-")
    stored.add_row("usage convention", row["usage_convention"] or "-")
    if row["usage_issues"]:
        stored.add_row("usage issues", "; ".join(row["usage_issues"]))
    stored.add_row("cost", _money(row["cost_usd"]))
    stored.add_row("input / output cost", f"{_money(row['input_cost_usd'])} / {_money(row['output_cost_usd'])}")
    stored.add_row("priced by", f"{row['price_source'] or '-'} · {row['price_entry'] or '-'}")
    stored.add_row("data version", row["price_data_version"] or "-")
    if row["unpriced_reason"]:
        stored.add_row("unpriced because", row["unpriced_reason"])
    if row["client_cost_usd"] is not None:
        claimed = f"{_money(row['client_cost_usd'])} (ours - theirs: {row['cost_delta_vs_client_usd']})"
        stored.add_row("client-claimed cost", claimed)
    if int(row["restatements"] or 0):
        stored.add_row(
            "restated",
            f"{row['restatements']}x; now {_money(row['restated_cost_usd'])} by {row['restated_price_entry']} "
            f"({row['restated_price_data_version']}; {row['restated_reason']})",
        )
    console.print(stored)
    pricer = _pricer(prices_file)
    record = stored_call(row)
    card = pricer.rate_card(record) if record.model else None
    now = pricer.price(record)
    table = Table(title="priced now", title_justify="left", show_header=False)
    if card is not None:
        for key, value in explain_lines(record, card).items():
            table.add_row(key, value)
    table.add_row("cost", _money(now.cost_usd))
    if now.unpriced_reason:
        table.add_row("unpriced because", now.unpriced_reason)
    console.print(table)


@prices_app.command("unpriced")
def unpriced(
    storage: StorageOption,
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (default: 30 days ago).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Models seen without a price: calls, tokens, first/last seen and why."""
    end = _when(until, datetime.now(UTC) + timedelta(seconds=1), "--until")
    start = _when(since, end - timedelta(days=30), "--since")
    store = Storage(storage)
    try:
        rows = store.query_named(
            _PACKAGE,
            "prices_unpriced",
            {"since": start.astimezone(UTC).replace(tzinfo=None), "until": end.astimezone(UTC).replace(tzinfo=None)},
        )
    finally:
        store.close()
    if output == "json":
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"unpriced models · {start:%Y-%m-%d} → {end:%Y-%m-%d}", title_justify="left")
    for header in ("provider", "model", "endpoint", "calls", "input tok", "output tok", "last seen", "reason"):
        table.add_column(header)
    for r in rows:
        table.add_row(
            r["provider"], r["model"], r["endpoint"] or "-", f"{r['calls']:,}", f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}", f"{r['last_seen']:%Y-%m-%d %H:%M}", r["reason"],
        )  # fmt: skip
    hint = "add them to the prices file, then `featurecost prices reprice`"
    table.caption = hint if rows else "every model priced"
    _console().print(table)


@prices_app.command("reprice")
def reprice_command(
    storage: StorageOption,
    since: Annotated[str, typer.Option(help="ISO-8601 start of the calls to re-price.")],
    until: Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")] = None,
    model: Annotated[str, typer.Option(help="Only calls of this (request or response) model.")] = "",
    prices_file: PricesFileOption = None,
    price_data: PriceDataOption = None,
    reason: Annotated[str, typer.Option(help="Why, kept on every restatement row.")] = "reprice",
    dry_run: Annotated[bool, typer.Option(help="Show what would be restated; append nothing.")] = False,
) -> None:
    """Price stored calls again; append a restatement (a cost delta) for each whose cost changed."""
    start = _when(since, datetime.now(UTC), "--since")
    end = _when(until, datetime.now(UTC) + timedelta(seconds=1), "--until")
    if start >= end:
        raise typer.BadParameter("--since must be before --until")
    pricer = _pricer(prices_file, price_data)
    store = Storage(storage)
    try:
        store.migrate()
        result = reprice(store, pricer, start, end, model=model, reason=reason, dry_run=dry_run)
    finally:
        store.close()
    verb = "would restate" if dry_run else "restated"
    print(
        f"examined {result.examined} calls; {verb} {result.restated} (total delta ${result.total_delta_usd:,.9f}); "
        f"{result.still_unpriced} still unpriced; {result.would_become_unpriced} kept (new pricing has no price)"
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
    data would price; `featurecost prices reprice --since ... --price-data FILE` restates them.
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
        table.add_row(row["provider"], row["model"], f"{row['calls']:,}", row["entry"], row["was"])
    table.caption = f"restate them: featurecost prices reprice --since ... --price-data {data_file}"
    _console().print(table)


def check_prices_file(path: Path | None) -> None:
    """Fail at start-up, with the entry at fault, rather than misprice calls later."""
    _pricer(path)
