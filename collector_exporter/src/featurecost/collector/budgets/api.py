"""Budget endpoints of the collector's API.

``GET /api/v1/budgets/decision`` answers from the evaluator's last snapshot (no query),
so apps may ask before every LLM call. ``/status`` lists every budget's state and
``/alerts`` the recent alerts; ``/prices`` gives the guard per-token prices for its
pre-flight estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featurecost.collector.alerts import AlertStore
from featurecost.collector.budgets.decision import decide
from featurecost.collector.budgets.evaluator import BudgetEvaluator
from featurecost.collector.pricing import Pricer
from featurecost.collector.records import CallRecord
from featurecost.instrumentation import attributes as attrs

_MILLION = 1_000_000
_DIMENSIONS = ("feature", "tenant", "user", "environment")


def _probe(provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    now = datetime.now(UTC)
    record = CallRecord(
        trace_id="", span_id="", start_time=now, end_time=now, environment="", service_name="", feature="",
        tenant="", user_id="", plan="", root_id="", session_id="", version="", operation="chat",
        provider=provider, request_model=model, response_model="", input_tokens=input_tokens,
        output_tokens=output_tokens, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
        usage_source=attrs.USAGE_REPORTED, status="ok",
    )  # fmt: skip
    return Pricer().price(record).cost_usd


def unit_prices(provider: str, model: str) -> dict[str, str | None]:
    """USD per million input and output tokens, as the collector would price them now."""
    per_input = _probe(provider, model, _MILLION, 0)
    per_output = _probe(provider, model, 0, _MILLION)
    return {
        "provider": provider,
        "model": model,
        "input_usd_per_mtok": None if per_input is None else str(per_input),
        "output_usd_per_mtok": None if per_output is None else str(per_output),
    }


def budget_routes(evaluator: BudgetEvaluator | None, alerts: AlertStore | None = None) -> list[Route]:
    def not_configured() -> Response:
        return JSONResponse({"error": "no budgets file: start the collector with --budgets-file"}, status_code=404)

    async def decision(request: Request) -> Response:
        if evaluator is None:
            # No budgets: nothing can refuse a call.
            return JSONResponse({"decision": "allow", "evaluated_at": None, "budget": None, "budgets": []})
        snapshot = evaluator.snapshot
        if snapshot is None:
            return JSONResponse({"error": "budgets not evaluated yet"}, status_code=503, headers={"Retry-After": "1"})
        query = {dim: request.query_params.get(dim, "") for dim in _DIMENSIONS}
        query["feature"] = query["feature"] or attrs.DEFAULT_FEATURE
        query["environment"] = query["environment"] or "production"
        return JSONResponse(decide(snapshot, query).to_json())

    async def status(request: Request) -> Response:
        if evaluator is None:
            return not_configured()
        snapshot = evaluator.snapshot
        if snapshot is None:
            return JSONResponse({"error": "budgets not evaluated yet"}, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse(
            {
                "evaluated_at": snapshot.evaluated_at.isoformat(),
                "evaluation_failures": evaluator.failures,
                "budgets": [s.to_json() for s in snapshot.statuses],
            }
        )

    async def recent_alerts(request: Request) -> Response:
        if alerts is None:
            return not_configured()
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        rows = await run_in_threadpool(alerts.recent, max(1, min(limit, 1000)))
        return JSONResponse(
            {"alerts": [{**a.to_json(), "status": a.status.value, "attempts": a.attempts} for a in rows]}
        )

    async def prices(request: Request) -> Response:
        model = request.query_params.get("model", "")
        if not model:
            return JSONResponse({"error": "model is required"}, status_code=400)
        provider = request.query_params.get("provider", "")
        return JSONResponse(await run_in_threadpool(unit_prices, provider, model))

    return [
        Route("/api/v1/budgets/decision", decision),
        Route("/api/v1/budgets/status", status),
        Route("/api/v1/budgets/alerts", recent_alerts),
        Route("/api/v1/budgets/prices", prices),
    ]
