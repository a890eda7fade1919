"""The generation lane: N generations at a time in threads of their own, a bounded queue behind them, 429 beyond.

A request takes a `Ticket` before its response starts (so a full lane is a real 429, not an error inside a
stream), waits for a slot, and runs its generation in the lane's own thread pool: the default thread pool
(searches, SQL, uploads) is never starved by generations. The slot is freed when the generating thread has
really finished, not when its client left: a client that disconnects sets the ticket's `cancel` event, the
`on_text` callback raises `Cancelled` at the next piece of text, and the thread ends within one token.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ragkit.errors import Cancelled

T = TypeVar("T")


class LaneFull(Exception):
    """Every slot is busy and the queue is full: answer 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is answering as many questions as it can; retry in {retry_after} s")
        self.retry_after = retry_after


class GenerationLane:
    """`slots` concurrent generations, `queue` more waiting; beyond that `reserve` raises LaneFull."""

    def __init__(self, slots: int = 1, queue: int = 8, on_cancelled: Callable[[], None] | None = None) -> None:
        self.on_cancelled = on_cancelled  # called when a generation ended because its client went away
        self.slots = max(1, slots)
        self.queue = max(0, queue)
        self.pending = 0  # reserved: running + waiting
        self.active = 0
        self.avg_s = 5.0  # moving average of a generation's seconds, for Retry-After
        self._sem: asyncio.Semaphore | None = None
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="ragkit-generate")

    @property
    def waiting(self) -> int:
        return self.pending - self.active

    def retry_after(self) -> int:
        return max(1, math.ceil(self.avg_s * (self.waiting + 1) / self.slots))

    def ticket(self) -> Ticket:
        """Reserve a place (running or queued) now; LaneFull when there is none."""
        if self.pending >= self.slots + self.queue:
            raise LaneFull(self.retry_after())
        self.pending += 1
        return Ticket(self)

    def semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:  # made in the event loop that uses it
            self._sem = asyncio.Semaphore(self.slots)
        return self._sem

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One request's place in the lane: queued -> running -> closed. Close it exactly once (idempotent)."""

    def __init__(self, lane: GenerationLane) -> None:
        self.lane = lane
        self.state = "queued"
        self.cancel = threading.Event()  # set when the client is gone: on_text raises Cancelled

    async def run(self, fn: Callable[[], T]) -> T:
        """Wait for a slot, then run fn in the lane's thread; the slot is freed when the thread finishes."""
        lane = self.lane
        await lane.semaphore().acquire()
        if self.state != "queued":  # closed while waiting
            lane.semaphore().release()
            raise asyncio.CancelledError
        self.state = "running"
        lane.active += 1
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(lane._pool, fn)
        future.add_done_callback(lambda f: self._finished(f, time.perf_counter() - t0))
        return await asyncio.shield(future)  # a cancelled request leaves the thread to stop at its next token

    def _finished(self, future: asyncio.Future[Any], seconds: float) -> None:
        lane = self.lane
        if not future.cancelled() and isinstance(future.exception(), Cancelled) and lane.on_cancelled:
            lane.on_cancelled()
        lane.avg_s = 0.8 * lane.avg_s + 0.2 * seconds
        lane.active -= 1
        lane.pending -= 1
        lane.semaphore().release()
        self.state = "closed"

    def close(self) -> None:
        """Give the place back if the generation never started (a running one frees it when its thread ends)."""
        self.cancel.set()
        if self.state == "queued":
            self.state = "closed"
            self.lane.pending -= 1


def cancellable(cancel: threading.Event, on_text: Callable[[str], Any] | None = None) -> Callable[[str], None]:
    """An on_text callback that raises Cancelled once `cancel` is set, else passes the text on."""

    def callback(piece: str) -> None:
        if cancel.is_set():
            raise Cancelled("the client went away")
        if on_text is not None:
            on_text(piece)

    return callback
