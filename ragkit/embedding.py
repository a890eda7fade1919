"""Text -> unit-norm float32 vectors with sentence-transformers (GPU + fp16 when present)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.assets import auto_device, quiet_transformers, resolve_embedder, set_offline_env
from ragkit.errors import ModelError
from ragkit.protocols import Embedder as Embedder  # the protocol lived here before ragkit.protocols


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory (bundled or user-provided)."""

    def __init__(self, spec: str, *, device: str = "auto", batch_size: int = 32) -> None:
        set_offline_env()
        quiet_transformers()
        from sentence_transformers import SentenceTransformer

        path = resolve_embedder(spec)
        self.name = spec if not Path(spec).exists() else str(path)
        self.device = auto_device(device)
        try:
            self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except Exception as exc:  # a broken folder surfaces as many different exception types
            raise ModelError(f"cannot load embedder from {path}: {exc}") from exc
        if self.device == "cuda":
            self.model.half()  # fp16 halves memory and roughly doubles throughput on GPUs
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.batch_size = batch_size
        # a private copy for counting: encode() reconfigures the shared Rust tokenizer, and ingest counts
        # tokens in its parser thread while the main thread embeds ("Already borrowed" otherwise)
        self._counter = TokenCounter(copy.deepcopy(self.model.tokenizer))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, unit L2 norm. Texts are batched by length inside encode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return self._counter.count_tokens(text)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._counter.token_offsets(text)

    def counter(self) -> TokenCounter:
        """A picklable token counter with this model's tokenizer (for parser processes)."""
        return TokenCounter(copy.deepcopy(self._counter.tokenizer))


class TokenCounter:
    """Counts word pieces with a Hugging Face tokenizer; picklable, so parser processes can carry one."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, special tokens included."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of `text` (no special tokens)."""
        enc = self.tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]
