"""Option parsing shared by the CLI's sub-commands."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
import typer

from featurecost.collector.reports.window import parse_utc


def time_option(value: str, option: str) -> datetime:
    """An ISO-8601 time option as an aware datetime (naive means UTC); a clear error otherwise."""
    try:
        return parse_utc(value, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def collector_api(
    method: str,
    api: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    content: bytes | None = None,
    timeout: float = 30,
    unreachable_hint: str = "or read storage directly with --storage",
) -> dict[str, Any]:
    """Call the collector's API for a CLI command; connection errors and non-200 answers
    become a clear usage error (the API's ``error`` message when it gave one)."""
    try:
        response = httpx.request(method, f"{api.rstrip('/')}{path}", params=params, content=content, timeout=timeout)
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach the collector API at {api} ({exc}); {unreachable_hint}") from exc
    if response.status_code != 200:
        try:
            body = response.json()
            message = body.get("error", response.text) if isinstance(body, dict) else response.text
        except ValueError:
            message = response.text
        raise typer.BadParameter(f"collector API answered {response.status_code}: {message}")
    result: dict[str, Any] = response.json()
    return result
