"""How the CLI prints data: safely, and in the units a reader expects.

Feature, tenant and model names come from spans, i.e. from any app: they are data, never
rich markup (``[/bold]`` would crash the table, ``[link=…]`` would become a terminal link,
``:notes:`` an emoji inside a fine-tuned model name the user copies into a prices file), and
their control characters are shown escaped rather than sent to the terminal.

Money in tables is ``$1,234.56``; amounts under a dollar keep four decimals so per-call
and per-action costs stay readable. JSON and CSV keep full precision as plain decimals
(``0``, ``0.000123``, never ``0E-18``).
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

# Wider than this and a table no longer fits a laptop terminal or a CI log next to its timestamp.
MAX_WIDTH = 120
NO_TENANT = "(no tenant)"


def console(*, stderr: bool = False) -> Console:
    """A console that never interprets emoji codes or highlights numbers in data; off a
    terminal it is ``MAX_WIDTH`` wide (rich would assume 80 and elide the numbers)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else MAX_WIDTH
    # Tables fit ``width``; print a line of text meant to be copied (a reason, a savings action)
    # with ``soft_wrap=True`` so it stays one line.
    return Console(stderr=stderr, emoji=False, highlight=False, width=width, soft_wrap=False)


def fail(message: str) -> NoReturn:
    """One line on stderr and exit 1: for conditions that are not a mistyped option (the
    collector is not running, the data directory is locked), which typer would frame as
    "Invalid value" with usage and exit 2."""
    console(stderr=True).print(text(f"error: {message}", style="red"))
    raise typer.Exit(1)


def escape_controls(value: str) -> str:
    """Control and other unprintable characters as Python escapes (``\\x1b``, ``\\n``,
    ``\\u202e``): a span value cannot move the cursor, clear the screen or reorder text."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def text(value: object, style: str = "") -> Text:
    """Data as a rich ``Text``: printed literally, never parsed as markup."""
    return Text(escape_controls(str(value)), style=style)


def plain_decimal(value: Decimal) -> str:
    """Full precision without exponent or trailing zeros: ``0E-18`` → ``0``, ``1.50`` → ``1.5``."""
    if value == 0:
        return "0"
    formatted = f"{value:f}"
    return formatted.rstrip("0").rstrip(".") if "." in formatted else formatted


def money(value: Decimal | None, *, unpriced: str = "unpriced") -> str:
    if value is None:
        return unpriced
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount == 0 or amount >= 1:
        return f"{sign}${amount:,.2f}"
    if amount < Decimal("0.0001"):
        return f"{sign}<$0.0001"
    return f"{sign}${amount:,.4f}"


def month(value: int) -> str:
    """A ``YYYYMM`` partition key as ``2026-12``."""
    return f"{value // 100:04d}-{value % 100:02d}"


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def plain_numbers(value: Any, key: str = "") -> Any:
    """JSON/CSV payloads with decimal strings of money, shares and ratios rewritten as plain
    decimals (recursively); names and everything else untouched."""
    if isinstance(value, dict):
        return {k: plain_numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v, key) for v in value]
    if isinstance(value, str) and is_numeric_key(key):
        number = as_decimal(value)
        return value if number is None else plain_decimal(number)
    return value


def is_numeric_key(key: str) -> bool:
    return key.endswith(("_usd", "_pct", "share", "ratio")) or "per_action" in key or "per_user" in key
