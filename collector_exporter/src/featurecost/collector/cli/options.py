"""Option parsing shared by the CLI's sub-commands."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import typer
from clickhouse_connect.driver.exceptions import ClickHouseError
from typer.core import TyperOption

from featurecost.collector.cli.output import fail
from featurecost.collector.reports.window import parse_utc
from featurecost.collector.storage.client import Storage

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
        fail(f"cannot reach the collector API at {api} ({type(exc).__name__}); {unreachable_hint}")
    if response.status_code != 200:
        try:
            body = response.json()
            message = body.get("error", response.text) if isinstance(body, dict) else response.text
        except ValueError:
            message = response.text
        if response.status_code == 400:  # the request was wrong: a usage error, like a bad option
            raise typer.BadParameter(str(message))
        fail(f"collector API answered {response.status_code}: {message}")
    result: dict[str, Any] = response.json()
    return result


def _flag_type_hidden(display: Callable[[TyperOption, Any], str | None]) -> Any:
    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:  # ctx: typer's vendored click Context
        return None if self.is_flag else display(self, ctx)

    display_type_rich.__wrapped__ = display  # type: ignore[attr-defined]
    return display_type_rich


def hide_flag_types() -> None:
    """Typer's rich help labels every on/off flag (``--help``, ``--dry-run``) ``<bool>``, as
    if it took a value; click's plain help shows nothing there. Applied once by the CLI."""
    if not hasattr(TyperOption.display_type_rich, "__wrapped__"):
        TyperOption.display_type_rich = _flag_type_hidden(TyperOption.display_type_rich)  # type: ignore[method-assign]


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[Callable[[], str]]:
    """Capture what native code writes to fd 2 (chDB prints its own lock error there)."""
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors="replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def opened_storage(dsn: str, *, migrate: bool = False) -> Iterator[Storage]:
    """``--storage DSN`` for a CLI command; a locked embedded data directory (the collector
    is running on it) or an unreachable server is a one-line error, not a traceback."""
    try:
        if dsn.startswith("chdb:"):
            with _native_stderr_captured() as native:
                try:
                    store = Storage(dsn)
                except ClickHouseError as exc:
                    if "Cannot lock file" in native() or "already running" in native():
                        fail(
                            f"{dsn} is in use by a running collector (chDB allows one process per directory); "
                            "drop --storage to go through its API (--api)"
                        )
                    raise exc
        else:
            store = Storage(dsn)
    except ClickHouseError as exc:
        fail(f"cannot open storage {dsn}: {str(exc).splitlines()[0]}")
    try:
        if migrate:
            store.migrate()
        yield store
    finally:
        store.close()
