"""Drive Debian's ``chromium`` headless: rendered DOM and screenshots, plus a stdlib PNG decoder.

``make test`` installs chromium (``make browser-deps``) when it is missing. Readiness is
the page's own ``data-ready`` marker: Chromium's virtual time does not advance while
fetches are pending, so ``--virtual-time-budget`` lets the page finish its report calls
before the DOM is dumped; a dump without the marker is retried with a larger budget.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
)


def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        raise AssertionError("chromium is not installed: run `make browser-deps` (apt-get install chromium)")
    return binary


def _run(args: list[str], budget_ms: int) -> str:
    return _run_both(args, budget_ms)[0]


def _run_both(args: list[str], budget_ms: int) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="featurecost-chromium-") as profile:
        completed = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if completed.returncode != 0:
        raise AssertionError(f"chromium failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return completed.stdout, completed.stderr


def console_messages(url: str) -> list[str]:
    """What the page wrote to the JavaScript console (``console.*`` and uncaught errors), as
    Chromium logs it with ``--enable-logging=stderr``: ``"message", source: URL (line)``."""
    _, stderr = _run_both(["--enable-logging=stderr", "--v=0", "--dump-dom", url], 20_000)
    return [line.split("] ", 1)[-1] for line in stderr.splitlines() if ":CONSOLE" in line]


def rendered_dom(url: str, marker: str = 'data-ready="', attempts: int = 3) -> str:
    """The DOM after the page set ``data-ready`` to something other than ``false``."""
    budget = 10_000
    dom = ""
    for _ in range(attempts):
        dom = _run(["--dump-dom", url], budget)
        if marker in dom and 'data-ready="false"' not in dom:
            return dom
        budget *= 3
    raise AssertionError(f"page never became ready:\n{dom[:3000]}")


def screenshot(url: str, path: Path, width: int = 1280, height: int = 900) -> Path:
    _run([f"--screenshot={path}", f"--window-size={width},{height}", url], 20_000)
    if not path.exists():
        raise AssertionError("chromium wrote no screenshot")
    return path


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    pixels: bytes  # rows of width * channels bytes, filters removed

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        i = (y * self.width + x) * self.channels
        return self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> Image:
    """8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) → raw pixels."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    offset, idat = 8, bytearray()
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, color type {color}, interlace {interlace}")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    out = bytearray(height * stride)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                up_left = previous[i - channels] if i >= channels else 0
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter {kind}")
        out[y * stride : (y + 1) * stride] = line
        previous = line
    return Image(width, height, channels, bytes(out))


class TableRows(HTMLParser):
    """Collect ``<tr data-feature=...>`` rows (or another ``row_attribute``): {feature:
    {data-key: cell text}}, and the text inside ``<div id=...>`` / ``<dd id=...>`` elements by id."""

    ID_TAGS = frozenset({"div", "dd"})

    def __init__(self, row_attribute: str = "data-feature") -> None:
        super().__init__()
        self.row_attribute = row_attribute
        self.rows: dict[str, dict[str, str]] = {}
        self._feature: str | None = None
        self._key: str | None = None
        self.texts_by_id: dict[str, str] = {}
        self._id_stack: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and attributes.get(self.row_attribute) is not None:
            self._feature = attributes[self.row_attribute]
            self.rows[self._feature or ""] = {}
        elif tag == "td" and self._feature is not None:
            self._key = attributes.get("data-key") or "feature"
            self.rows[self._feature].setdefault(self._key, "")
        if tag in self.ID_TAGS:
            self._id_stack.append(attributes.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._feature = None
        elif tag == "td":
            self._key = None
        elif tag in self.ID_TAGS and self._id_stack:
            self._id_stack.pop()

    def handle_data(self, data: str) -> None:
        if self._feature is not None and self._key is not None:
            self.rows[self._feature][self._key] += data
        for element_id in self._id_stack:
            if element_id:
                self.texts_by_id[element_id] = self.texts_by_id.get(element_id, "") + data
