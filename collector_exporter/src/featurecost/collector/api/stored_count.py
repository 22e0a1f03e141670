"""The stored-calls count that ``/api/v1/status`` shows, without a storage query per poll.

Counting distinct calls is ``SELECT count() FROM calls FINAL``: a merge at read time that grows
with the table. Dashboards and probes poll status many times a second (at 20 Hz the query alone
added a third to the collector's CPU per span), so the count is kept for ``max_age`` seconds and
concurrent polls share one query. It is counted again at once when this collector has stored
calls since (its own writes show on the next poll); writes by other collectors or workers on the
same storage show within ``max_age``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

__all__ = ["StoredCallsCount"]


class StoredCallsCount:
    def __init__(
        self,
        count: Callable[[], int],
        stored_here: Callable[[], int],
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``count``: the storage query; ``stored_here``: this collector's running total of
        stored calls (a change means the cached count is out of date)."""
        self._count = count
        self._stored_here = stored_here
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._value: int | None = None
        self._counted_at = 0.0
        self._stored_then = -1

    async def get(self) -> int:
        """The count; raises what the storage query raised (a failure is not cached: the next
        poll queries again)."""
        async with self._lock:
            stored_here = self._stored_here()
            now = self._clock()
            if self._value is None or stored_here != self._stored_then or now - self._counted_at >= self._max_age:
                value = await run_in_threadpool(self._count)
                self._value, self._counted_at, self._stored_then = value, now, stored_here
            return self._value
