"""``/api/v1/prices/*``: ``featurecost prices unpriced|explain|reprice`` against a running collector.

The collector prices with the prices file it was started with. ``explain`` and ``reprice``
read that file again, so a user who has just added the missing model sees it applied without
a restart; ``reprice`` then also hands the new prices to the pipeline, so calls arriving after
the fix are priced like the history it restated. A prices file that no longer loads is a 400
with the entry at fault, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featurecost.collector.pricing.overrides import PricesFileError
from featurecost.collector.pricing.pricer import Pricer
from featurecost.collector.pricing.restatement import reprice
from featurecost.collector.pricing.service import (
    PricesQueryError,
    explain_call,
    reprice_result_json,
    unpriced_models,
)
from featurecost.collector.reports.window import parse_utc
from featurecost.collector.storage.client import Storage


def _time(request: Request, name: str, default: datetime | None) -> datetime:
    value = request.query_params.get(name)
    if value:
        return parse_utc(value, name)
    if default is None:
        raise ValueError(f"{name} is required")
    return default


def prices_routes(
    storage: Storage, pricer: Pricer, prices_file: Path | None, on_change: Callable[[], str | None] | None = None
) -> list[Route]:
    """``pricer``: the one that prices the calls; a reprice makes it use the re-read prices file
    and then calls ``on_change`` (the other collector processes reload theirs: pricing/sync.py);
    its problem, if any, is a 503 (a repeated reprice restates nothing twice and retries)."""
    live = pricer

    def fresh_pricer() -> Pricer:
        # the prices file read again, the genai-prices data the pipeline prices with now
        # (the pinned package's, or what `featurecost prices update` loaded)
        return Pricer.from_file(prices_file, live.data)

    def error(exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def unpriced(request: Request) -> Response:
        try:
            until = _time(request, "until", datetime.now(UTC) + timedelta(seconds=1))
            since = _time(request, "since", until - timedelta(days=30))
        except ValueError as exc:
            return error(exc)
        rows = await run_in_threadpool(unpriced_models, storage, since, until)
        return JSONResponse({"since": since.isoformat(), "until": until.isoformat(), "rows": rows})

    async def explain(request: Request) -> Response:
        span_id = request.query_params.get("span_id", "")
        if not span_id:
            return error(ValueError("span_id is required"))
        try:
            pricer = await run_in_threadpool(fresh_pricer)
            payload = await run_in_threadpool(
                explain_call, storage, pricer, span_id, request.query_params.get("trace_id", "")
            )
        except PricesQueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except PricesFileError as exc:
            return error(exc)
        return JSONResponse(payload)

    async def reprice_route(request: Request) -> Response:
        params = request.query_params
        try:
            since = _time(request, "since", None)
            until = _time(request, "until", datetime.now(UTC) + timedelta(seconds=1))
            if since >= until:
                raise ValueError("since must be before until")
            pricer = await run_in_threadpool(fresh_pricer)
        except (ValueError, PricesFileError) as exc:
            return error(exc)
        dry_run = params.get("dry_run", "false").lower() in ("1", "true", "yes")
        result = await run_in_threadpool(
            reprice, storage, pricer, since, until,
            model=params.get("model", ""), reason=params.get("reason", "reprice"), dry_run=dry_run,
        )  # fmt: skip
        if not dry_run:
            live.use_overrides(pricer.overrides)
            problem = await run_in_threadpool(on_change) if on_change is not None else None
            if problem:
                return JSONResponse({"error": problem}, status_code=503)
        return JSONResponse(reprice_result_json(result, dry_run))

    return [
        Route("/api/v1/prices/unpriced", unpriced),
        Route("/api/v1/prices/explain", explain),
        Route("/api/v1/prices/reprice", reprice_route, methods=["POST"]),
    ]
