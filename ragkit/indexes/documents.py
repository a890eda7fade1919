"""Reads of whole documents: the listing, one document by id, and the chunk spans a document's text is laid from.

Every read compiles in the reader's `readable` SELECT (ragkit/indexes/acl.py), as the store's chunk fetches and
counts do, so a document the reader may not read is simply not there.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ragkit.access import Principal
from ragkit.indexes.acl import readable, reading_as
from ragkit.indexes.sql_store import ChunkRow, DocumentRow
from ragkit.types import DocumentInfo


def list_documents(
    engine: Engine, principal: Principal | None, *, doc_id: int | None = None, limit: int | None = None, offset: int = 0
) -> list[DocumentInfo]:
    """Documents the principal may read (None: every one), by id; doc_id: that one only ([] when not readable)."""
    allowed = readable(principal)
    stmt = select(DocumentRow).order_by(DocumentRow.id).offset(max(0, offset))
    if doc_id is not None:
        stmt = stmt.where(DocumentRow.id == int(doc_id))
    if allowed is not None:
        stmt = stmt.where(DocumentRow.id.in_(allowed))
    if limit is not None:
        stmt = stmt.limit(max(0, limit))
    with reading_as(principal), Session(engine) as s:
        return [_info(r) for r in s.scalars(stmt)]


def document_spans(engine: Engine, doc_id: int, principal: Principal | None) -> list[tuple[int, str]]:
    """(start, text) of each chunk of the document, in order ([] when it has none or the principal may not read it)."""
    allowed = readable(principal)
    stmt = select(ChunkRow.start, ChunkRow.text).where(ChunkRow.doc_id == int(doc_id)).order_by(ChunkRow.ord)
    if allowed is not None:
        stmt = stmt.where(ChunkRow.doc_id.in_(allowed))
    with reading_as(principal), Session(engine) as s:
        return [(int(start), text) for start, text in s.execute(stmt)]


def _info(r: DocumentRow) -> DocumentInfo:
    when = r.ingested_at if r.ingested_at.tzinfo else r.ingested_at.replace(tzinfo=UTC)
    return DocumentInfo(
        id=r.id,
        uri=r.uri,
        status=r.status,
        chunks=r.chunk_count,
        size=r.size,
        mtime=r.mtime,
        ingested_at=when.isoformat(timespec="seconds"),
        meta=dict(r.meta or {}),
        error=r.error,
    )
