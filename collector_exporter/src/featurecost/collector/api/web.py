"""The built-in web page: per-feature cost charts for the embedded default.

With embedded chDB the collector owns the data directory, so nothing else can open
it; the page is served by the collector's API app and reads the same report API
the CLI uses (no database access of its own). Static files only, no CDN: charts are
plain SVG drawn by ``web/app.js``, so the page works on a closed network.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(str(resources.files("featurecost.collector.api") / "static"))


async def index(request: Request) -> Response:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def web_routes() -> list[BaseRoute]:
    """``/`` (the page) and ``/web/*`` (its script and style sheet)."""
    return [Route("/", index), Mount("/web", app=StaticFiles(directory=WEB_DIR), name="web")]
