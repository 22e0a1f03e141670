"""Option parsing shared by the CLI's sub-commands."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
import typer

from featurecost.collector.reports.window import parse_utc

API_TOKEN_ENV = "FEATURECOST_API_TOKEN"
ADMIN_TOKEN_ENV = "FEATURECOST_ADMIN_TOKEN"


def time_option(value: str, option: str) -> datetime:
    """An ISO-8601 time option as an aware datetime (naive means UTC); a clear error otherwise."""
    try:
        return parse_utc(value, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def api_auth_headers(method: str) -> dict[str, str]:
    """The token the collector's --api-token / --admin-token expects, from the environment
    (writes prefer FEATURECOST_ADMIN_TOKEN)."""
    token = (os.environ.get(ADMIN_TOKEN_ENV) if method.upper() != "GET" else None) or os.environ.get(API_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


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
    headers = api_auth_headers(method)
    try:
        response = httpx.request(
            method, f"{api.rstrip('/')}{path}", params=params, content=content, timeout=timeout, headers=headers
        )
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
