"""Rescoring the fused head by each chunk's best sentence (retrieval.rescore, ragkit.indexes.sentences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ragkit
from ragkit.errors import ConfigError
from ragkit.indexes.sentences import SentenceVectors, best_sentence, rescore_head
from ragkit.testing import HashEmbedder

# a manual's options: one long entry about updating (many words the question shares) and, among other entries,
# one whose single sentence says what the question asks in other words
MANUAL = """# zap(1)

## OPTIONS

-u, --update
Replace an existing entry in the archive only if the file on disk was modified more recently than the entry
already in the archive. The archive is updated in place. New files in the current directory are added to the
archive as they are found. Files already in the archive that have not changed are left alone, and the archive
keeps its old entries for files that are gone.

-d, --delete
Remove entries from an archive. Each name is a pattern matched against the entries already in the archive.

-DF, --difference-archive
Create an archive that contains all new and changed files since the original archive was created.

-q, --quiet
Quiet mode; eliminate informational messages and comment prompts.
"""
QUESTION = "Which zap option makes an archive of only the files that are new or changed since the original was made?"


def test_rescore_head_fuses_the_fused_order_with_the_sentence_order() -> None:
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    best = np.array([0.1, 0.9, 0.2], dtype=np.float32)  # the head's best-sentence cosines, in ranked order
    got = rescore_head(ranked, best, depth=3, k=60)
    # 1: 1/61 + 1/63, 2: 1/62 + 1/61, 3: 1/63 + 1/62; the tail keeps its place and score
    assert [i for i, _ in got] == [2, 1, 3, 4]
    assert got[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert got[3] == (4, 0.6)
    # a head whose sentence order agrees with it is left as it was
    assert [i for i, _ in rescore_head(ranked, np.array([0.9, 0.5, 0.1, 0.0]), depth=4)] == [1, 2, 3, 4]


def test_best_sentence_is_the_highest_cosine_of_any_row() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    vectors = [np.array([[0.0, 1.0], [0.6, 0.8]], dtype=np.float32), np.zeros((0, 2), dtype=np.float32)]
    assert best_sentence(q, vectors).tolist() == pytest.approx([0.6, -1.0])


def test_sentence_vectors_embed_each_text_once_and_drop_the_least_recently_used() -> None:
    embedder = HashEmbedder(32)
    cache = SentenceVectors(max_texts=2)
    a, b, c = "Alpha is first. Beta is second.", "Gamma only.", "Delta one. Epsilon two. Zeta three."
    first = cache.of([a, b], embedder.embed)
    assert [v.shape for v in first] == [(2, 32), (1, 32)]  # one row per sentence
    assert embedder.calls == [["Alpha is first.", "Beta is second.", "Gamma only."]]
    again = cache.of([b, a, b], embedder.embed)
    assert len(embedder.calls) == 1 and np.array_equal(again[1], first[0]) and np.array_equal(again[2], first[1])
    cache.of([c], embedder.embed)  # a is the least recently used of the three: dropped
    cache.of([b], embedder.embed)
    assert len(embedder.calls) == 2
    cache.of([a], embedder.embed)
    assert embedder.calls[-1] == ["Alpha is first.", "Beta is second."]


def test_rescore_is_a_validated_setting(tmp_path: Path, hashed: None) -> None:
    with pytest.raises(ConfigError, match="rescore"):
        ragkit.open(tmp_path / "kb", **{"retrieval.rescore": "sentence"})


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_search_reorders_the_head_as_the_rule_says_in_every_mode(tmp_path: Path, hashed: None, mode: str) -> None:
    """The rescored list is rescore_head of the list without it, scored by the KB's own embedder; rerank=False
    turns the rescoring off as it does a cross-encoder."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zap.md").write_text(MANUAL, encoding="utf-8")
    settings = {"chunking.max_tokens": 40, "chunking.overlap": 0, "retrieval.dense_rerank": False}  # rule R alone
    with ragkit.open(tmp_path / "kb", **settings) as kb:
        kb.ingest([tmp_path / "docs"])
        plain = kb.search(QUESTION, 20, mode=mode)
    embedder = HashEmbedder(64, name="hash")  # what the `hashed` fixture gives every KB
    vectors = SentenceVectors().of([h.chunk.text for h in plain], embedder.embed)
    best = best_sentence(embedder.embed([QUESTION])[0], vectors)
    expected = [i for i, _ in rescore_head([(h.chunk.id, h.score) for h in plain], best, depth=20)]
    assert len(plain) >= 4
    if mode != "dense":  # these words change the order of the lexical lists' head (not the hashed dense list's)
        assert expected[:4] != [h.chunk.id for h in plain[:4]]
    with ragkit.open(tmp_path / "kb", **settings, **{"retrieval.rescore": "sentences"}) as kb:
        assert [h.chunk.id for h in kb.search(QUESTION, 4, mode=mode)] == expected[:4]
        assert [h.chunk.id for h in kb.search(QUESTION, 4, mode=mode, rerank=False)] == [h.chunk.id for h in plain[:4]]


@pytest.mark.slow
def test_rescoring_through_the_bundled_embedder(tmp_path: Path) -> None:
    """Through the real MiniLM: the KB scores each sentence with its own embedder and reorders as the rule says,
    and a second search embeds nothing new (the sentence vectors are cached)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zap.md").write_text(MANUAL, encoding="utf-8")
    settings = {"chunking.max_tokens": 40, "chunking.overlap": 0}
    with ragkit.open(tmp_path / "kb", **settings) as kb:
        kb.ingest([tmp_path / "docs"])
        plain = kb.search(QUESTION, 20)
        vectors = SentenceVectors().of([h.chunk.text for h in plain], kb.embedder.embed)
        best = best_sentence(kb.embedder.embed([QUESTION])[0], vectors)
    expected = [i for i, _ in rescore_head([(h.chunk.id, h.score) for h in plain], best, depth=20)]
    assert expected[:3] != [h.chunk.id for h in plain[:3]]
    with ragkit.open(tmp_path / "kb", **settings, **{"retrieval.rescore": "sentences"}) as kb:
        assert [h.chunk.id for h in kb.search(QUESTION, 3)] == expected[:3]
        calls = []
        embed = kb.embedder.embed
        kb.embedder.embed = lambda texts: calls.append(list(texts)) or embed(texts)  # type: ignore[method-assign]
        assert [h.chunk.id for h in kb.search(QUESTION, 3)] == expected[:3]
        assert calls == [[QUESTION]]
