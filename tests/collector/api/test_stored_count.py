"""/api/v1/status's stored-calls count is a ``count() … FINAL`` over the calls table: it is
kept for a second (polls in between share it), counted again at once after this collector
stored calls, and never cached from a failed query. Real storage: embedded chDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from featurecost.collector.api.stored_count import StoredCallsCount
from featurecost.collector.storage.client import Storage
from testsupport.budgets import insert, make_call, truncate

_DAY = datetime(2026, 11, 3, 12, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_polls_within_a_second_share_one_count_and_a_stale_count_expires(chdb_storage: Storage) -> None:
    truncate(chdb_storage)
    clock = _Clock()
    queries: list[int] = []

    def count() -> int:
        queries.append(1)
        return chdb_storage.stored_calls()

    stored_here = 0
    counter = StoredCallsCount(count, lambda: stored_here, max_age=1.0, clock=clock)

    async def polls() -> None:
        assert await counter.get() == 0
        insert(chdb_storage, make_call(_DAY, "0.01"))  # written by another collector: ours is unchanged
        clock.now += 0.5
        assert await asyncio.gather(*(counter.get() for _ in range(20))) == [0] * 20
        assert len(queries) == 1
        clock.now += 0.5
        assert await counter.get() == 1  # a second old: counted again
        assert len(queries) == 2

    asyncio.run(polls())


def test_calls_stored_here_show_on_the_next_poll(chdb_storage: Storage) -> None:
    truncate(chdb_storage)
    clock = _Clock()
    stored_here = [0]
    counter = StoredCallsCount(chdb_storage.stored_calls, lambda: stored_here[0], clock=clock)

    async def polls() -> None:
        assert await counter.get() == 0
        insert(chdb_storage, make_call(_DAY, "0.01"), make_call(_DAY, None))
        stored_here[0] += 2  # as the pipeline counts its inserts
        assert await counter.get() == 2

    asyncio.run(polls())


def test_a_failed_count_is_not_served_afterwards(chdb_storage: Storage) -> None:
    truncate(chdb_storage)
    clock = _Clock()
    failing = [False]

    def count() -> int:
        if failing[0]:
            raise ConnectionError("storage down")
        return chdb_storage.stored_calls()

    counter = StoredCallsCount(count, lambda: 0, clock=clock)

    async def polls() -> None:
        assert await counter.get() == 0
        insert(chdb_storage, make_call(_DAY, "0.01"))
        failing[0] = True
        clock.now += 1.0
        try:
            await counter.get()
        except ConnectionError:
            pass
        else:
            raise AssertionError("the failure was hidden behind the cached count")
        failing[0] = False
        assert await counter.get() == 1  # counted afresh, not the count from before the failure

    asyncio.run(polls())
