"""Idempotent document writes: a retried write of content already stored, complete, is a no-op.

Distributed runtimes (Ray) execute a write at least once: a worker that dies after its commit has its batch
retried, and a zombie attempt may race the retry. Inside the document's transaction, `unchanged` first takes
a per-uri lock on PostgreSQL (`pg_advisory_xact_lock`, released at commit; SQLite has one writer anyway), then
says whether the stored document already holds exactly this content: same content hash, status ok, the same
metadata and grants, and all its chunks. The unique uri constraint stops a second copy in any case; the
transaction stops a half-written one. Plain SQL on purpose: this module must not import sql_store (a cycle).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def uri_key(uri: str) -> int:
    """A signed 64-bit advisory-lock key for a uri (the first 8 bytes of its sha256)."""
    return int.from_bytes(hashlib.sha256(uri.encode("utf-8")).digest()[:8], "big", signed=True)


def unchanged(
    s: Session, uri: str, content_hash: str, n_chunks: int, meta: dict[str, Any], grants: Sequence[str] | None
) -> bool:
    """Lock the uri for this transaction (PostgreSQL) and say whether the stored document is this one, complete.

    meta: as it would be stored (JSON-safe). grants: the write's grants (None: keep the stored ones).
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": uri_key(uri)})
    row = s.execute(
        text("SELECT id, content_hash, status, chunk_count, meta FROM documents WHERE uri = :u"), {"u": uri}
    ).first()
    if row is None or row[1] != content_hash or row[2] != "ok" or row[3] != n_chunks:
        return False
    stored_meta = json.loads(row[4]) if isinstance(row[4], str) else row[4]
    if (stored_meta or {}) != meta:
        return False
    if grants is not None:
        have = s.scalars(text("SELECT principal FROM doc_grants WHERE doc_id = :d"), {"d": row[0]})
        if sorted(have) != sorted(grants):
            return False
    stored = s.scalar(text("SELECT count(*) FROM chunks WHERE doc_id = :d"), {"d": row[0]})
    return int(stored or 0) == n_chunks
