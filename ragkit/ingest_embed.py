"""Embedding one group of files ahead of the writes, in a thread of its own.

While the embedder (a GPU, or the CPU's other cores) embeds group k+1, ingest's main thread writes group k to SQL
and FAISS; every store access stays on the main thread. A GPU embeds MiniLM at thousands of chunks a second, so
without the overlap the SQL writes, not the GPU, would set ingest's speed (docs/benchmarks.md "GPU").

Groups are sized by time: about GROUP_S seconds of embedding at the speed last measured, so a GPU gets calls of
thousands of chunks (a call of 32 leaves it idle between calls) and a CPU keeps groups small enough that Ctrl-C,
which finishes the groups in flight, stops within seconds. A file's chunks go together, so one large file makes a
large group (Node's all.html, 8,969 chunks, about two minutes on two cores): it is embedded in calls of a group's
size, and a stop (`EmbedAhead.stop`) drops it after the call in progress rather than waiting for all of it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GROUP_S = 1.0
MIN_GROUP = 32
MAX_GROUP = 4096


class Abandoned(Exception):
    """A group's embedding stopped part-way (EmbedAhead.stop): its files are not written."""


@dataclass(eq=False)
class Group:
    """Parsed files sent to the embedder: their chunk texts and text hashes, the vectors SQL holds already for
    some of those hashes, and the (n_chunks, dim) float32 vectors to come."""

    items: list[Any]
    texts: list[str]
    hashes: list[str]
    cached: dict[str, np.ndarray]
    vectors: Future[np.ndarray] = field(default_factory=Future)
    queued: bool = False


class EmbedAhead:
    """A thread that embeds groups in the order they are sent. `chunks` is the group size to use next: `fixed`,
    or (None) sized by time."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], dim: int, fixed: int | None = None) -> None:
        self.chunks = fixed or MIN_GROUP
        self._fixed = fixed
        self._embed = embed
        self._dim = dim
        self._jobs: queue.SimpleQueue[Group | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._last: dict[str, np.ndarray] = {}  # the previous group's vectors: not in SQL yet when the next is read
        self._thread = threading.Thread(target=self._run, name="ragkit-embed", daemon=True)
        self._thread.start()

    def send(self, group: Group) -> None:
        """Queue the group for embedding (again is harmless: a Ctrl-C may fall between the put and the flag)."""
        if not group.queued:
            self._jobs.put(group)
            group.queued = True

    def stop(self) -> None:
        """End the group being embedded after the call in progress (its future raises Abandoned) unless that call
        is its last; the groups after it are dropped by `close`."""
        self._stop.set()

    def close(self, pending: Sequence[Group]) -> None:
        """Drop the pending groups not yet started and wait for the one being embedded, if any."""
        for group in pending:
            group.vectors.cancel()
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (group := self._jobs.get()) is not None:
            try:
                if not group.vectors.set_running_or_notify_cancel():
                    continue  # cancelled: the run stopped before this group's turn
            except RuntimeError:
                continue  # queued twice; the first time embedded it
            try:
                group.vectors.set_result(self._vectors(group))
            except BaseException as exc:  # the main thread re-raises it from result()
                group.vectors.set_exception(exc)

    def _vectors(self, group: Group) -> np.ndarray:
        """Each distinct text that SQL and the previous group lack is embedded once."""
        known = {**self._last, **group.cached}
        fresh = list(dict.fromkeys(h for h in group.hashes if h not in known))
        if fresh:
            text_of = dict(zip(group.hashes, group.texts, strict=True))
            t0 = time.perf_counter()
            step = max(self.chunks, MIN_GROUP)  # calls of a group's size: a GPU's stay large
            parts = []
            for lo in range(0, len(fresh), step):
                if lo and self._stop.is_set():
                    raise Abandoned(f"stopped after {lo} of {len(fresh)} chunks")
                parts.append(self._embed([text_of[h] for h in fresh[lo : lo + step]]))
            got = parts[0] if len(parts) == 1 else np.concatenate(parts)
            seconds = time.perf_counter() - t0
            known.update(zip(fresh, got, strict=True))
            if self._fixed is None and len(fresh) >= 8 and seconds > 0:
                self.chunks = round(min(MAX_GROUP, max(MIN_GROUP, len(fresh) / seconds * GROUP_S)))
        self._last = {h: known[h] for h in group.hashes}
        out = np.empty((len(group.hashes), self._dim), dtype=np.float32)
        for i, h in enumerate(group.hashes):
            out[i] = known[h]
        return out
