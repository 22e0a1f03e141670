from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider

import featurecost
from featurecost.instrumentation import attributes as attrs


def test_context_manager_sets_and_restores_baggage() -> None:
    assert featurecost.current_attribution() == {}
    with featurecost.attribute(feature="support-bot", tenant="acme", user="u-1", plan="pro", custom="x"):
        seen = featurecost.current_attribution()
    assert seen[attrs.FEATURE] == "support-bot"
    assert seen[attrs.TENANT] == "acme"
    assert seen[attrs.USER] == "u-1"
    assert seen[attrs.PLAN] == "pro"
    assert seen["featurecost.custom"] == "x"
    assert len(seen[attrs.ROOT_ID]) == 32
    assert featurecost.current_attribution() == {}


def test_nested_attribution_inherits_and_keeps_the_root() -> None:
    with featurecost.attribute(tenant="acme"):
        outer = featurecost.current_attribution()
        with featurecost.attribute(feature="draft-email"):
            inner = featurecost.current_attribution()
        after = featurecost.current_attribution()
    assert inner[attrs.TENANT] == "acme"
    assert inner[attrs.FEATURE] == "draft-email"
    assert inner[attrs.ROOT_ID] == outer[attrs.ROOT_ID]
    assert attrs.FEATURE not in after


def test_each_top_level_action_gets_its_own_root() -> None:
    roots = set()
    for _ in range(3):
        with featurecost.attribute(feature="f"):
            roots.add(featurecost.current_attribution()[attrs.ROOT_ID])
    assert len(roots) == 3


def test_root_is_the_trace_id_inside_a_traced_request() -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request") as span, featurecost.attribute(feature="f"):
        root = featurecost.current_attribution()[attrs.ROOT_ID]
    assert root == format(span.get_span_context().trace_id, "032x")


def test_decorator_on_sync_and_async_functions() -> None:
    @featurecost.attribute(feature="sync-feature")
    def sync() -> str | None:
        return str(baggage.get_baggage(attrs.FEATURE))

    @featurecost.attribute(feature="async-feature")
    async def coro() -> str | None:
        await asyncio.sleep(0)
        return str(baggage.get_baggage(attrs.FEATURE))

    assert sync() == "sync-feature"
    assert asyncio.run(coro()) == "async-feature"
    assert baggage.get_baggage(attrs.FEATURE) is None


def test_decorator_on_generator_never_leaks_into_the_consumer() -> None:
    @featurecost.attribute(feature="gen")
    def gen() -> Iterator[object]:
        yield baggage.get_baggage(attrs.FEATURE)
        yield baggage.get_baggage(attrs.FEATURE)

    seen_outside = []
    seen_inside = []
    for value in gen():
        seen_inside.append(value)
        seen_outside.append(baggage.get_baggage(attrs.FEATURE))
    assert seen_inside == ["gen", "gen"]
    assert seen_outside == [None, None]


def test_decorator_on_async_generator() -> None:
    @featurecost.attribute(feature="agen")
    async def agen() -> AsyncIterator[object]:
        yield baggage.get_baggage(attrs.FEATURE)

    async def consume() -> tuple[list[object], object]:
        items = [item async for item in agen()]
        return items, baggage.get_baggage(attrs.FEATURE)

    items, outside = asyncio.run(consume())
    assert items == ["agen"]
    assert outside is None


def test_asyncio_tasks_inherit_attribution() -> None:
    async def child() -> object:
        return baggage.get_baggage(attrs.TENANT)

    async def main() -> object:
        with featurecost.attribute(tenant="globex"):
            return await asyncio.create_task(child())

    assert asyncio.run(main()) == "globex"


def test_attribution_is_per_thread() -> None:
    results: dict[str, object] = {}

    def worker(name: str) -> None:
        with featurecost.attribute(feature=name):
            results[name] = baggage.get_baggage(attrs.FEATURE)

    threads = [threading.Thread(target=worker, args=(f"f{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {f"f{i}": f"f{i}" for i in range(4)}
    assert trace.get_current_span().get_span_context().is_valid is False
