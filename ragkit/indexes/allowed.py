"""Allowed chunk ids of a (reader, filters) pair, cached until the next write.

A reader's allowed ids are what FAISS's ID selector takes. Selecting them costs several milliseconds at 100k
chunks (SQLite, then Python objects), more than an IVF or HNSW search itself (docs/benchmarks.md, "Access
control"), and a reader asks many questions between two writes. So the array is kept, keyed on the store's
generation (`store_state`, bumped inside every write's transaction, also by other processes), the reader's
grant tokens and the compiled filter: a revoke or a delete is seen at the very next read, because that read
finds a new generation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from sqlalchemy import Select
from sqlalchemy.engine import Engine

from ragkit.indexes.sql_store import StateRow

_GENERATION = f"SELECT generation FROM {StateRow.__tablename__} WHERE id = 1"
MAX_ENTRIES = 64  # readers x filter sets kept; each array is 8 bytes per allowed chunk


def generation(engine: Engine) -> int:
    """The store's write generation (one indexed row)."""
    with engine.connect() as conn:  # plain SQL: building the statement cost more than running it
        return int(conn.exec_driver_sql(_GENERATION).scalar() or 0)


def fetch_ids(engine: Engine, stmt: Select[Any]) -> np.ndarray:
    """(m,) int64 sorted ids a SELECT of one id column returns (through Core: no ORM objects per row)."""
    with engine.connect() as conn:
        return np.sort(np.fromiter(conn.execute(stmt).scalars(), dtype=np.int64))


class AllowedIds:
    """A small LRU of allowed-id arrays, valid for one store generation."""

    def __init__(self, engine: Engine, max_entries: int = MAX_ENTRIES) -> None:
        self.engine = engine
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._generation = -1

    def get(self, make: Callable[[], Select[Any] | None], key: Hashable) -> np.ndarray:
        """The ids the statement `make()` builds selects (built only on a miss: building costs more than a hit);
        `key` must name everything the statement depends on (reader, filters)."""
        now = generation(self.engine)
        with self._lock:
            if now != self._generation:
                self._entries.clear()
                self._generation = now
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        stmt = make()
        assert stmt is not None, "a cached read always has filters or grants"
        ids = fetch_ids(self.engine, stmt)
        ids.setflags(write=False)  # shared between threads and calls
        with self._lock:
            if self._generation == now:  # a write in between: the next read fetches again
                self._entries[key] = ids
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return ids
