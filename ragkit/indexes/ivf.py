"""Removals from IndexIDMap2 over IVF, kept exact.

IDMap2 numbers the inner index's entries 0..n-1 and compacts its id table after a removal; Flat and HNSW
renumber their entries to match, but IVF keeps the old numbers in its inverted lists. Left alone, every later
hit maps to the wrong chunk id and the next removal fails a FAISS assertion (`j == index->ntotal`), which aborts
the process. So after each removal the remaining IVF entries are renumbered as IDMap2 compacted its table.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _ivf(faiss: Any, idmap: Any) -> Any | None:
    try:
        return faiss.extract_index_ivf(idmap.index)
    except RuntimeError:  # not an IVF index (under any pre-transform)
        return None


def remove_renumbered(faiss: Any, idmap: Any, ids: np.ndarray) -> int:
    """idmap.remove_ids(ids) for an IndexIDMap2, renumbering an inner IVF index's entries to match. Returns how
    many were removed; raises RuntimeError where FAISS cannot remove (HNSW)."""
    ivf = _ivf(faiss, idmap)
    if ivf is None:
        return int(idmap.remove_ids(ids))
    gone = np.flatnonzero(np.isin(faiss.vector_to_array(idmap.id_map), ids))  # their inner numbers, sorted
    if not len(gone):
        return 0
    removed = int(idmap.remove_ids(ids))
    lists = ivf.invlists
    for n in range(ivf.nlist):
        size = lists.list_size(n)
        if size:
            numbers = faiss.rev_swig_ptr(lists.get_ids(n), size)  # a view: renumbered in place
            numbers -= np.searchsorted(gone, numbers)
    return removed


def numbering_ok(faiss: Any, idmap: Any) -> bool:
    """Whether an IDMap2's inner IVF lists hold exactly the numbers 0..n-1 (always true for other index types).
    An index saved before removals were renumbered fails this; its hits would map to wrong ids."""
    ivf = _ivf(faiss, idmap)
    if ivf is None:
        return True
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)) for n in range(ivf.nlist)]
    numbers = np.sort(np.concatenate([*parts, np.zeros(0, dtype=np.int64)]))
    return bool(np.array_equal(numbers, np.arange(idmap.ntotal)))
