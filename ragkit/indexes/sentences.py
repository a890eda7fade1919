"""Rescoring the fused head by each chunk's best sentence (`retrieval.rescore = "sentences"`, rule R in
docs/design-notes.md).

A manual's chunk holds several entries and examples, so its one embedding and its BM25 score average over all of
them and the sentence that answers counts for little ("Create an archive that contains all new and changed
files ..." stood seventh, under six chunks about other options). The head of the fused list is reordered by
reciprocal-rank fusion of its own order and its order by best sentence: the highest cosine between the question
and any one of the chunk's sentences, under the KB's embedder. A fusion, not the sentence order alone, because
dense scores alone are the weakest ranking on manuals and the fused order keeps the keyword list's hold on
options and names.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from ragkit.indexes.hybrid import rrf
from ragkit.textutil import source_sentences


class SentenceVectors:
    """Unit vectors of each chunk text's sentences, cached by text (least recently used dropped first): the same
    chunks come back for question after question, and a text's vectors never change under one embedder."""

    def __init__(self, max_texts: int = 4096) -> None:
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_texts
        self._lock = threading.Lock()  # the server searches from several threads

    def of(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> list[np.ndarray]:
        """One (sentences, dim) array per text, embedding only the texts not cached. A text with no sentence
        (`source_sentences` found none) is embedded whole."""
        with self._lock:
            got = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in got]
        if missing:
            units = [list(source_sentences(t)) or [t] for t in missing]
            flat = embed([s for u in units for s in u])  # (total sentences, dim), unit rows
            at = 0
            for text, u in zip(missing, units, strict=True):
                got[text] = np.asarray(flat[at : at + len(u)], dtype=np.float32)
                at += len(u)
        with self._lock:
            self._vectors.update(got)
            for t in texts:
                self._vectors.move_to_end(t)
            while len(self._vectors) > self._max:
                self._vectors.popitem(last=False)
        return [got[t] for t in texts]


def best_sentence(query: np.ndarray, vectors: Sequence[np.ndarray]) -> np.ndarray:
    """(n,) the highest cosine of `query` ((dim,) unit vector) with any row of each (sentences, dim) array."""
    return np.array([float(np.max(v @ query)) if len(v) else -1.0 for v in vectors], dtype=np.float32)


def rescore_head(
    ranked: Sequence[tuple[int, float]], best: np.ndarray, depth: int, k: int = 60
) -> list[tuple[int, float]]:
    """`ranked` (id, score) best first, its first `depth` reordered by reciprocal-rank fusion (constant `k`,
    weights 1 and 1) of their order and their order by `best` ((min(depth, n),) best-sentence cosines, in
    `ranked`'s order); the rest follow unchanged. Ties keep the fused order."""
    head = list(ranked[:depth])
    by_sentence = [head[j][0] for j in np.argsort(-best[: len(head)], kind="stable")]
    return rrf([[i for i, _ in head], by_sentence], [1.0, 1.0], k) + list(ranked[depth:])
