"""Micro-batching of searches: concurrent `/v1/search` requests with the same reader and options wait for a slot
of the KB lane together and run as one `kb.search_batch` call (the query embedding, most of a dense search's
time, is then one batch). A lone request runs at once: nothing waits on a timer, requests only coalesce while
the lane is busy. Results are exactly those of `kb.search` for each query."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Hashable
from typing import Any

import anyio

MAX_BATCH = 32


class SearchBatcher:
    """Per key (reader + options): a queue of (query, future) and at most `leaders` batches in flight."""

    def __init__(self, leaders: int) -> None:
        self.leaders = max(1, leaders)
        self._pending: dict[Hashable, list[tuple[str, asyncio.Future[Any]]]] = {}
        self._running: dict[Hashable, int] = {}
        self.batches = 0  # search_batch calls made (for tests and metrics)
        self.queries = 0

    async def search(
        self, key: Hashable, query: str, run: Callable[[list[str]], list[Any]], lane: anyio.CapacityLimiter
    ) -> tuple[Any, float]:
        """(the query's hits, seconds the batch spent in the KB). run: queries -> hits per query (a thread)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((query, future))
        if self._running.get(key, 0) < self.leaders:
            self._running[key] = self._running.get(key, 0) + 1
            asyncio.get_running_loop().create_task(self._drain(key, run, lane))
        return await future

    async def _drain(self, key: Hashable, run: Callable[[list[str]], list[Any]], lane: anyio.CapacityLimiter) -> None:
        try:
            while self._pending.get(key):
                async with lane:  # wait for a KB slot; whatever queued meanwhile joins this batch
                    waiting = self._pending.get(key, [])
                    batch, self._pending[key] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                    batch = [(q, f) for q, f in batch if not f.done()]  # clients that left
                    if not batch:
                        continue
                    t0 = time.perf_counter()
                    try:
                        results = await anyio.to_thread.run_sync(run, [q for q, _ in batch])
                    except BaseException as exc:  # noqa: BLE001 - every request of the batch gets it
                        for _, f in batch:
                            if not f.done():
                                f.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                        if not isinstance(exc, Exception):
                            raise
                        continue
                    seconds = time.perf_counter() - t0
                    self.batches += 1
                    self.queries += len(batch)
                    for (_, f), hits in zip(batch, results, strict=True):
                        if not f.done():
                            f.set_result((hits, seconds))
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                if not self._pending.get(key):
                    self._pending.pop(key, None)


def options_key(principal: Any, **options: Any) -> Hashable:
    """A hashable key for a reader and search options (filters may be lists or dicts)."""
    return (principal, json.dumps(options, sort_keys=True, default=str))
