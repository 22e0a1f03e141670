"""The collector's read side: health, status and the report API.

When the collector embeds chDB it owns the data directory (one process per
directory), so the CLI and the web page read reports through these endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from featurecost.collector.api.security import ApiAccess, ApiSecurity
from featurecost.collector.api.stored_count import StoredCallsCount
from featurecost.collector.api.web import web_routes
from featurecost.collector.ingest.wal import WriteAheadLog
from featurecost.collector.metrics import CONTENT_TYPE, Metrics
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT
from featurecost.collector.pipeline.worker import Pipeline
from featurecost.collector.pricing.price_update import forget_price_data, newly_priced, save_price_data
from featurecost.collector.pricing.pricer import PriceData, PriceDataError, Pricer
from featurecost.collector.reports import (
    REPORTS,
    OpenMonthError,
    ReportError,
    ReportOptions,
    Window,
    feature_costs,
    rebuild_rollups,
    run_report,
)
from featurecost.collector.reports.catalog import catalog
from featurecost.collector.reports.window import parse_utc
from featurecost.collector.storage.client import Storage
from featurecost.collector.storage.usage_import import UsageImportError, parse_usage_csv, store_usage


def _parse_time(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_utc(value, name)


def window_from_query(params: Any) -> Window:
    environment = params.get("environment", DEFAULT_ENVIRONMENT)
    since = _parse_time(params.get("since"), "since")
    until = _parse_time(params.get("until"), "until")
    default = Window.last_days(7, environment)
    window = Window(since or default.since, until or default.until, environment)
    if window.since >= window.until:
        raise ValueError("since must be before until")
    return window


# Routes that read or write the stored calls: until the pipeline has connected to storage and
# applied the migrations they would query a half-made schema (a 500, or a reprice that fails
# halfway), so they answer a retryable 503 instead. Status, health, metrics, the page and the
# budget decisions (held in memory) stay up.
_STORAGE_ROUTES = (
    "/api/v1/reports/",
    "/api/v1/catalog",
    "/api/v1/import/",
    "/api/v1/rollups/",
    "/api/v1/prices/",
)
# ... except these, which read or change only the pricer in memory (``prices update`` asks the
# data version first: right after a start it must not wait for storage)
_PRICER_ONLY = frozenset({("GET", "/api/v1/prices/data"), ("DELETE", "/api/v1/prices/data")})


def _needs_storage(method: str, path: str) -> bool:
    return path.startswith(_STORAGE_ROUTES) and (method, path) not in _PRICER_ONLY


class _StorageGate:
    def __init__(self, app: ASGIApp, pipeline: Pipeline) -> None:
        self.app = app
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        waiting = scope["type"] == "http" and not self.pipeline.storage_ready
        if waiting and _needs_storage(scope["method"], scope["path"]):
            error = self.pipeline.last_error or "connecting to storage and applying migrations"
            response = JSONResponse(
                {"error": f"storage is not ready yet ({error}); retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_api_app(
    storage: Storage,
    wal: WriteAheadLog,
    pipeline: Pipeline,
    receiver_stats: Any,
    ingest_ready: Callable[[], bool] = lambda: True,
    extra_routes: Sequence[Route] = (),
    metrics: Metrics | None = None,
    forward_stats: Any = None,
    access: ApiAccess | None = None,
    data_dir: Path | None = None,
    pricer: Pricer | None = None,
    on_prices_changed: Callable[[], str | None] | None = None,
) -> Starlette:
    """The API app; ``access`` (tokens, body limit) guards every route (api_security.py).

    ``pricer``: the one that prices the calls (the server passes the pricer it gave the
    pipeline): its stats, the reports that price and ``prices update`` use it. ``None``: the
    pipeline's, for an API built around a pipeline alone. ``on_prices_changed``: called after
    ``prices update`` changed the pricer, so other collector processes reload theirs; the
    reason they could not be told, if any, is a 503.
    """

    def live_pricer() -> Pricer:
        return pricer if pricer is not None else pipeline.pricer

    stored_calls = StoredCallsCount(lambda: storage.stored_calls(), lambda: pipeline.stats.calls_stored)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        if not pipeline.running:
            return PlainTextResponse("pipeline not running", status_code=503)
        if pipeline.blocked:
            return PlainTextResponse(f"storage cannot progress: {pipeline.blocked}", status_code=503)
        if not ingest_ready():
            return PlainTextResponse("OTLP receiver not listening yet", status_code=503)
        return PlainTextResponse("ready")

    async def status(request: Request) -> Response:
        body: dict[str, Any] = {
            "wal": {
                "checkpoint": str(wal.checkpoint),
                "end": str(wal.end),
                "pending_bytes": wal.pending_bytes(),
                "bytes": wal.total_bytes(),
                "oldest_unstored_seconds": round(wal.oldest_unstored_age(), 3),
            },
            "pipeline": {
                **asdict(pipeline.stats),
                "running": pipeline.running,
                "storage_ready": pipeline.storage_ready,
                "last_error": pipeline.last_error,
                "blocked": pipeline.blocked,
            },
            "pricing": live_pricer().stats.to_json(),
            "receiver": asdict(receiver_stats),
        }
        if forward_stats is not None:
            body["forward"] = asdict(forward_stats)
        try:
            body["stored_calls"] = await stored_calls.get()
        except Exception as exc:  # storage down: the WAL spools; say so instead of failing opaquely
            body["stored_calls"] = None
            body["storage_error"] = f"{type(exc).__name__}: {exc}"
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def prometheus(request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("metrics not enabled", status_code=404)
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    async def report_feature_costs(request: Request) -> Response:
        try:
            window = window_from_query(request.query_params)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        feature, tenant = request.query_params.get("feature", ""), request.query_params.get("tenant", "")
        rows = await run_in_threadpool(feature_costs, storage, window, feature, tenant)
        return JSONResponse(
            {
                "window": {
                    "since": window.since.isoformat(),
                    "until": window.until.isoformat(),
                    "environment": window.environment,
                },
                "rows": [row.to_json() for row in rows],
            }
        )

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in REPORTS:
            return JSONResponse({"error": f"no report {name!r}; reports: {sorted(REPORTS)}"}, status_code=404)
        try:
            window = window_from_query(request.query_params)
            options = ReportOptions.from_query(request.query_params)
            payload = await run_in_threadpool(run_report, name, storage, window, options, live_pricer())
        except (ValueError, ReportError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(payload)

    async def catalog_route(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(catalog, storage))

    async def import_usage(request: Request) -> Response:
        body = await request.body()
        try:
            rows = parse_usage_csv(body.decode("utf-8"))
        except UnicodeDecodeError:
            return JSONResponse({"error": "CSV must be UTF-8"}, status_code=400)
        except UsageImportError as exc:
            return JSONResponse(
                {"error": "invalid CSV", "errors": [{"line": e.line, "message": e.message} for e in exc.errors]},
                status_code=400,
            )
        source = request.query_params.get("source", "api")
        imported = await run_in_threadpool(store_usage, storage, rows, source)
        return JSONResponse({"imported": imported})

    async def rebuild(request: Request) -> Response:
        try:
            month = int(request.query_params.get("month", ""))
            if not 190001 <= month <= 299912 or not 1 <= month % 100 <= 12:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "month=YYYYMM required"}, status_code=400)
        try:
            await run_in_threadpool(rebuild_rollups, storage, month)
        except OpenMonthError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"rebuilt": month})

    async def prices_changed() -> str | None:
        return await run_in_threadpool(on_prices_changed) if on_prices_changed is not None else None

    async def price_data(request: Request) -> Response:
        """``featurecost prices update``: GET the data version, POST a genai-prices data file,
        DELETE to go back to the pinned package data."""
        pricer = live_pricer()
        if request.method == "GET":
            return JSONResponse({"data_version": pricer.data_version})
        if data_dir is None:
            return JSONResponse({"error": "this collector has no data directory to keep price data in"}, 409)
        if request.method == "DELETE":
            await run_in_threadpool(forget_price_data, data_dir)
            pricer.use_data(PriceData.bundled())
            if problem := await prices_changed():
                return JSONResponse({"error": problem}, status_code=503)
            return JSONResponse({"data_version": pricer.data_version, "newly_priced": []})
        content = await request.body()
        try:
            data = await run_in_threadpool(PriceData.parse, content, "request body")
        except PriceDataError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        await run_in_threadpool(save_price_data, data_dir, content)
        pricer.use_data(data)
        if problem := await prices_changed():
            return JSONResponse({"error": problem}, status_code=503)
        newly = await run_in_threadpool(newly_priced, storage, pricer)
        return JSONResponse({"data_version": data.version, "newly_priced": [n.to_json() for n in newly]})

    return Starlette(
        middleware=[Middleware(ApiSecurity, access=access or ApiAccess()), Middleware(_StorageGate, pipeline=pipeline)],
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/api/v1/status", status),
            Route("/metrics", prometheus),
            Route("/api/v1/reports/feature-costs", report_feature_costs),
            Route("/api/v1/reports/{name}", report),
            Route("/api/v1/catalog", catalog_route),
            Route("/api/v1/import/usage", import_usage, methods=["POST"]),
            Route("/api/v1/rollups/rebuild", rebuild, methods=["POST"]),
            Route("/api/v1/prices/data", price_data, methods=["GET", "POST", "DELETE"]),
            *web_routes(),
            *extra_routes,
        ],
    )
