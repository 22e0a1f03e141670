"""Seeded calls for the report tests, and the expected numbers computed here in plain
Python from the generated records (never with featurecost's SQL)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from featurecost.collector.pipeline.records import CallRecord

Q = Decimal("1e-18")
WEEK0 = date(2026, 9, 7)  # a Monday
WEEKS = [WEEK0 + timedelta(days=7 * i) for i in range(6)]
FEATURES = ("support-bot", "draft-email", "embeddings", "unattributed")
TENANTS = ("acme", "globex", "initech")
PLANS = {"acme": "enterprise", "globex": "pro", "initech": "free"}
# support-bot's sessions get dearer every week from week 2 on: a regression to find.
GROWTH = {"support-bot": [Decimal(x) for x in ("1", "1", "1.10", "1.20", "1.30", "1.30")]}
MODELS = {
    "support-bot": ("openai", "gpt-4o-mini"),
    "draft-email": ("anthropic", "claude-sonnet-4-6"),
    "embeddings": ("openai", "text-embedding-3-small"),
    "unattributed": ("openai", "gpt-4o-mini"),
    "private-model": ("openai", "acme-private-llm"),
}


def q(value: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80
        return value.quantize(Q)


def ratio(a: Decimal | int, b: Decimal | int) -> Decimal | None:
    if not b:
        return None
    with localcontext() as ctx:
        ctx.prec = 80
        return (Decimal(a) / Decimal(b)).quantize(Q)


@dataclass
class Restatement:
    call: CallRecord
    delta: Decimal
    restatement_id: str


@dataclass
class Seed:
    calls: list[CallRecord] = field(default_factory=list)
    restatements: list[Restatement] = field(default_factory=list)

    def delta_of(self, call: CallRecord) -> Decimal:
        return sum((r.delta for r in self.restatements if r.call.span_id == call.span_id), Decimal(0))


def _call(
    n: int,
    when: datetime,
    feature: str,
    tenant: str,
    user: str,
    session: str,
    root: str,
    cost: Decimal | None,
    environment: str = "production",
    version: str = "",
    cache_read: int = 0,
    cache_write: int = 0,
    input_tokens: int = 1000,
) -> CallRecord:
    provider, model = MODELS[feature]
    return CallRecord(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        start_time=when,
        end_time=when + timedelta(seconds=2),
        environment=environment,
        service_name="app",
        feature=feature,
        tenant=tenant,
        user_id=user,
        plan=PLANS[tenant],
        root_id=root,
        session_id=session,
        version=version,
        operation="chat",
        provider=provider,
        request_model=model,
        response_model=model,
        input_tokens=input_tokens,
        output_tokens=200,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=50 if feature == "support-bot" else 0,
        usage_source="reported",
        status="ok",
        cost_usd=cost,
        price_source="" if cost is None else "test",
        unpriced_reason="no price for test/model" if cost is None else "",
    )


def generate(seed: int = 7) -> Seed:
    rng = random.Random(seed)
    out = Seed()
    n = 0
    for w, week in enumerate(WEEKS):
        week_start = datetime(week.year, week.month, week.day, tzinfo=UTC)
        base = random.Random(1000)  # the same base costs every week: growth shows in the medians
        for feature in FEATURES:
            sessions = 14 if feature != "unattributed" else 4
            for s in range(sessions):
                tenant = TENANTS[s % 3]
                user = f"{tenant}-u{s % 4}"
                session = f"{feature}-w{w}-s{s}"
                start = week_start + timedelta(hours=rng.randrange(0, 24 * 6), minutes=rng.randrange(60))
                version = ("v1", "v2")[s % 2] if feature == "support-bot" else ""
                for a in range(1 + s % 2):
                    root = f"{session}-a{a}"
                    for c in range(1 + (s + a) % 3):
                        n += 1
                        cost = Decimal(base.randint(100, 5000)) / Decimal(100_000)
                        cost = q(cost * GROWTH.get(feature, [Decimal(1)] * 6)[w])
                        if feature == "support-bot" and w == 5 and s == 0:
                            cost *= 60  # a runaway session: anomalous against the trailing weeks
                        priced = not (feature == "draft-email" and s == 13 and c == 0)
                        when = start + timedelta(minutes=a * 10 + c)
                        cache_read = 600 if feature == "support-bot" else 0
                        cache_write = 300 if feature == "draft-email" else 0
                        out.calls.append(
                            _call(n, when, feature, tenant, user, session, root, cost if priced else None,
                                  version=version, cache_read=cache_read, cache_write=cache_write)
                        )  # fmt: skip
        # staging traffic: excluded unless every environment is asked for
        n += 1
        out.calls.append(
            _call(n, week_start + timedelta(hours=5), "support-bot", "acme", "acme-u0", f"stg-{w}", f"stg-{w}",
                  Decimal("7.5"), environment="staging")
        )  # fmt: skip
    # restatements: a repricing that adds to two priced calls and prices an unpriced one
    priced = [c for c in out.calls if c.cost_usd is not None and c.environment == "production"]
    unpriced = [c for c in out.calls if c.cost_usd is None]
    out.restatements = [
        Restatement(priced[10], Decimal("0.010000000000000001"), "r1"),
        Restatement(priced[400], Decimal("-0.002"), "r1"),
        Restatement(unpriced[0], Decimal("0.03"), "r1"),
    ]
    return out


def duplicate_of(call: CallRecord) -> CallRecord:
    return replace(call)


# --- expected numbers -------------------------------------------------------------


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def quantile(values: list[Decimal], level: float) -> Decimal:
    """Exact quantile: the sorted value at 0-based index floor(level * n)."""
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


@dataclass
class SessionCost:
    cost: Decimal = Decimal(0)
    priced: bool = True


def session_costs(data: Seed, environment: str = "production") -> dict[tuple[date, str], dict[str, SessionCost]]:
    """(week, feature) -> session -> cost within that week, deltas included."""
    result: dict[tuple[date, str], dict[str, SessionCost]] = defaultdict(lambda: defaultdict(SessionCost))
    for c in data.calls:
        if c.environment != environment:
            continue
        s = result[(monday(c.start_time.date()), c.feature)][c.session_id]
        s.cost += (c.cost_usd or Decimal(0)) + data.delta_of(c)
        s.priced = s.priced and c.cost_usd is not None
    return result


def revenue_in(rows: list[tuple[str, date, date, Decimal]], start: date, end: date) -> Decimal:
    """Revenue prorated by days of overlap with [start, end): rows are (tenant, first, last, revenue)."""
    total = Decimal(0)
    for _tenant, first, last, revenue in rows:
        overlap = (min(last + timedelta(days=1), end) - max(first, start)).days
        if overlap <= 0:
            continue
        period = (last - first).days + 1
        with localcontext() as ctx:
            ctx.prec = 80
            total += (revenue * overlap / period).quantize(Q, rounding=ROUND_DOWN)
    return total


RESTATEMENT_COLUMNS = (
    "trace_id", "span_id", "start_time", "environment", "feature", "tenant", "user_id", "plan", "root_id",
    "session_id", "version", "provider", "request_model", "response_model", "cost_delta_usd", "price_source",
    "price_entry", "price_data_version", "reason", "restated_at", "restatement_id",
)  # fmt: skip


def restatement_rows(data: Seed) -> list[list[object]]:
    restated_at = datetime(2026, 11, 1, tzinfo=UTC)
    rows: list[list[object]] = []
    for r in data.restatements:
        c = r.call
        rows.append([
            c.trace_id, c.span_id, c.start_time, c.environment, c.feature, c.tenant, c.user_id, c.plan, c.root_id,
            c.session_id, c.version, c.provider, c.request_model, c.response_model, r.delta, "test", "entry", "v2",
            "repriced", restated_at, r.restatement_id,
        ])  # fmt: skip
    return rows
