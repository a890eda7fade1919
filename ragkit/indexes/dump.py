"""A KB's content in canonical order, free of ids and ingest times: what `check --compare` compares.

Ids (SQL autoincrement, assigned at commit) and `ingested_at` differ between two builds of the same sources
(a Ray ingest commits in completion order), so documents are keyed by uri and chunks by (uri, ord).
Both are streamed in key order, so two KBs of any size are compared by a merge join in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ragkit.indexes.sql_store import ChunkRow, DocumentRow

DOC_FIELDS = ("content_hash", "size", "mtime", "status", "error", "chunk_count", "meta")
CHUNK_FIELDS = ("text", "text_hash", "start", "end", "token_count", "page", "section", "kinds")
_STREAM = 1000  # rows fetched per round trip


def documents(engine: Engine) -> Iterator[tuple[str, dict[str, Any]]]:
    """(uri, {field: value}) of every document, by uri (binary order, the same on both backends)."""
    cols = [getattr(DocumentRow, f) for f in DOC_FIELDS]
    stmt = select(DocumentRow.uri, *cols).order_by(_bytewise(engine, DocumentRow.uri))
    with Session(engine) as s:
        for row in s.execute(stmt.execution_options(yield_per=_STREAM)):
            yield row[0], dict(zip(DOC_FIELDS, row[1:], strict=True))


def chunks(engine: Engine, dim: int) -> Iterator[tuple[tuple[str, int], dict[str, Any], np.ndarray]]:
    """((uri, ord), {field: value}, (dim,) float32 vector) of every chunk, by (uri, ord)."""
    cols = [getattr(ChunkRow, f) for f in CHUNK_FIELDS]
    stmt = (
        select(DocumentRow.uri, ChunkRow.ord, *cols, ChunkRow.vector)
        .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
        .order_by(_bytewise(engine, DocumentRow.uri), ChunkRow.ord)
    )
    with Session(engine) as s:
        for row in s.execute(stmt.execution_options(yield_per=_STREAM)):
            vec = np.frombuffer(row[-1], dtype="<f4").astype(np.float32).reshape(dim)
            yield (row[0], int(row[1])), dict(zip(CHUNK_FIELDS, row[2:-1], strict=True)), vec


def _bytewise(engine: Engine, column: Any) -> Any:
    """The column ordered by code point (Python's string order): PostgreSQL's default collation is not."""
    return column.collate("C") if engine.url.get_backend_name() == "postgresql" else column
