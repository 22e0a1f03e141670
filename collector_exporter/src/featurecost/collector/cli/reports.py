"""``featurecost report <name>``: every named report, as a table, JSON or CSV.

Reads through the collector's report API by default (with embedded chDB the collector
owns the data directory), or straight from storage with ``--storage``. Both paths run
``reports.run_report``, so they print the same numbers.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from featurecost.collector.cli.options import collector_api, time_option
from featurecost.collector.cli.output import (
    MAX_WIDTH,
    NO_TENANT,
    as_decimal,
    is_numeric_key,
    money,
    plain_numbers,
    text,
)
from featurecost.collector.cli.output import console as cli_console
from featurecost.collector.cli.output import month as month_label
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT as DEFAULT_ENV  # short: one-line signatures
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.reports import (
    REPORTS,
    Dimension,
    OpenMonthError,
    ReportError,
    ReportOptions,
    Source,
    Window,
    rebuild_rollups,
    run_report,
)
from featurecost.collector.reports.catalog import catalog, empty_hint
from featurecost.collector.reports.registry import DAYS as DAYS  # the default window, for cli/app.py
from featurecost.collector.reports.registry import Report
from featurecost.collector.storage.client import Storage

DEFAULT_API = "http://127.0.0.1:8787"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


Since = Annotated[str | None, typer.Option(help="ISO-8601 start (default: --days before --until).")]
Until = Annotated[str | None, typer.Option(help="ISO-8601 end, exclusive (default: now).")]
Days = Annotated[int, typer.Option(min=1, help="Window length in days, ending at --until, when --since is not given.")]
_REQUIRED = inspect.Parameter.empty  # an option without a default must be given
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
        raise typer.BadParameter(f"--since ({start:%Y-%m-%d %H:%M}) must be before --until ({end:%Y-%m-%d %H:%M})")
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


_ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")
# Name-like columns: left-aligned, and allowed to wrap so a table fits MAX_WIDTH.
_TEXT_COLUMNS = {"feature", "value", "tenant", "user_id", "root_id", "session_id", "span_id", "model", "reason"}
# Tables show the columns a reader scans; JSON and CSV keep every field.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "weekly": (
        "week", "feature", "spend_usd", "calls", "session_p50_usd", "session_p95_usd",
        "median_change_pct", "cost_to_revenue_pct", "anomalous_sessions", "unpriced_calls",
    ),
    "outliers": ("feature", "tenant", "user_id", "span_id", "first_call", "calls", "spend_usd", "share"),
    "decomposition": (
        "feature", "actions", "calls", "cost_per_action_usd", "turns_per_action", "input_tokens_per_action",
        "cache_read_tokens_per_action", "output_tokens_per_action", "reasoning_tokens_per_action", "unpriced_calls",
    ),
}  # fmt: skip
HEADERS = {
    "spend_usd": "spend",
    "session_p50_usd": "sess. p50",
    "session_p95_usd": "sess. p95",
    "median_change_pct": "WoW median",
    "cost_to_revenue_pct": "cost/rev.",
    "anomalous_sessions": "anomalous",
    "unpriced_calls": "unpriced",
    "cost_per_action_usd": "per action",
    "user_id": "user",
    "span_id": "costliest call (span id)",
    "first_call": "first call (UTC)",
    "turns_per_action": "turns",
    "input_tokens_per_action": "input tok",
    "output_tokens_per_action": "output tok",
    "cache_read_tokens_per_action": "cache read",
    "reasoning_tokens_per_action": "reasoning",
    "cache_read_tokens": "cache read",
    "cache_write_tokens": "cache write",
    "input_tokens": "input tok",
    "output_tokens": "output tok",
    "saved_usd": "saved",
    "revenue_usd": "revenue",
    "margin_usd": "margin",
    "margin_pct": "margin %",
    "active_users": "users",
    "cost_per_active_user_usd": "per user",
}
EMPTY = {
    "regressions": "no regressions: no feature's median session cost rose ≥ 5 % two weeks in a row",
    "drift": "no rollup months yet",
}


def explain_empty(api: str, storage: str | None, environment: str, feature: str = "") -> str:
    """The hint for an empty report, from what the data does contain."""
    if storage:
        store = Storage(storage)
        try:
            known = catalog(store)
        finally:
            store.close()
    else:
        known = collector_api("GET", api, "/api/v1/catalog")
    return empty_hint(known, environment, feature)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "month" and isinstance(value, int):
        return month_label(value)
    if key == "tenant" and value == "":
        return NO_TENANT
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and is_numeric_key(key):
        number = as_decimal(value)
        if number is None:
            return value
        if key.endswith("_usd"):
            return money(number)
        if key.endswith("_pct"):
            return f"{number:,.1f}%"
        if key.endswith(("share", "ratio")):
            return f"{number * 100:,.1f}%"
        return f"{number:,.2f}"
    if isinstance(value, str):
        return _short_time(value)
    return str(value)


def _row_cell(meaning: str, key: str, row: dict[str, Any]) -> str:
    """One cell; ``meaning`` is what the column holds (``tenant`` for a breakdown's ``value``)."""
    calls, unpriced = row.get("calls"), row.get("unpriced_calls")
    if key in ("spend_usd", "cost_per_action_usd") and calls and calls == unpriced:
        return "unpriced"  # nothing in the row has a price: not $0.00
    return _cell(meaning, row[key])


def _short_time(value: str) -> str:
    match = _ISO_TIME.match(value)
    return f"{match.group(1)} {match.group(2)}" if match else value


def render(
    payload: dict[str, Any], output: Format, title: str, *, headers: dict[str, str] | None = None, empty: str = ""
) -> None:
    """Print a report payload. ``headers`` renames columns for this report (``value`` → the
    breakdown's dimension); ``empty`` is what to say when there are no rows."""
    rows: list[dict[str, Any]] = payload["rows"]
    if output is Format.json:
        print(json.dumps(plain_numbers(payload), indent=2))
        return
    if output is Format.csv:
        if rows:
            names = {**(headers or {})}
            writer = csv.writer(sys.stdout)
            writer.writerow([names.get(k, k) for k in rows[0]])
            for row in plain_numbers(rows):
                writer.writerow(["; ".join(map(str, v)) if isinstance(v, list) else v for v in row.values()])
        return
    win = payload["window"]
    console = cli_console()
    report_name = str(payload.get("report", ""))
    heading = f"{title} · {win['environment']} · {_short_time(win['since'])} → {_short_time(win['until'])} UTC"
    table = Table(title=text(heading), title_justify="left")
    names = {**HEADERS, **(headers or {})}
    wanted = TABLE_COLUMNS.get(report_name)
    columns = [k for k in (rows[0] if rows else []) if wanted is None or k in wanted]
    if wanted is not None:
        columns.sort(key=wanted.index)
    renamed = headers or {}
    cells = [[_row_cell(renamed.get(k, k), k, row) for k in columns] for row in rows]
    titles = [names.get(key, key.replace("_", " ")) for key in columns]
    values = [max([0, *(len(row[i]) for row in cells)]) for i in range(len(columns))]
    natural = sum(max(len(t), v) for t, v in zip(titles, values, strict=True)) + 3 * len(columns) + 1
    stack = natural > MAX_WIDTH  # headers one word per line, so a column is as wide as its values
    for key, title, widest_value in zip(columns, titles, values, strict=True):
        is_text = key in _TEXT_COLUMNS
        lines = title.split() if stack and not is_text else [title]
        # A name column keeps up to 24 characters before it wraps; a number never wraps.
        table.add_column(
            Text("\n").join(text(line) for line in lines),
            justify="left" if is_text else "right",
            no_wrap=not is_text,
            overflow="fold",
            min_width=min(max(widest_value, len(title)), 24) if is_text else None,
        )
    for row_cells in cells:
        table.add_row(*(text(c) for c in row_cells))
    extras = {k: v for k, v in payload.items() if k not in ("rows", "window", "report", "source", "opportunities")}
    if extras:
        table.caption = text(
            "  ".join(
                f"{k}: {_cell(k, v)}"
                if not isinstance(v, dict)
                else "  ".join(f"{kk}: {_cell(kk, vv)}" for kk, vv in v.items())
                for k, v in extras.items()
            )
        )
    if rows:
        console.print(table)
    else:
        console.print(text(heading))
        console.print(
            text(empty or EMPTY.get(report_name) or f"no calls in environment {win['environment']} in this window")
        )
    _print_opportunities(console, payload.get("opportunities"))


def _print_opportunities(console: Console, found: list[dict[str, Any]] | None) -> None:
    """The savings finder's top opportunities under the weekly table, one line each."""
    if found is None:
        return
    if not found:
        console.print(text("Top savings: none found in this window (see `featurecost report batch`)."))
        return
    console.print(text("Top savings:"))
    for o in found:
        weekly = _cell("saving_per_week_usd", o["saving_per_week_usd"])
        line = f"  {o['rank']}. {weekly}/week · {o['kind']} · {o['feature']}: {o['action']}"
        console.print(text(line), soft_wrap=True)  # one line per opportunity, whatever the width


def rebuild(month: int, api: str, storage: str | None) -> None:
    if storage:
        store = Storage(storage)
        try:
            rebuild_rollups(store, month)
        except OpenMonthError as exc:
            raise typer.BadParameter(str(exc)) from exc
        finally:
            store.close()
        return
    path = "/api/v1/rollups/rebuild"
    collector_api("POST", api, path, params={"month": month}, timeout=600, unreachable_hint="or use --storage")


# Each report's own options, before the window ones (in --help order); the registry says which
# reports have a command, their help, title, default window, source and prices file.
_OWN_OPTIONS: dict[str, list[tuple[str, Any, Any]]] = {
    "breakdown": [
        ("by", Annotated[Dimension, typer.Option("--by", help="Dimension to split each feature by.")],
         Dimension.tenant),
        ("feature", Annotated[str, typer.Option(help="Only this feature.")], ""),
    ],
    "outliers": [("top", Annotated[int, typer.Option("--top", "-n", help="How many actions.", min=1, max=10_000)], 10)],
    "allocation": [
        ("shared", Annotated[list[str], typer.Option("--shared", help="A shared feature (repeatable).")], _REQUIRED),
    ],
    "drift": [
        (
            "rebuild_month",
            Annotated[
                list[int] | None,
                typer.Option(
                    "--rebuild", help="Re-derive this month (YYYYMM) of the rollups from the raw calls first."
                ),
            ],
            None,
        ),
    ],
    "whatif": [
        ("feature", Annotated[str, typer.Option(help="The feature whose calls to re-price.")], _REQUIRED),
        (
            "model",
            Annotated[str, typer.Option("--model", help="Target provider/model, e.g. openai/gpt-4o-mini.")],
            _REQUIRED,
        ),
        ("tenant", Annotated[str, typer.Option(help="Only this tenant's calls (at its contract prices).")], ""),
        (
            "token_ratio",
            Annotated[
                float | None,
                typer.Option(
                    "--token-ratio",
                    help="Target tokens / current tokens for the same text (tokenizers differ); scales every count.",
                ),
            ],
            None,
        ),
    ],
}  # fmt: skip


def _parameters(name: str, report: Report) -> list[inspect.Parameter]:
    """The command's parameters: its own options, the window, where to read, the format."""
    own = [(n, kind, default) for n, kind, default in _OWN_OPTIONS.get(name, [])]
    window_options = [
        ("since", Since, None),
        ("until", Until, None),
        ("days", Days, report.days),
        ("env", Env, DEFAULT_ENV),
    ]
    common = [*(window_options if report.windowed else []), ("api", Api, DEFAULT_API), ("storage", StorageDsn, None),
              ("output", Output, Format.table)]  # fmt: skip
    if report.windowed and report.source is None:
        common.append(("source", SourceOption, Source.rollup))
    if report.prices:
        common.append(("prices", PricesFile, None))
    return [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
            for n, kind, default in [*own, *common]]  # fmt: skip


def _options(report: Report, given: dict[str, Any]) -> ReportOptions:
    ratio = given.get("token_ratio")
    return ReportOptions(
        source=report.source or given.get("source", Source.rollup),
        dimension=given.get("by", Dimension.tenant),
        feature=given.get("feature", ""),
        n=given.get("top", 10),
        shared=tuple(given.get("shared", ())),
        model=given.get("model", ""),
        tenant=given.get("tenant", ""),
        token_ratio=Decimal(str(ratio)) if ratio is not None else None,
    )


def _command(name: str, report: Report) -> Callable[..., None]:
    """``featurecost report <name>``: the report's options in, its payload rendered out."""

    def command(**given: Any) -> None:
        options = _options(report, given)
        env = given.get("env", "all")
        since, until, days = given.get("since"), given.get("until"), given.get("days", 1)
        if not report.windowed:
            for month in given.get("rebuild_month") or []:
                rebuild(month, given["api"], given["storage"])
            until = datetime.now(UTC).isoformat()
        title = report.title.format(by=options.dimension.value, top=options.n, feature=options.feature,
                                    model=options.model)  # fmt: skip
        headers = {"value": options.dimension.value} if name == "breakdown" else None
        api, storage, output = given["api"], given["storage"], given["output"]
        payload = produce(name, api, storage, window(since, until, days, env), options, given.get("prices"))
        empty = ""
        if not payload["rows"] and output is Format.table and name not in EMPTY:
            empty = explain_empty(api, storage, env, options.feature)
        render(payload, output, title, headers=headers, empty=empty)

    command.__name__ = name.replace("-", "_")
    command.__doc__ = report.summary
    command.__signature__ = inspect.Signature(_parameters(name, report))  # type: ignore[attr-defined]
    return command


def register(report_app: typer.Typer) -> None:
    """Add a command to ``featurecost report`` for every report the registry gives a summary."""
    for name, report in REPORTS.items():
        if report.summary:
            report_app.command(name)(_command(name, report))
