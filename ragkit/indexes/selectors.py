"""FAISS ID selectors for allowed-id arrays, kept while the array lives.

Building an IDSelectorBatch costs ~1 ms per 10,000 ids, more than an IVF or HNSW search. A reader's allowed ids
come from a cache (ragkit/indexes/allowed.py) as the same read-only array until the next write, so its selector
is kept beside it; any other array gets a fresh one.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

MAX_SELECTORS = 64  # as many as allowed-id arrays are cached (allowed.MAX_ENTRIES): fewer thrash with many readers


class SelectorCache:
    """IDSelectorBatch per read-only allowed-ids array (by identity; the array is held, so its id is not reused)."""

    def __init__(self, faiss: Any) -> None:
        self._faiss = faiss
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[np.ndarray, Any]] = {}

    def get(self, allowed: np.ndarray) -> Any:
        """A selector of these (m,) int64 ids."""
        if allowed.flags.writeable:  # a caller's own array may change: never cached
            return self._faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        with self._lock:
            found = self._entries.get(id(allowed))
            if found is not None and found[0] is allowed:
                return found[1]
        sel = self._faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        with self._lock:
            self._entries[id(allowed)] = (allowed, sel)
            while len(self._entries) > MAX_SELECTORS:
                self._entries.pop(next(iter(self._entries)))
        return sel
