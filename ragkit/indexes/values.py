"""Values as both SQL backends accept them: text without NUL, JSON without NaN/inf."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragkit.types import ChunkSpan


def _text(value: str) -> str:
    """Postgres text cannot hold NUL; U+FFFD keeps the length, so chunk char offsets stay true."""
    return value.replace("\x00", "\ufffd")


def _json_safe(value: Any) -> Any:
    """Metadata as JSON both backends accept: no NUL, no NaN/inf (Postgres rejects both), others as text."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_text(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return _text(str(value))  # Decimal, datetime, ... from SQL sources


def text_hash(text: str) -> str:
    """sha256 hex of a chunk's text: the embedding cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_values(doc_id: int, spans: Sequence[ChunkSpan], vectors: np.ndarray) -> list[dict[str, Any]]:
    """The `chunks` table's columns for a document's spans and their (len(spans), dim) float32 vectors."""
    return [
        {
            "doc_id": doc_id,
            "ord": i,
            "text": _text(sp.text),
            "text_hash": text_hash(sp.text),
            "start": sp.start,
            "end": sp.end,
            "token_count": sp.token_count,
            "page": sp.page,
            "section": None if sp.section is None else _text(sp.section),
            "kinds": ",".join(sp.kinds),
            "vector": np.asarray(vec, dtype="<f4").tobytes(),
        }
        for i, (sp, vec) in enumerate(zip(spans, vectors, strict=True))
    ]
