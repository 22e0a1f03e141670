"""Shared by the budgets tests: calls and restatements written through the real storage."""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from featurecost.collector.pipeline.records import CallRecord
from featurecost.collector.storage.client import Storage

_ids = itertools.count(1)

RESTATEMENT_COLUMNS = (
    "trace_id", "span_id", "start_time", "environment", "feature", "tenant", "user_id", "plan", "root_id",
    "session_id", "version", "provider", "request_model", "response_model", "cost_delta_usd", "price_source",
    "price_entry", "price_data_version", "reason", "restated_at", "restatement_id",
)  # fmt: skip


def make_call(
    start: datetime,
    cost: Decimal | str | None,
    *,
    feature: str = "support-bot",
    tenant: str = "acme",
    user: str = "u-1",
    environment: str = "production",
    session: str | None = None,
    model: str = "gpt-4o-mini",
) -> CallRecord:
    n = next(_ids)
    return CallRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=start, end_time=start + timedelta(seconds=1),
        environment=environment, service_name="app", feature=feature, tenant=tenant, user_id=user, plan="",
        root_id=f"root-{n}", session_id=session or f"session-{n}", version="", operation="chat",
        provider="openai", request_model=model, response_model=model, input_tokens=100, output_tokens=10,
        cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0, usage_source="reported", status="ok",
        cost_usd=None if cost is None else Decimal(cost),
        price_source="" if cost is None else "genai-prices",
        unpriced_reason="no price for openai/acme-private" if cost is None else "",
    )  # fmt: skip


def insert(storage: Storage, *records: CallRecord) -> list[CallRecord]:
    storage.insert_calls(list(records), dedup_token=uuid.uuid4().hex)
    return list(records)


def restate(storage: Storage, call: CallRecord, delta: Decimal | str, restated_at: datetime) -> None:
    """Append a re-pricing delta for ``call``, as the pricing stage does."""
    row = [
        call.trace_id, call.span_id, call.start_time, call.environment, call.feature, call.tenant, call.user_id,
        call.plan, call.root_id, call.session_id, call.version, call.provider, call.request_model,
        call.response_model, Decimal(delta), "override", "contract", "test", "contract price", restated_at,
        uuid.uuid4().hex,
    ]  # fmt: skip
    storage.insert_rows("cost_restatements", [row], RESTATEMENT_COLUMNS)


def open_storage(path: Path) -> Iterator[Storage]:
    storage = Storage(f"chdb://{path}")
    storage.migrate()
    try:
        yield storage
    finally:
        storage.close()


def truncate(storage: Storage) -> None:
    for table in ("calls", "cost_restatements", "alerts", "alert_claims"):
        storage.client.command(f"TRUNCATE TABLE {table}")


@dataclass
class Receiver:
    """A webhook endpoint that answers with the scripted statuses, then 200."""

    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # called (in a worker thread, the server keeps serving) before the first POST is answered
    while_first_is_open: Callable[[], None] | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.json()
            first, self.while_first_is_open = self.while_first_is_open, None
            if first is not None:
                await asyncio.to_thread(first)
            with self.lock:
                self.attempts += 1
                status = self.script.pop(0) if self.script else 200
                if status == 200:
                    self.received.append({"body": body, "headers": dict(request.headers)})
            return JSONResponse({"ok": status == 200}, status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
