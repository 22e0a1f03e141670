"""Budget endpoints of the collector's API.

``GET /api/v1/budgets/decision`` answers from the evaluator's last snapshot (no query),
so apps may ask before every LLM call. ``/status`` lists every budget's state and
``/alerts`` the recent alerts; ``/prices`` gives the guard per-token prices for its
pre-flight estimate.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featurecost.collector import attributes as attrs
from featurecost.collector.budgets.alerts import AlertStore
from featurecost.collector.budgets.decision import decide
from featurecost.collector.budgets.evaluator import BudgetEvaluator
from featurecost.collector.pipeline.records import DEFAULT_ENVIRONMENT
from featurecost.collector.pricing.pricer import Pricer

_MILLION = 1_000_000
_DIMENSIONS = ("feature", "tenant", "user", "environment")


def unit_prices(pricer: Pricer, provider: str, model: str) -> dict[str, str | None]:
    """USD per million input and output tokens, as the collector would price them now."""
    prices = pricer.token_prices(provider, model, datetime.now(UTC).date())
    return {
        "provider": provider,
        "model": model,
        "input_usd_per_mtok": None if prices is None else str(prices.input * _MILLION),
        "output_usd_per_mtok": None if prices is None else str(prices.output * _MILLION),
    }


def budget_routes(
    evaluator: BudgetEvaluator | None, alerts: AlertStore | None = None, pricer: Pricer | None = None
) -> list[Route]:
    """The budget endpoints; ``pricer`` is the pipeline's, so estimates use the same
    overrides (contract prices) as the calls they are compared with."""
    pricer = pricer or Pricer()

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
        query["environment"] = query["environment"] or DEFAULT_ENVIRONMENT
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
        return JSONResponse(await run_in_threadpool(unit_prices, pricer, provider, model))

    return [
        Route("/api/v1/budgets/decision", decision),
        Route("/api/v1/budgets/status", status),
        Route("/api/v1/budgets/alerts", recent_alerts),
        Route("/api/v1/budgets/prices", prices),
    ]
