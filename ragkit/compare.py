"""Compare two knowledge bases: the same documents, chunks, vectors (within a tolerance) and top-k results?

Used to verify that a distributed build (ragkit.distributed) equals a single-process one, and by
`ragkit check --compare OTHER_KB`. Ids and ingest times are left out (they depend on commit order): documents
are matched by uri, chunks by (uri, ord), and result lists by (uri, ord) with ties (scores within the
tolerance) compared as sets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ragkit.indexes import dump
from ragkit.indexes.filters import FilterSpec
from ragkit.indexes.retriever import SearchOptions
from ragkit.types import Hit, _ReadsLikeADict

if TYPE_CHECKING:
    from ragkit.store import Store

VECTOR_TOLERANCE = 1e-5  # max |a - b| per component: batch composition changes the GEMM shapes (float noise)
SCORE_TOLERANCE = 1e-5  # scores this close are a tie: their order may differ between builds
DEFAULT_QUERIES = 20  # taken from the first KB's chunks when no query set is given
EXAMPLES = 50  # differences listed by name; all are counted

K = TypeVar("K")


@dataclass(frozen=True)
class CompareReport(_ReadsLikeADict):
    """What differs between KB a and KB b; `same` when nothing does. Counts are exact, `differences` lists
    the first EXAMPLES of them ("only in a: uri", "changed: uri#3 text", "results: query")."""

    same: bool
    documents_a: int
    documents_b: int
    chunks_a: int
    chunks_b: int
    documents_only_in_a: int
    documents_only_in_b: int
    documents_changed: int
    chunks_only_in_a: int
    chunks_only_in_b: int
    chunks_changed: int
    vector_tolerance: float
    max_vector_delta: float
    vectors_over_tolerance: int
    queries: int
    k: int
    results_differ: int
    differences: tuple[str, ...] = ()


def _merge(a: Iterator[tuple[K, Any]], b: Iterator[tuple[K, Any]]) -> Iterator[tuple[K, Any, Any]]:
    """Merge two key-sorted streams: (key, a's value or None, b's value or None)."""
    end = object()
    x, y = next(a, end), next(b, end)
    while x is not end or y is not end:
        if y is end or (x is not end and x[0] < y[0]):  # type: ignore[index,operator]
            yield x[0], x[1], None  # type: ignore[index]
            x = next(a, end)
        elif x is end or y[0] < x[0]:  # type: ignore[index,operator]
            yield y[0], None, y[1]  # type: ignore[index]
            y = next(b, end)
        else:
            yield x[0], x[1], y[1]  # type: ignore[index]
            x, y = next(a, end), next(b, end)


def same_results(a: Sequence[Hit], b: Sequence[Hit], tol: float = SCORE_TOLERANCE) -> bool:
    """Two ranked lists are the same when their scores agree rank by rank (within tol) and each group of tied
    scores holds the same chunks, by (uri, ord); a tie group cut off at the end of the list may differ."""
    if len(a) != len(b) or any(abs(x.score - y.score) > tol for x, y in zip(a, b, strict=True)):
        return False
    lo = 0
    while lo < len(a):
        hi = lo + 1
        while hi < len(a) and abs(a[hi].score - a[hi - 1].score) <= tol:
            hi += 1
        key = lambda h: (h.chunk.uri, h.chunk.ord)  # noqa: E731
        if hi < len(a) and {key(h) for h in a[lo:hi]} != {key(h) for h in b[lo:hi]}:
            return False
        lo = hi
    return True


def default_queries(store: Store, n: int = DEFAULT_QUERIES, words: int = 8) -> list[str]:
    """n queries from the KB's own chunks (evenly spaced by id; their first words): deterministic for a KB."""
    ids = store.chunk_ids()
    if len(ids) == 0:
        return []
    picked = ids[np.linspace(0, len(ids) - 1, min(n, len(ids))).astype(int)]
    chunks = store.chunks([int(i) for i in picked])
    texts = [" ".join(chunks[int(i)].text.split()[:words]) for i in picked if int(i) in chunks]
    return [t for t in dict.fromkeys(texts) if t.strip()]


def compare_stores(
    a: Store,
    b: Store,
    *,
    queries: Sequence[str] | None = None,
    k: int = 10,
    mode: str = "dense",
    filters: FilterSpec = None,
    tolerance: float = VECTOR_TOLERANCE,
) -> CompareReport:
    """Compare two stores document by document, chunk by chunk, vector by vector and on top-k results.

    queries: the query set (None: DEFAULT_QUERIES taken from a's chunks). mode / filters: how they are searched
    (dense by default: the FAISS index is what a build derives). tolerance: max |a - b| per vector component.
    """
    examples: list[str] = []

    def note(text: str) -> None:
        if len(examples) < EXAMPLES:
            examples.append(text)

    n = {"da": 0, "db": 0, "ca": 0, "cb": 0, "doa": 0, "dob": 0, "dch": 0, "coa": 0, "cob": 0, "cch": 0, "vec": 0}
    for uri, x, y in _merge(dump.documents(a.engine), dump.documents(b.engine)):
        n["da"] += x is not None
        n["db"] += y is not None
        if y is None:
            n["doa"] += 1
            note(f"document only in a: {uri}")
        elif x is None:
            n["dob"] += 1
            note(f"document only in b: {uri}")
        elif x != y:
            n["dch"] += 1
            note(f"document changed: {uri} ({', '.join(f for f in dump.DOC_FIELDS if x[f] != y[f])})")
    worst = 0.0
    stream_a = ((key, (fields, vec)) for key, fields, vec in dump.chunks(a.engine, a.dim))
    stream_b = ((key, (fields, vec)) for key, fields, vec in dump.chunks(b.engine, b.dim))
    for (uri, ord_), x, y in _merge(stream_a, stream_b):
        n["ca"] += x is not None
        n["cb"] += y is not None
        if x is None or y is None:
            n["coa" if y is None else "cob"] += 1
            note(f"chunk only in {'a' if y is None else 'b'}: {uri}#{ord_}")
            continue
        if x[0] != y[0]:
            n["cch"] += 1
            note(f"chunk changed: {uri}#{ord_} ({', '.join(f for f in dump.CHUNK_FIELDS if x[0][f] != y[0][f])})")
        delta = float(np.max(np.abs(x[1] - y[1]))) if x[1].shape == y[1].shape else float("inf")
        worst = max(worst, delta)
        if delta > tolerance:
            n["vec"] += 1
            note(f"vector differs by {delta:.2e}: {uri}#{ord_}")
    queries = list(default_queries(a) if queries is None else queries)
    differ = 0
    if queries and n["ca"] and n["cb"]:
        options = SearchOptions(k=k, mode=mode, filters=filters, rerank=False)
        for q, ha, hb in zip(queries, a.search_batch(queries, options), b.search_batch(queries, options), strict=True):
            if not same_results(ha, hb):
                differ += 1
                note(f"results differ: {q!r}")
    counts_differ = any(n[key] for key in ("doa", "dob", "dch", "coa", "cob", "cch", "vec"))
    return CompareReport(
        same=not counts_differ and not differ,
        documents_a=n["da"],
        documents_b=n["db"],
        chunks_a=n["ca"],
        chunks_b=n["cb"],
        documents_only_in_a=n["doa"],
        documents_only_in_b=n["dob"],
        documents_changed=n["dch"],
        chunks_only_in_a=n["coa"],
        chunks_only_in_b=n["cob"],
        chunks_changed=n["cch"],
        vector_tolerance=tolerance,
        max_vector_delta=worst,
        vectors_over_tolerance=n["vec"],
        queries=len(queries),
        k=k,
        results_differ=differ,
        differences=tuple(examples),
    )
