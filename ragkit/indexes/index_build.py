"""Building a FAISS index from the vectors in SQL: train once on a sample, then fill, in one place or in shards.

`build_index` is what `Store.rebuild` runs. The fill step is pluggable: `fill_sequential` adds every vector
here in ascending id order; a distributed runtime (ragkit.distributed) fills shards elsewhere with
`build_shard` and merges them here with `merge_shards`: FAISS's own recipe for indexes too big for one
process ("train, add the parts independently, merge"). Every shard is the same trained empty index, filled
with a contiguous id range in ascending order and merged in range order, so each IVF list receives its
vectors in the order a sequential build gives them: the merged index is the sequential one, byte for byte
(tests/test_ray.py). Index types FAISS cannot merge (HNSW) are filled sequentially.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragkit.indexes.faiss_index import FaissIndex, import_faiss

if TYPE_CHECKING:
    from ragkit.indexes.sql_store import SqlStore

# IVF training sample: k-means needs ~40-256 points per list (FAISS subsamples to 256 per centroid itself);
# 100k covers nlist up to ~400 at full strength and keeps training under a minute on two cores.
IVF_TRAIN_SAMPLE = 100_000

# (trained empty index, all ids ascending, the SQL store) -> the filled index (the same object or a new one)
Fill = Callable[[FaissIndex, np.ndarray, "SqlStore"], FaissIndex]


def fill_sequential(index: FaissIndex, ids: np.ndarray, sql: SqlStore) -> FaissIndex:
    """Add every vector in this process, in ascending id order."""
    for batch_ids, vectors in sql.vectors(ids, index.dim):
        order = np.argsort(batch_ids)  # SQL returns a batch in any order
        index.add(batch_ids[order], vectors[order])
    return index


def build_index(
    sql: SqlStore, dim: int, resolved: str, device: str, ids: np.ndarray, fill: Fill | None = None
) -> tuple[FaissIndex, int]:
    """A new index of the resolved spec holding the vectors of `ids`: (index, vectors trained on)."""
    index = FaissIndex.create(dim, resolved, device=device)
    trained_on = 0
    if not index.is_trained and len(ids) >= index.train_size():
        # train on a uniform sample of the whole corpus, not on whichever files came first
        n_train = min(len(ids), max(index.train_size(), IVF_TRAIN_SAMPLE))
        sample = np.random.default_rng(0).choice(ids, n_train, replace=False)
        index.train(np.concatenate([v for _, v in sql.vectors(sample, dim)]))
        trained_on = n_train
    if fill is None or not mergeable(index):
        return fill_sequential(index, ids, sql), trained_on
    return fill(index, ids, sql), trained_on


def mergeable(index: FaissIndex) -> bool:
    """Whether shards of this (trained) index can be merged: Flat, IVF and PQ can, HNSW cannot."""
    return index.is_trained and (index.kind in ("flat", "ivf") or "PQ" in index.description)


def split(ids: np.ndarray, shards: int) -> list[np.ndarray]:
    """Contiguous ascending id ranges, as even as possible (empty ones dropped)."""
    return [part for part in np.array_split(np.sort(ids), max(1, shards)) if len(part)]


def to_bytes(index: FaissIndex) -> bytes:
    """The index serialised (vectors waiting for training are not: see FaissIndex.save)."""
    with tempfile.TemporaryDirectory(prefix="ragkit-shard-") as tmp:
        path = Path(tmp) / "index.faiss"
        index.save(path)
        return path.read_bytes()


def _raw(data: bytes) -> Any:
    faiss = import_faiss()
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def build_shard(trained: bytes, ids: Sequence[int] | np.ndarray, sql: SqlStore) -> bytes:
    """The trained empty index (bytes) filled with the vectors of `ids` (ascending) read from SQL, serialised."""
    faiss = import_faiss()
    raw = _raw(trained)
    for batch_ids, vectors in sql.vectors(np.sort(np.asarray(ids, dtype=np.int64)), raw.d):
        order = np.argsort(batch_ids)  # SQL returns a batch in any order; add ascending, as a sequential build
        raw.add_with_ids(np.ascontiguousarray(vectors[order]), np.ascontiguousarray(batch_ids[order]))
    return bytes(faiss.serialize_index(raw))


def merge_shards(trained: bytes, shards: Sequence[bytes], device: str = "auto") -> FaissIndex:
    """One index from shards built by build_shard, merged in the order given (ascending id ranges).

    FAISS 1.15's IndexIDMap2.merge_from refuses its own wrapper type, so the inner indexes are merged
    (IVF: shifting positions by the vectors already merged; flat codes: appended) and the id maps concatenated.
    """
    faiss = import_faiss()
    merged = _raw(trained)  # deserialised, never clone_index: a clone of IndexFlatIP is a plain IndexFlat
    inner = faiss.downcast_index(merged.index)
    id_maps = [faiss.vector_to_array(merged.id_map).astype(np.int64)]
    for data in shards:
        shard = _raw(data)
        inner.merge_from(
            faiss.downcast_index(shard.index), int(inner.ntotal) if isinstance(inner, faiss.IndexIVF) else 0
        )
        id_maps.append(faiss.vector_to_array(shard.id_map).astype(np.int64))
    faiss.copy_array_to_vector(np.concatenate(id_maps), merged.id_map)
    merged.ntotal = inner.ntotal
    merged.construct_rev_map()
    return FaissIndex(merged, merged.d, device)
