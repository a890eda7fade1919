"""FAISS vector index whose ids are the SQL chunk ids (IndexIDMap2), on the GPU when one is present."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ragkit.errors import ConfigError, DependencyError


class VectorIndex(Protocol):
    """Maps int64 ids to float32 vectors and answers k-nearest-neighbour queries.

    Vectors arrive L2-normalised, so scores are cosine similarities (higher is better).
    """

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors. ids: (n,) int64, unique and >= 0; vectors: (n, dim) float32."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids), both (nq, k). Empty slots have id -1."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; return how many were present."""
        ...

    def ids(self) -> np.ndarray:
        """(n,) int64: every id in the index."""
        ...

    def __len__(self) -> int: ...

    def save(self, path: Path) -> None: ...


def import_faiss() -> Any:
    """Import faiss lazily, with an error that names the extras that provide it."""
    try:
        import faiss
    except ImportError as exc:
        raise DependencyError(
            "FAISS is not installed: pip install 'ragkit[cpu]' (or 'ragkit[gpu]' on an NVIDIA machine; never both)"
        ) from exc
    return faiss


def gpu_count() -> int:
    """GPUs FAISS can use: 0 on faiss-cpu, and on faiss-gpu without a visible GPU."""
    faiss = import_faiss()
    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


class FaissIndex:
    """IndexIDMap2 over any FAISS factory spec, inner product metric.

    The CPU index is the one written and saved; when a GPU is used, searches go to a GPU copy that is
    rebuilt lazily after writes (FAISS GPU indexes cannot be serialised directly).
    """

    def __init__(self, index: Any, dim: int, device: str = "auto") -> None:
        self._faiss = import_faiss()
        self._cpu = index
        self.dim = dim
        if device == "cuda" and gpu_count() == 0:
            raise ConfigError("index.device is 'cuda' but FAISS sees no GPU (is faiss-gpu installed?)")
        self.device = "cuda" if device in ("auto", "cuda") and gpu_count() > 0 else "cpu"
        self._gpu: Any = None  # GPU copy of the inner index, dropped after every write
        self._gpu_ids = np.zeros(0, dtype=np.int64)
        self._gpu_resources: Any = None

    @classmethod
    def create(cls, dim: int, spec: str = "Flat", device: str = "auto") -> FaissIndex:
        """A new empty index. spec is FAISS factory grammar ("Flat", "HNSW32", ...), wrapped in IDMap2."""
        faiss = import_faiss()
        try:
            index = faiss.index_factory(dim, f"IDMap2,{spec}", faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ConfigError(f"invalid FAISS index spec {spec!r}: {exc}") from exc
        return cls(index, dim, device)

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> FaissIndex:
        faiss = import_faiss()
        index = faiss.read_index(str(path))
        return cls(index, index.d, device)

    def __len__(self) -> int:
        return int(self._cpu.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"vectors must be ({len(ids)}, {self.dim}), got {vectors.shape}")
        self._cpu.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        removed = int(self._cpu.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
        self._gpu = None
        return removed

    def ids(self) -> np.ndarray:
        return self._faiss.vector_to_array(self._cpu.id_map).astype(np.int64)

    def _gpu_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # The inner index (Flat, IVF, ...) goes to the GPU; the IDMap2 id table stays on the host and maps
        # positions back to SQL ids. This avoids relying on GPU support for the IDMap wrappers themselves.
        if self._gpu is None:
            if self._gpu_resources is None:
                self._gpu_resources = self._faiss.StandardGpuResources()
            inner = self._faiss.downcast_index(self._cpu.index)
            self._gpu = self._faiss.index_cpu_to_gpu(self._gpu_resources, 0, inner)
            self._gpu_ids = self.ids()
        scores, pos = self._gpu.search(queries, k)
        ids = np.where(pos >= 0, self._gpu_ids[np.clip(pos, 0, None)], -1)
        return scores, ids.astype(np.int64)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(self) == 0:
            nq = queries.shape[0]
            return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
        if self.device == "cuda":
            return self._gpu_search(queries, k)
        return self._cpu.search(queries, k)

    def save(self, path: Path) -> None:
        """Write atomically: temp file, fsync, rename. A crash leaves the old file or the new one."""
        tmp = path.with_name(path.name + ".tmp")
        self._faiss.write_index(self._cpu, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
