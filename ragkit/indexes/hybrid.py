"""Fusion and diversity: reciprocal-rank and score fusion of ranked lists, and maximal marginal relevance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rrf(lists: Sequence[Sequence[int]], weights: Sequence[float], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(id) = sum_i w_i / (k + rank_i(id)), ranks 1-based.

    lists: ranked ids, best first, one list per retriever. Returns (id, fused score) best first; ties keep
    the order in which ids first appear (so the first list breaks them).
    """
    scores: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, cid in enumerate(ranked, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    order = sorted(scores.items(), key=lambda kv: -kv[1])  # sorted() is stable
    return order


def score_fusion(lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float]) -> list[tuple[int, float]]:
    """Score fusion: score(id) = sum_i w_i * (s_i(id) - min_i) / (max_i - min_i), 0 where list i lacks the id.

    lists: (id, score) best first, one list per retriever, scores on any scale (cosine, BM25); each is min-max
    normalised over its own candidates, so a strong hit counts for more than a weak one at the same rank (rank
    fusion cannot tell them apart). A list whose scores are all equal gives each of its ids w_i. Returns (id,
    fused score) best first; ties keep first appearance.
    """
    scores: dict[int, float] = {}
    for scored, weight in zip(lists, weights, strict=True):
        if not scored:
            continue
        lo, hi = min(s for _, s in scored), max(s for _, s in scored)
        for cid, s in scored:
            scores[cid] = scores.get(cid, 0.0) + weight * ((s - lo) / (hi - lo) if hi > lo else 1.0)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lam: float = 0.5) -> list[int]:
    """Maximal marginal relevance: pick k of the candidates trading relevance for novelty.

    query: (dim,) unit vector; candidates: (n, dim) unit vectors in their current rank order. lam = 1 is pure
    relevance, 0 pure diversity. Returns positions into `candidates`, in pick order.
    """
    n = len(candidates)
    if n == 0 or k <= 0:
        return []
    relevance = candidates @ query  # (n,)
    pairwise = candidates @ candidates.T  # (n, n)
    chosen = [int(np.argmax(relevance))]
    redundancy = pairwise[chosen[0]].copy()
    while len(chosen) < min(k, n):
        gain = lam * relevance - (1.0 - lam) * redundancy
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        redundancy = np.maximum(redundancy, pairwise[best])
    return chosen
