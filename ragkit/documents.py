"""`kb.documents`: the stored documents one reader may read (a listing, one by id, its text), for `ragkit serve`.

Scoped like every other read: `kb.acl.scope` names the principal (or refuses an access-controlled read without
one, and records an admin's), and the store compiles that principal's grants into the SQL. A document the reader
may not read is indistinguishable from one that does not exist: None, never an error naming it.
"""

from __future__ import annotations

from ragkit.access import Principal
from ragkit.permissions import AccessControl
from ragkit.store import Store
from ragkit.types import DocumentInfo


class Documents:
    """The documents `principal` may read (all of them without access control, or for an admin)."""

    def __init__(self, store: Store, acl: AccessControl, principal: Principal | None) -> None:
        self.store = store
        self.acl = acl
        self.principal = principal

    def list(self, limit: int | None = 100, offset: int = 0) -> list[DocumentInfo]:
        """Documents by id (failed ones too, with their error), `limit` from `offset`."""
        return self.store.documents(self.acl.scope(self.principal, "documents"), limit=limit, offset=offset)

    def count(self) -> int:
        """How many documents the principal may read (ingested and failed)."""
        counts = self.store.counts(self.acl.scope(self.principal, "documents"))
        return counts["documents"] + counts["failed_documents"]

    def get(self, doc_id: int) -> DocumentInfo | None:
        """The document with this id, or None when there is none or the principal may not read it."""
        found = self.store.documents(self.acl.scope(self.principal, f"document {doc_id}"), doc_id=doc_id)
        return found[0] if found else None

    def text(self, doc_id: int) -> str | None:
        """The document's extracted text as its chunks hold it: each chunk at its character offset, so a citation's
        or a chunk's start:end indexes it; text no chunk holds (between elements) reads as newlines. None when
        there is no such document or the principal may not read it ("" for one without chunks)."""
        who = self.acl.scope(self.principal, f"document {doc_id} text")
        if not self.store.documents(who, doc_id=doc_id):
            return None
        spans = self.store.document_spans(doc_id, who)
        size = max((start + len(text) for start, text in spans), default=0)
        out = ["\n"] * size
        for start, text in spans:  # overlapping chunks hold the same characters where they overlap
            out[start : start + len(text)] = text
        return "".join(out)
