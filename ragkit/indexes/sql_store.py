"""The SQL metadata store (SQLAlchemy 2.0): documents, chunks and their vectors. The source of truth.

Two backends, one schema: SQLite (a file in the KB, the default) and PostgreSQL (`postgresql+psycopg://...`,
extra `ragkit[pg]`). Chunk ids are the FAISS ids. They are never reused (SQLite AUTOINCREMENT, a Postgres
identity sequence): a FAISS file that is one write behind SQL can then always be repaired by comparing id sets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    Select,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ragkit.errors import KnowledgeBaseError
from ragkit.indexes.engine import (  # noqa: F401 - make_engine and friends lived here before engine.py
    PG_EXTRA_HINT,
    check_same_database,
    connect_error,
    make_engine,
    parse_database_url,
)
from ragkit.indexes.idempotent import unchanged
from ragkit.indexes.values import _json_safe, _text, chunk_values, text_hash  # noqa: F401 - text_hash is imported from here
from ragkit.types import PARSER_META, Chunk, ChunkSpan, Document


class Base(DeclarativeBase):
    pass


@dataclass(frozen=True, slots=True)
class DocState:
    """What the store knows of a document, enough to decide whether to re-ingest it."""

    content_hash: str
    status: str
    size: int
    mtime: float
    error: str | None = None  # why the last ingest failed, when status is "error"
    parser: int = 1  # the version of the parser that read it (meta PARSER_META)


def _parser(meta: dict[str, Any] | None) -> int:
    """The parser version a document's meta records; 1 when none (read before versions were recorded)."""
    value = (meta or {}).get(PARSER_META, 1)
    return value if isinstance(value, int) else 1


# 64-bit ids (FAISS ids are int64). On SQLite the column must stay INTEGER to be the rowid alias that
# AUTOINCREMENT needs (SQLite integers are 64-bit anyway); Postgres gets BIGINT from an identity sequence.
Id = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on Postgres: compact, and its operators are what metadata filters compile to.
Json = JSON().with_variant(JSONB(), "postgresql")


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, Identity(), primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes; with mtime, lets unchanged files skip hashing
    mtime: Mapped[float] = mapped_column(default=0.0)
    status: Mapped[str] = mapped_column(String(16))  # "ok" or "error"
    error: Mapped[str | None] = mapped_column(Text, default=None)
    chunk_count: Mapped[int] = mapped_column(default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, Identity(), primary_key=True)  # == FAISS id (IndexIDMap2)
    doc_id: Mapped[int] = mapped_column(Id, ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ord: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)  # embedding cache key
    start: Mapped[int]
    end: Mapped[int]
    token_count: Mapped[int]
    page: Mapped[int | None]
    section: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[str] = mapped_column(String(200), default="")  # element kinds, comma-separated
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, unit norm (BLOB / bytea)


class StateRow(Base):
    """One row: a generation every write bumps in its own transaction, so caches of what SQL holds (the allowed
    ids of a reader and a filter, ragkit/indexes/allowed.py) know at the next read that they are stale."""

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


def bump_generation(s: Session) -> None:
    """Mark what SQL holds as changed, inside the caller's transaction."""
    s.execute(update(StateRow).where(StateRow.id == 1).values(generation=StateRow.generation + 1))


class GrantRow(Base):
    """Who may read a document: one row per (document, grant token); see ragkit/access.py."""

    __tablename__ = "doc_grants"

    doc_id: Mapped[int] = mapped_column(Id, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    principal: Mapped[str] = mapped_column(String(140), primary_key=True, index=True)


class AuditRow(Base):
    """The access-control audit log: every grant, revoke and admin read (who, what, when)."""

    __tablename__ = "acl_log"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")


class SqlStore:
    """Documents and chunks in SQL. Each document's write is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            Base.metadata.create_all(engine)
        except OperationalError as exc:
            raise connect_error(engine, exc) from exc
        except SQLAlchemyError as exc:
            shown = engine.url.render_as_string(hide_password=True)
            raise KnowledgeBaseError(f"cannot open the database {shown}: {exc}") from exc
        with contextlib.suppress(IntegrityError), Session(engine) as s, s.begin():  # another process won the race
            if s.get(StateRow, 1) is None:
                s.add(StateRow(id=1, generation=0))

    @property
    def backend(self) -> str:
        """The backend name: "sqlite" or "postgresql"."""
        return self.engine.url.get_backend_name()

    @property
    def url(self) -> str:
        """The database URL with the password hidden (for messages and `ragkit info`)."""
        return self.engine.url.render_as_string(hide_password=True)

    def document_states(self) -> dict[str, DocState]:
        """{uri: DocState} of every stored document (one query; ingest plans its work from it)."""
        cols = (
            DocumentRow.uri,
            DocumentRow.content_hash,
            DocumentRow.status,
            DocumentRow.size,
            DocumentRow.mtime,
            DocumentRow.error,
            DocumentRow.meta,
        )
        with Session(self.engine) as s:
            return {r[0]: DocState(*r[1:6], parser=_parser(r[6])) for r in s.execute(select(*cols))}

    def touch(self, uri: str, size: int, mtime: float) -> None:
        """Record a new size/mtime for a document whose content is unchanged."""
        with Session(self.engine) as s, s.begin():
            bump_generation(s)  # `modified` filters read mtime
            s.execute(update(DocumentRow).where(DocumentRow.uri == uri).values(size=size, mtime=mtime))

    def update_meta(self, uris: Sequence[str], meta: dict[str, Any]) -> int:
        """Merge `meta` into the metadata of these documents (status ok), in one transaction; no chunk changes.
        Returns how many documents it changed."""
        changed = 0
        with Session(self.engine) as s, s.begin():
            bump_generation(s)
            for lo in range(0, len(uris), 500):
                rows = s.execute(
                    select(DocumentRow.id, DocumentRow.meta).where(
                        DocumentRow.uri.in_(list(uris[lo : lo + 500])), DocumentRow.status == "ok"
                    )
                ).all()
                for doc_id, old in rows:
                    new = _json_safe({**(old or {}), **meta})
                    if new != old:
                        s.execute(update(DocumentRow).where(DocumentRow.id == doc_id).values(meta=new))
                        changed += 1
        return changed

    def delete_documents(self, uris: Sequence[str]) -> list[int]:
        """Delete documents and their chunks, in one transaction. Returns the removed chunk ids."""
        with Session(self.engine) as s, s.begin():
            bump_generation(s)
            return [cid for uri in uris for cid in self._delete_document(s, uri)]

    def cached_vectors(self, text_hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """{text hash: (dim,) float32} for chunk texts already embedded (identical text, identical vector)."""
        out: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(text_hashes))
        for lo in range(0, len(wanted), 500):
            stmt = select(ChunkRow.text_hash, ChunkRow.vector).where(ChunkRow.text_hash.in_(wanted[lo : lo + 500]))
            with Session(self.engine) as s:
                for h, blob in s.execute(stmt):
                    out.setdefault(h, np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(dim))
        return out

    def _delete_document(self, s: Session, uri: str) -> list[int]:
        doc_id = s.scalar(select(DocumentRow.id).where(DocumentRow.uri == uri))
        if doc_id is None:
            return []
        old = list(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == doc_id)))
        s.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
        s.execute(delete(GrantRow).where(GrantRow.doc_id == doc_id))  # SQLite enforces no ON DELETE CASCADE
        s.execute(delete(DocumentRow).where(DocumentRow.id == doc_id))
        return old

    def replace_document(
        self, doc: Document, spans: Sequence[ChunkSpan], vectors: np.ndarray
    ) -> tuple[list[int], list[int]]:
        """Store a document and its chunks, replacing any earlier version, in one transaction.

        vectors: (len(spans), dim) float32. Returns (removed chunk ids, new chunk ids); ([], []) for a no-op.
        """
        return self.replace_documents([(doc, spans, vectors)])[0]

    def replace_documents(
        self, items: Sequence[tuple[Document, Sequence[ChunkSpan], np.ndarray]]
    ) -> list[tuple[list[int], list[int]]]:
        """replace_document for several documents in one transaction: all of them are stored, or none.

        One transaction per group rather than per file: a commit, a generation bump and a session cost more than
        the rows of a small file (docs/benchmarks.md "GPU"). Returns (removed, new chunk ids) per item."""
        out: list[tuple[list[int], list[int]]] = []
        with Session(self.engine) as s, s.begin():
            bumped = False
            for doc, spans, vectors in items:
                assert len(spans) == len(vectors)
                if unchanged(s, doc.uri, doc.content_hash, len(spans), _json_safe(doc.meta), doc.grants):
                    out.append(([], []))  # a retried write of what is stored, complete (ragkit/indexes/idempotent.py)
                    continue
                if not bumped:
                    bump_generation(s)
                    bumped = True
                out.append(self._replace_one(s, doc, spans, vectors))
        return out

    def _replace_one(
        self, s: Session, doc: Document, spans: Sequence[ChunkSpan], vectors: np.ndarray
    ) -> tuple[list[int], list[int]]:
        grants = doc.grants if doc.grants is not None else self._grants_of(s, doc.uri)
        removed = self._delete_document(s, doc.uri)
        row = DocumentRow(
            uri=doc.uri,
            content_hash=doc.content_hash,
            size=int(doc.meta.get("size", 0)),
            mtime=float(doc.meta.get("mtime", 0.0)),
            status="ok",
            chunk_count=len(spans),
            meta=_json_safe(doc.meta),
            ingested_at=datetime.now(UTC),
        )
        s.add(row)
        s.flush()
        # multi-row INSERTs of plain rows (ORM objects per chunk cost more than SQLite's insert), RETURNING in any
        # order and matched by `ord`: asking for parameter order makes SQLite insert row by row
        stmt = insert(ChunkRow).returning(ChunkRow.ord, ChunkRow.id)
        by_ord = dict(tuple(r) for r in s.execute(stmt, chunk_values(row.id, spans, vectors))) if spans else {}
        new_ids = [by_ord[i] for i in range(len(spans))]
        s.add_all(GrantRow(doc_id=row.id, principal=g) for g in grants)
        s.flush()
        return removed, new_ids

    def record_failure(
        self, uri: str, content_hash: str, reason: str, size: int = 0, mtime: float = 0.0, parser: int = 1
    ) -> list[int]:
        """Mark a document as failed (its old chunks, if any, are removed). Returns removed chunk ids.

        parser: the version of the parser that failed on it; a newer one is given the unchanged file again."""
        with Session(self.engine) as s, s.begin():
            grants = self._grants_of(s, uri)  # a file that fails once keeps who may read it when it is fixed
            bump_generation(s)
            removed = self._delete_document(s, uri)
            row = DocumentRow(
                uri=uri,
                content_hash=content_hash,
                size=size,
                mtime=mtime,
                status="error",
                error=_text(reason),
                chunk_count=0,
                meta={PARSER_META: parser} if parser > 1 else {},
                ingested_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            s.add_all(GrantRow(doc_id=row.id, principal=g) for g in grants)
        return removed

    @staticmethod
    def _grants_of(s: Session, uri: str) -> list[str]:
        stmt = select(GrantRow.principal).join(DocumentRow, DocumentRow.id == GrantRow.doc_id)
        return list(s.scalars(stmt.where(DocumentRow.uri == uri)))

    def chunks(self, ids: Sequence[int], readable: Select[Any] | None = None) -> dict[int, Chunk]:
        """{chunk id: Chunk} for the ids that exist (and, given `readable`, whose document id it selects)."""
        if len(ids) == 0:
            return {}
        stmt = (
            select(ChunkRow, DocumentRow.uri)
            .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
            .where(ChunkRow.id.in_([int(i) for i in ids]))
        )
        if readable is not None:
            stmt = stmt.where(ChunkRow.doc_id.in_(readable))
        with Session(self.engine) as s:
            return {
                r.id: Chunk(
                    id=r.id,
                    doc_id=r.doc_id,
                    uri=uri,
                    ord=r.ord,
                    text=r.text,
                    start=r.start,
                    end=r.end,
                    token_count=r.token_count,
                    page=r.page,
                    section=r.section,
                    kinds=tuple(k for k in r.kinds.split(",") if k),
                )
                for r, uri in s.execute(stmt)
            }

    def chunk_ids(self, readable: Select[Any] | None = None) -> np.ndarray:
        """(n,) int64: every chunk id (of the documents `readable` selects, when given), ascending."""
        stmt = select(ChunkRow.id).order_by(ChunkRow.id)
        if readable is not None:
            stmt = stmt.where(ChunkRow.doc_id.in_(readable))
        with Session(self.engine) as s:
            return np.fromiter(s.scalars(stmt), dtype=np.int64)

    def vectors(self, ids: Sequence[int], dim: int, batch: int = 2048) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids (b,), vectors (b, dim) float32) for the given chunk ids, in batches."""
        id_list = [int(i) for i in ids]
        for lo in range(0, len(id_list), batch):
            part = id_list[lo : lo + batch]
            with Session(self.engine) as s:
                rows = s.execute(select(ChunkRow.id, ChunkRow.vector).where(ChunkRow.id.in_(part))).all()
            got = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
            yield got, vecs.astype(np.float32)

    def counts(self, readable: Select[Any] | None = None) -> dict[str, int]:
        """Documents (ok / failed) and chunks stored (of the documents `readable` selects, when given)."""
        by_status = select(DocumentRow.status, func.count()).group_by(DocumentRow.status)
        n_chunks = select(func.count()).select_from(ChunkRow)
        if readable is not None:
            by_status = by_status.where(DocumentRow.id.in_(readable))
            n_chunks = n_chunks.where(ChunkRow.doc_id.in_(readable))
        with Session(self.engine) as s:
            docs = dict(s.execute(by_status).all())
            chunks = s.scalar(n_chunks) or 0
        return {"documents": docs.get("ok", 0), "failed_documents": docs.get("error", 0), "chunks": int(chunks)}

    def failures(self, readable: Select[Any] | None = None) -> list[tuple[str, str]]:
        """(uri, reason) of every document whose last ingest failed (that `readable` selects, when given)."""
        stmt = select(DocumentRow.uri, DocumentRow.error).where(DocumentRow.status == "error")
        if readable is not None:
            stmt = stmt.where(DocumentRow.id.in_(readable))
        with Session(self.engine) as s:
            rows = s.execute(stmt).all()
        return [(r[0], r[1] or "") for r in rows]
