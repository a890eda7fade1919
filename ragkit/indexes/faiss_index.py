"""FAISS vector index whose ids are the SQL chunk ids (IndexIDMap2), on the GPU when one is present."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.errors import ConfigError, KnowledgeBaseError
from ragkit.fsutil import atomic_write_path
from ragkit.indexes.gpu_probe import device_report, gpu_count, import_faiss, resolve_device  # noqa: F401
from ragkit.indexes.ivf import numbering_ok, remove_renumbered
from ragkit.indexes.selectors import SelectorCache
from ragkit.protocols import VectorIndex as VectorIndex  # the protocol lived here before ragkit.protocols

SMALL_BATCH = 16  # fewer queries than this search on one thread
AUTO_FLAT_LIMIT = 50_000  # below this many vectors `auto` is exact search: fast enough and never wrong


def resolve_spec(spec: str, n: int) -> str:
    """The concrete factory spec for `spec` at corpus size n: `auto` is Flat when small, IVF above.

    IVF over HNSW: it supports deletion, moves to the GPU and trains in seconds; nlist ~ 4 sqrt(n) as FAISS
    suggests, rounded to a power of two so that the resolved spec stays stable as a corpus grows.
    """
    if spec.strip().lower() != "auto":
        return spec
    if n < AUTO_FLAT_LIMIT:
        return "Flat"
    nlist = 2 ** round(np.log2(4 * np.sqrt(n)))
    return f"IVF{nlist},Flat"


def default_nprobe(nlist: int) -> int:
    """IVF lists visited per query when none is configured: 1/64 of the lists, at least 16 (bench/retrieval.py)."""
    return max(16, nlist // 64)


def default_ef_search(depth: int) -> int:
    """HNSW search breadth when none is configured: at least 64, and twice the hits asked for."""
    return max(64, 2 * depth)


class FaissIndex:
    """IndexIDMap2 over any FAISS factory spec, inner product metric.

    The CPU index is the one written and saved; when a GPU is used, searches go to a GPU copy that is
    rebuilt lazily after writes (FAISS GPU indexes cannot be serialised directly).

    Two FAISS limits are handled here rather than leaked to callers:
    - trainable indexes (IVF, PQ) take vectors before they are trained: those wait in an exact side index
      (searched too) until there are enough to train on, so a growing KB never has an unsearchable gap;
    - indexes that cannot delete (HNSW) get tombstones, excluded from every search inside FAISS, and are
      compacted when tombstones pass 10% of the index.
    """

    device_report = staticmethod(device_report)  # what `index.device` resolves to here, for `ragkit kb info`

    def __init__(self, index: Any, dim: int, device: str = "auto") -> None:
        self._faiss = import_faiss()
        self._cpu = index
        self.dim = dim
        self.device, self.gpu_problem = resolve_device(device)
        self._gpu: Any = None  # GPU copy of the inner index, dropped after every write
        self._gpu_ids = np.zeros(0, dtype=np.int64)
        self._gpu_resources: Any = None
        self._gpu_failed = False  # some index types (HNSW) have no GPU version: those stay on the CPU
        self._pending: Any = None  # exact IDMap2 index for vectors waiting for the main index's training
        self._tomb = np.zeros(0, dtype=np.int64)  # removed ids still inside an index that cannot delete
        self._selectors = SelectorCache(self._faiss)  # a reader's cached allowed ids keep their ID selector

    @classmethod
    def create(cls, dim: int, spec: str = "Flat", device: str = "auto") -> FaissIndex:
        """A new empty index. spec is FAISS factory grammar ("Flat", "HNSW32", ...), wrapped in IDMap2."""
        faiss = import_faiss()
        if spec.strip().lower() == "auto":
            spec = resolve_spec(spec, 0)
        if any(part.strip().lower().startswith("idmap") for part in spec.split(",")):
            raise ConfigError(
                f"invalid FAISS index spec {spec!r}: ragkit wraps every index in IDMap2 itself; drop IDMap from "
                "the spec (e.g. Flat, HNSW32, IVF1024,Flat)"
            )
        try:
            index = faiss.index_factory(dim, f"IDMap2,{spec}", faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(
                f"invalid FAISS index spec {spec!r} ({faiss_reason(exc)}). "
                "Use FAISS factory grammar, e.g. Flat, HNSW32, IVF1024,Flat, IVF4096,PQ32, or auto"
            ) from exc
        return cls(index, dim, device)

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> FaissIndex:
        """Read a saved index. A corrupt, truncated or foreign file is a KnowledgeBaseError saying why (the store
        then rebuilds it from SQL, as for a missing file)."""
        faiss = import_faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise KnowledgeBaseError(f"{path.name} is unreadable ({faiss_reason(exc)})") from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise KnowledgeBaseError(f"{path.name} is not a ragkit index (a {type(index).__name__}, not IDMap2)")
        return cls(index, index.d, device)

    # -- introspection ----------------------------------------------------------------------------

    def _inner(self) -> Any:
        inner = self._faiss.downcast_index(self._cpu.index)
        while isinstance(inner, self._faiss.IndexPreTransform):
            inner = self._faiss.downcast_index(inner.index)
        return inner

    @property
    def kind(self) -> str:
        """'flat', 'ivf', 'hnsw' or 'other': which search-time knobs apply."""
        inner = self._inner()
        if isinstance(inner, self._faiss.IndexIVF):
            return "ivf"
        if isinstance(inner, self._faiss.IndexHNSW):
            return "hnsw"
        return "flat" if isinstance(inner, self._faiss.IndexFlat) else "other"

    @property
    def nlist(self) -> int:
        """IVF lists (0 for other index types)."""
        inner = self._inner()
        return int(inner.nlist) if isinstance(inner, self._faiss.IndexIVF) else 0

    @property
    def description(self) -> str:
        """The inner index type and its size, e.g. 'IndexIVFFlat nlist=1024 (trained)'."""
        inner = self._inner()
        text = type(inner).__name__
        if isinstance(inner, self._faiss.IndexIVF):
            text += f" nlist={inner.nlist}"
        return text + ("" if self._cpu.is_trained else " (untrained)")

    @property
    def is_trained(self) -> bool:
        return bool(self._cpu.is_trained)

    def train_size(self) -> int:
        """Vectors to collect before training: FAISS wants about 39 per IVF list, 39 x 256 for PQ codebooks."""
        inner = self._inner()
        need = 39 * int(inner.nlist) if isinstance(inner, self._faiss.IndexIVF) else 0
        if not isinstance(inner, self._faiss.IndexIVFFlat | self._faiss.IndexFlat | self._faiss.IndexHNSWFlat):
            need = max(need, 39 * 256)
        return max(need, 1)

    @property
    def tombstones(self) -> int:
        """Removed ids still stored inside an index that cannot delete (HNSW), awaiting compaction."""
        return len(self._tomb)

    @property
    def removes(self) -> bool:
        """Whether FAISS can delete from this index; one that cannot (HNSW) tombstones removed ids instead."""
        try:
            self._cpu.remove_ids(np.zeros(0, dtype=np.int64))
        except RuntimeError:
            return False
        return True

    @property
    def stored(self) -> int:
        """Vectors physically in the FAISS index, tombstoned ones included (pending, untrained ones not)."""
        return int(self._cpu.ntotal)

    def __len__(self) -> int:
        pending = int(self._pending.ntotal) if self._pending is not None else 0
        return int(self._cpu.ntotal) + pending - len(self._tomb)

    # -- writes -----------------------------------------------------------------------------------

    def train(self, vectors: np.ndarray) -> None:
        """Train the main index on a sample (n, dim) float32 and move any waiting vectors into it."""
        if self._cpu.is_trained:
            return
        self._cpu.train(np.ascontiguousarray(vectors, dtype=np.float32))
        if self._pending is not None and self._pending.ntotal:
            ids = self._faiss.vector_to_array(self._pending.id_map).astype(np.int64)
            vecs = self._pending.reconstruct_batch(ids)
            self._cpu.add_with_ids(vecs, ids)
        self._pending = None
        self._gpu = None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"vectors must be ({len(ids)}, {self.dim}), got {vectors.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(self._tomb):
            self._tomb = np.setdiff1d(self._tomb, ids)  # never happens with SQL ids, but stay exact
        if not self._cpu.is_trained:
            if self._pending is None:
                self._pending = self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))
            self._pending.add_with_ids(vectors, ids)
            if self._pending.ntotal >= self.train_size():
                everything = self._faiss.vector_to_array(self._pending.id_map).astype(np.int64)
                self.train(self._pending.reconstruct_batch(everything))
            return
        self._cpu.add_with_ids(vectors, ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        removed = 0
        if self._pending is not None:
            removed += int(self._pending.remove_ids(ids))
        try:
            removed += self._remove_ids(ids)
        except RuntimeError:  # HNSW and friends: no deletion in FAISS
            present = np.intersect1d(ids, self._faiss.vector_to_array(self._cpu.id_map).astype(np.int64))
            new = np.setdiff1d(present, self._tomb)
            self._tomb = np.union1d(self._tomb, new)
            removed += len(new)
            if len(self._tomb) > 0.1 * max(1, self._cpu.ntotal):
                self._compact()
        self._gpu = None
        return removed

    def _remove_ids(self, ids: np.ndarray) -> int:
        return remove_renumbered(self._faiss, self._cpu, ids)

    def numbering_ok(self) -> bool:
        """False for an IVF index whose lists disagree with its id table; the store rebuilds it from SQL."""
        return numbering_ok(self._faiss, self._cpu)

    def _compact(self) -> None:
        """Rebuild an index that cannot delete without its tombstoned vectors."""
        keep = np.setdiff1d(self._faiss.vector_to_array(self._cpu.id_map).astype(np.int64), self._tomb)
        vectors = self._cpu.reconstruct_batch(keep) if len(keep) else np.zeros((0, self.dim), np.float32)
        fresh = self._faiss.clone_index(self._cpu)
        fresh.reset()
        if len(keep):
            fresh.add_with_ids(vectors, keep)
        self._cpu = fresh
        self._tomb = np.zeros(0, dtype=np.int64)

    def ids(self) -> np.ndarray:
        ids = self._faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        if self._pending is not None:
            ids = np.concatenate([ids, self._faiss.vector_to_array(self._pending.id_map).astype(np.int64)])
        return np.setdiff1d(ids, self._tomb) if len(self._tomb) else ids

    # -- search -----------------------------------------------------------------------------------

    def _params(self, allowed: np.ndarray | None, nprobe: int | None, ef_search: int | None) -> tuple[Any, list[Any]]:
        """SearchParameters for the main index, and the selectors they point at (kept alive by the caller)."""
        f = self._faiss
        keep: list[Any] = []
        sel = None
        if allowed is not None:
            sel = self._selectors.get(allowed)
            keep.append(sel)
        elif len(self._tomb):
            inner_sel = f.IDSelectorBatch(self._tomb)
            sel = f.IDSelectorNot(inner_sel)
            keep += [inner_sel, sel]
        kind = self.kind
        if kind == "ivf":
            params = f.SearchParametersIVF()
            if nprobe:
                params.nprobe = int(nprobe)
        elif kind == "hnsw":
            params = f.SearchParametersHNSW()
            if ef_search:
                params.efSearch = int(ef_search)
        else:
            params = f.SearchParameters()
        if sel is not None:
            params.sel = sel
        return params, keep

    def _gpu_search(self, queries: np.ndarray, k: int, nprobe: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        # The inner index (Flat, IVF, ...) goes to the GPU; the IDMap2 id table stays on the host and maps
        # positions back to SQL ids. This avoids relying on GPU support for the IDMap wrappers themselves.
        if self._gpu_failed:
            return None
        if self._gpu is None:
            if self._gpu_resources is None:
                self._gpu_resources = self._faiss.StandardGpuResources()
            inner = self._faiss.downcast_index(self._cpu.index)
            try:
                self._gpu = self._faiss.index_cpu_to_gpu(self._gpu_resources, 0, inner)
            except RuntimeError:  # no GPU implementation of this index type
                self._gpu_failed = True
                return None
            self._gpu_ids = self._faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        if nprobe and hasattr(self._gpu, "nprobe"):
            self._gpu.nprobe = int(nprobe)
        scores, pos = self._gpu.search(queries, k)
        ids = np.where(pos >= 0, self._gpu_ids[np.clip(pos, 0, None)], -1)
        return scores, ids.astype(np.int64)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """k nearest ids per query: queries (nq, dim) -> (scores, ids), both (nq, k); empty slots are id -1.

        allowed: (m,) int64 ids a filter permits, applied inside FAISS (never post-filtered). nprobe (IVF) and
        ef_search (HNSW) trade speed for recall per call; None keeps the index's own setting.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        nq = queries.shape[0]
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        ids = np.full((nq, k), -1, dtype=np.int64)
        if allowed is not None and len(allowed) == 0:
            return scores, ids
        with self._threads_for(nq):
            if self._cpu.ntotal:
                got = None
                if self.device == "cuda" and allowed is None and not len(self._tomb):
                    got = self._gpu_search(queries, k, nprobe)
                if got is None:
                    params, _keep = self._params(allowed, nprobe, ef_search)
                    got = self._cpu.search(queries, k, params=params)
                scores, ids = got
            if self._pending is not None and self._pending.ntotal:
                params, _keep2 = self._params(allowed, None, None)
                ps, pi = self._pending.search(queries, k, params=params)
                scores, ids = _merge(scores, ids, ps, pi, k)
        return scores, ids

    @contextmanager
    def _threads_for(self, nq: int) -> Iterator[None]:
        """One OpenMP thread for a handful of queries: FAISS gains nothing from a second thread there, and on a
        busy machine its barrier waits for a scheduler tick (p95 28 ms instead of 0.07 ms, docs/benchmarks.md)."""
        if nq >= SMALL_BATCH:
            yield
            return
        before = self._faiss.omp_get_max_threads()
        self._faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            self._faiss.omp_set_num_threads(before)

    def save(self, path: Path) -> None:
        """Write atomically (ragkit.fsutil): a crash leaves the old file or the new one.

        Vectors waiting for training are not written: SQL holds them and opening the KB adds them back.
        """
        atomic_write_path(path, lambda tmp: self._faiss.write_index(self._cpu, str(tmp)))


def faiss_reason(exc: Exception) -> str:
    """FAISS's own message without its C++ location prefix ('Error in ... at file.cpp:12: ')."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return re.sub(r"^Error in .*? at \S+:\d+: ", "", lines[-1])


def _merge(s1: np.ndarray, i1: np.ndarray, s2: np.ndarray, i2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (nq, k) result sets by score, best first."""
    scores = np.concatenate([s1, s2], axis=1)
    ids = np.concatenate([i1, i2], axis=1)
    scores = np.where(ids >= 0, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
