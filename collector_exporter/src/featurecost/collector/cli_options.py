"""Option parsing shared by the CLI's sub-commands."""

from __future__ import annotations

from datetime import datetime

import typer

from featurecost.collector.reports.window import parse_utc


def time_option(value: str, option: str) -> datetime:
    """An ISO-8601 time option as an aware datetime (naive means UTC); a clear error otherwise."""
    try:
        return parse_utc(value, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
