"""Optional second-stage reranking with a cross-encoder from a local directory.

No reranker ships on PyPI (ASSETS.md), so ragkit takes any sentence-transformers CrossEncoder directory the
user has (e.g. a copy of cross-encoder/ms-marco-MiniLM-L6-v2) through `retrieval.reranker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragkit.assets import auto_device, quiet_transformers, set_offline_env
from ragkit.errors import ConfigError, ModelError
from ragkit.protocols import Reranker as Reranker  # lived here before ragkit.protocols


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder loaded from a local path (single relevance logit)."""

    def __init__(self, path: str | Path, device: str = "auto", batch_size: int = 32) -> None:
        where = Path(path).expanduser()
        if not where.is_dir():
            raise ConfigError(
                f"reranker {str(path)!r} is not a directory; point retrieval.reranker at a local "
                "sentence-transformers CrossEncoder folder (no reranker ships with ragkit)"
            )
        set_offline_env()
        quiet_transformers()
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(str(where), device=auto_device(device), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the reranker from {where}: {exc}") from exc
        self.name = where.name
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False)
        scores = np.asarray(scores, dtype=np.float32)
        return scores if scores.ndim == 1 else scores[:, -1]  # multi-logit models: the "relevant" class
