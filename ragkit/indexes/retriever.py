"""Retrieval: filters -> dense (FAISS) and keyword (SQL BM25) candidates -> fusion -> best-sentence rescoring ->
rerank -> MMR -> hits."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import Select
from sqlalchemy.engine import Engine

from ragkit.entries import entry_order, meaning_order
from ragkit.errors import ConfigError
from ragkit.indexes.allowed import AllowedIds, fetch_ids
from ragkit.indexes.faiss_index import FaissIndex, default_ef_search, default_nprobe
from ragkit.indexes.filters import Filter, FilterSpec, compile_filters, normalise
from ragkit.indexes.hybrid import mmr, rrf, score_fusion
from ragkit.indexes.named import DocumentNames, named_first
from ragkit.indexes.sentences import SentenceVectors, best_sentence, rescore_head
from ragkit.indexes.sql_store import SqlStore
from ragkit.protocols import Embedder, KeywordIndex, Reranker
from ragkit.types import Hit

EXACT_FALLBACK_LIMIT = 200_000  # filtered sets up to this size get an exact pass when the ANN index comes up short


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """One query's retrieval settings (defaults come from config.retrieval)."""

    k: int
    mode: str = "hybrid"  # hybrid | dense | keyword
    filters: FilterSpec = None
    candidates: int = 20
    rrf_k: int = 60
    fusion: str = "rank"  # hybrid: rank (reciprocal-rank fusion) | score (min-max normalised scores summed)
    dense_weight: float = 1.0
    keyword_weight: float = 2.0
    nprobe: int | None = None
    ef_search: int | None = None
    rerank: bool = True  # False: neither the best-sentence rescoring nor a configured reranker
    rerank_depth: int = 20
    rescore: str = "none"  # "sentences": reorder the fused head by best sentence (ragkit.indexes.sentences);
    # "entries": a "which option" question's head by its chunks' best-matching entry (ragkit.entries, rule O);
    # "meaning": such a question's or a "how do I" one's head alternating its entries' order by meaning (rule M)
    mmr_lambda: float | None = None
    named_first: bool = True  # the documents a question names searched first (ragkit.indexes.named, rule DN)
    dense_rerank: bool = True  # keyword mode: the head's order fused with its cosine order (rule DR; no reranker)


@dataclass(frozen=True, slots=True)
class Caches:
    """What a store keeps for its retrievers between searches: allowed ids by (reader, filters) and document ids
    by name (rule DN), both until the next write; sentence vectors for `rescore` (bounded)."""

    allowed: AllowedIds | None = None
    names: DocumentNames | None = None
    sentences: SentenceVectors = field(default_factory=SentenceVectors)

    @classmethod
    def of(cls, engine: Engine) -> Caches:
        """The caches of one store's database."""
        return cls(AllowedIds(engine), DocumentNames(engine), SentenceVectors())


class Retriever:
    """Answers queries from the store (truth), the FAISS index and the keyword index."""

    def __init__(
        self,
        store: SqlStore,
        index: FaissIndex,
        embedder: Callable[[], Embedder],
        keyword: Callable[[], KeywordIndex],
        reranker: Callable[[], Reranker | None],
        readable: Select[Any] | None = None,
        caches: Caches | None = None,
        reader: Hashable = None,
    ) -> None:
        self.store = store
        self.readable = readable  # the reader's documents (ragkit/indexes/acl.py); None = every document
        caches = caches or Caches()  # none kept: a retriever of its own (tests)
        self.cache = caches.allowed  # allowed ids by (reader, filters) until the next write (ragkit/indexes/allowed.py)
        self.reader = reader  # what `readable` depends on: the reader's grant tokens
        self.index = index
        self._embedder = embedder  # callables: each part loads on first use
        self._keyword = keyword
        self._reranker = reranker
        self._sentences = caches.sentences  # the store's, so it lasts beyond one search
        self._names = caches.names  # document ids by name, for rule DN (None: not searched)

    def allowed_ids(self, filters: FilterSpec | Select[Any]) -> np.ndarray | None:
        """(m,) int64 sorted ids of chunks passing the filters (or a compiled filter); None when there are none."""
        if self.cache is not None and not isinstance(filters, Select):
            parsed = tuple(normalise(filters))
            if not parsed and self.readable is None:
                return None
            # relative source globs resolve against the working directory, so it is part of what they mean
            key = (self.reader, parsed, os.getcwd())
            return self.cache.get(lambda: compile_filters(list(parsed), self.readable), key)  # built on a miss
        stmt = filters if isinstance(filters, Select) else compile_filters(filters, self.readable)
        return None if stmt is None else fetch_ids(self.store.engine, stmt)

    def _dense(
        self, q: np.ndarray, depth: int, allowed: np.ndarray | None, o: SearchOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        nprobe, ef = o.nprobe, o.ef_search
        if self.index.kind == "ivf" and nprobe is None:
            nprobe = default_nprobe(self.index.nlist)
        if self.index.kind == "hnsw" and ef is None:
            ef = default_ef_search(depth)
        scores, ids = self.index.search(q, depth, allowed=allowed, nprobe=nprobe, ef_search=ef)
        if allowed is None or len(allowed) > EXACT_FALLBACK_LIMIT:
            return scores, ids
        # An ANN index (HNSW, IVF) can miss allowed vectors when the filter is selective: redo those rows
        # exactly over the allowed vectors from SQL, so a filtered search returns min(k, matches) hits.
        expected = min(depth, len(allowed))
        short = np.flatnonzero((ids >= 0).sum(axis=1) < expected)
        if len(short):
            got_ids, vecs = _gather(self.store, allowed, self.index.dim)
            sims = q[short] @ vecs.T  # (len(short), m)
            top = np.argsort(-sims, axis=1)[:, :depth]
            scores[short, : top.shape[1]] = np.take_along_axis(sims, top, 1)
            ids[short, : top.shape[1]] = got_ids[top]
        return scores, ids

    def search_batch(self, queries: Sequence[str], o: SearchOptions) -> list[list[Hit]]:
        """Ranked hits per query: (nq,) queries -> nq lists of at most o.k hits, best first. With `named_first`, a
        query that names some of the KB's documents gets their best hits first, then the rest (rule DN). With
        `dense_rerank` in keyword mode, the first rerank_depth hits are then reordered by rule DR."""
        fuse = o.dense_rerank and o.rerank and o.mode == "keyword" and self._reranker() is None
        wide = replace(o, k=max(o.k, o.rerank_depth)) if fuse else o  # the head rule DR reorders
        results = self._search(queries, wide)
        if o.named_first and self._names is not None:
            for qi, text in enumerate(queries):
                ids = self._names.named(text)
                if not ids:
                    continue
                only = replace(wide, filters=[*normalise(o.filters), Filter("doc", "in", tuple(map(str, ids)))])
                (first,) = self._search([text], only)
                results[qi] = named_first(first, results[qi], key=lambda h: h.chunk.id)[: wide.k]
        if fuse:
            results = self._dense_rerank(queries, results, o)
        return [[replace(h, rank=rank) for rank, h in enumerate(hits[: o.k], start=1)] for hits in results]

    def _dense_rerank(self, queries: Sequence[str], results: list[list[Hit]], o: SearchOptions) -> list[list[Hit]]:
        """Rule DR: each query's head (rerank_depth hits) reordered by reciprocal-rank fusion of its order with the
        order of its chunks' stored vectors by cosine to the query, equal weights, ties kept in the head's order.
        Keyword weights miss a question in other words than the page's; the vectors, alone over the whole KB,
        miss the exact option names. The hits' scores are left as the retrievers gave them."""
        if not any(results):
            return results
        q = self._embedder().embed(list(queries))  # (nq, dim)
        got, vecs = _gather(self.store, np.array([h.chunk.id for hits in results for h in hits], np.int64), q.shape[1])
        row = {int(c): n for n, c in enumerate(got)}
        out = []
        for qi, hits in enumerate(results):
            head = [h for h in hits[: o.rerank_depth] if h.chunk.id in row]
            if len(head) < 2:
                out.append(hits)
                continue
            cos = vecs[[row[h.chunk.id] for h in head]] @ q[qi]  # (len(head),)
            at = {h.chunk.id: h for h in head}
            order = rescore_head([(h.chunk.id, h.score) for h in head], cos, len(head), o.rrf_k)  # rule R's fusion
            out.append([at[i] for i, _ in order] + [h for h in hits if h.chunk.id not in at])
        return out

    def _search(self, queries: Sequence[str], o: SearchOptions) -> list[list[Hit]]:
        if o.mode not in ("hybrid", "dense", "keyword"):
            raise ConfigError(f"unknown retrieval mode {o.mode!r}; use hybrid, dense or keyword")
        # the ids FAISS may return (filters and the reader's grants), cached per reader until the next write
        allowed = self.allowed_ids(o.filters)
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries]
        reranker = self._reranker() if o.rerank else None
        rescore = o.rerank and o.rescore == "sentences"
        by_entry = o.rerank and o.rescore in ("entries", "meaning")
        widen = o.mode == "hybrid" or reranker is not None or rescore or by_entry or o.mmr_lambda is not None
        depth = max(o.k, o.candidates, o.rerank_depth if reranker or rescore or by_entry else 0) if widen else o.k

        q: np.ndarray | None = None
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        if o.mode in ("dense", "hybrid") or rescore or o.mmr_lambda is not None:
            q = self._embedder().embed(list(queries))  # (nq, dim)
        if o.mode in ("dense", "hybrid"):
            assert q is not None
            scores, ids = self._dense(q, depth, allowed, o)
            dense = [
                [(int(i), float(s)) for s, i in zip(sr, ir, strict=True) if i >= 0]
                for sr, ir in zip(scores, ids, strict=True)
            ]
        keyword: list[list[tuple[int, float]]] = [[] for _ in queries]
        if o.mode in ("keyword", "hybrid"):
            kw = self._keyword()
            stmt = compile_filters(o.filters, self.readable)  # a subquery of the keyword query
            keyword = [kw.search(text, depth, allowed=stmt) for text in queries]

        results: list[list[Hit]] = []
        for qi, text in enumerate(queries):
            dense_of, kw_of = dict(dense[qi]), dict(keyword[qi])
            if o.mode == "hybrid" and o.fusion == "score":
                ranked = score_fusion([dense[qi], keyword[qi]], [o.dense_weight, o.keyword_weight])
            elif o.mode == "hybrid":
                ranked = rrf(
                    [[i for i, _ in dense[qi]], [i for i, _ in keyword[qi]]],
                    [o.dense_weight, o.keyword_weight],
                    o.rrf_k,
                )
            else:
                ranked = dense[qi] if o.mode == "dense" else keyword[qi]
            chunks = self.store.chunks([i for i, _ in ranked], self.readable)
            ranked = [(i, s) for i, s in ranked if i in chunks]  # a FAISS id one write behind SQL
            if rescore and ranked:
                assert q is not None
                head = [chunks[i].text for i, _ in ranked[: o.rerank_depth]]
                vectors = self._sentences.of(head, self._embedder().embed)
                ranked = rescore_head(ranked, best_sentence(q[qi], vectors), o.rerank_depth, o.rrf_k)
            order = None
            if by_entry:  # rules O and M: a "which option" question's best-matching entries first
                head = [chunks[i].text for i, _ in ranked[: o.rerank_depth]]
                if o.rescore == "meaning":
                    order = meaning_order(text, head, self._embedder().embed)
                else:
                    order = entry_order(text, head)
            if order is not None:
                ranked = [ranked[j] for j in order] + ranked[o.rerank_depth :]
            if reranker is not None and ranked:
                head = ranked[: o.rerank_depth]
                rs = reranker.score(text, [chunks[i].text for i, _ in head])
                order = np.argsort(-rs, kind="stable")
                ranked = [(head[j][0], float(rs[j])) for j in order] + ranked[o.rerank_depth :]
            if o.mmr_lambda is not None and len(ranked) > o.k:
                assert q is not None
                got_ids, vecs = _gather(self.store, np.array([i for i, _ in ranked], dtype=np.int64), self.index.dim)
                pos = {int(c): n for n, c in enumerate(got_ids)}
                ranked = [r for r in ranked if r[0] in pos]
                cand = vecs[[pos[i] for i, _ in ranked]]
                ranked = [ranked[j] for j in mmr(q[qi], cand, o.k, o.mmr_lambda)]
            results.append(
                [
                    Hit(chunks[i], s, rank, dense=dense_of.get(i), keyword=kw_of.get(i))
                    for rank, (i, s) in enumerate(ranked[: o.k], start=1)
                ]
            )
        return results


def _gather(store: SqlStore, ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (m,), vectors (m, dim)) from SQL, in the order SQL returns them."""
    parts = list(store.vectors(ids.tolist(), dim))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
