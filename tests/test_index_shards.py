"""The sharded FAISS build (train once, fill id-range shards, merge) is the sequential build, byte for byte (T5's core,
without Ray: tests/test_ray.py runs the shards as Ray tasks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragkit.indexes.engine import make_engine
from ragkit.indexes.index_build import build_index, build_shard, merge_shards, split, to_bytes
from ragkit.indexes.sql_store import SqlStore
from ragkit.types import ChunkSpan, Document

DIM = 16


@pytest.fixture(scope="module")
def sql(tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    store = SqlStore(make_engine(f"sqlite:///{tmp_path_factory.mktemp('shards') / 'k.db'}"))
    rng = np.random.default_rng(1)
    for d in range(400):  # 400 documents x 25 chunks = 10,000 vectors: enough to train IVF16 and PQ codebooks
        vecs = rng.standard_normal((25, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        spans = [ChunkSpan(f"doc {d} chunk {i}", i, i + 1, 4) for i in range(25)]
        store.replace_document(Document(f"d{d:03}.md", "x", (), f"h{d}"), spans, vecs)
    return store


def _sharded(n: int):  # type: ignore[no-untyped-def]
    def fill(index, ids, sql):  # type: ignore[no-untyped-def]
        trained = to_bytes(index)
        return merge_shards(trained, [build_shard(trained, part, sql) for part in split(ids, n)], device="cpu")

    return fill


@pytest.mark.parametrize("spec", ["Flat", "IVF16,Flat", pytest.param("IVF16,PQ4", marks=pytest.mark.slow)])
def test_merged_shards_are_the_sequential_index(sql: SqlStore, spec: str, tmp_path: Path) -> None:
    ids = sql.chunk_ids()
    seq, trained_seq = build_index(sql, DIM, spec, "cpu", ids)
    merged, trained = build_index(sql, DIM, spec, "cpu", ids, _sharded(3))
    assert trained == trained_seq and len(merged) == len(seq) == len(ids) and merged.is_trained
    assert to_bytes(merged) == to_bytes(seq)
    queries = next(iter(sql.vectors(ids[::97], DIM)))[1]
    allowed = ids[::3]
    for kwargs in ({}, {"allowed": allowed}, {"nprobe": 4}):
        s1, i1 = seq.search(queries, 10, **kwargs)  # type: ignore[arg-type]
        s2, i2 = merged.search(queries, 10, **kwargs)  # type: ignore[arg-type]
        assert (i1 == i2).all() and np.array_equal(s1, s2)
    assert set(merged.search(queries, 10, allowed=allowed)[1].ravel()) <= set(allowed)


def test_hnsw_cannot_merge_and_is_filled_sequentially(sql: SqlStore) -> None:
    ids = sql.chunk_ids()
    index, _ = build_index(sql, DIM, "HNSW8", "cpu", ids, _sharded(3))
    assert len(index) == len(ids)


def test_split_gives_contiguous_ascending_ranges() -> None:
    parts = split(np.array([5, 1, 9, 3, 7], dtype=np.int64), 2)
    assert [list(p) for p in parts] == [[1, 3, 5], [7, 9]] and split(np.array([4]), 3)[0].tolist() == [4]
