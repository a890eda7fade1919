"""Grants in SQL: the condition every read compiles in, grant/revoke/show, the audit log, and PostgreSQL RLS.

`readable(principal)` is a SELECT of the document ids the principal may read. The retriever puts it into the
SQL that yields FAISS's allowed ids and into the keyword query, and the store into every chunk fetch and count,
so enforcement happens before ranking, never on a top-k afterwards.

On PostgreSQL the chunks and documents tables also carry row-level security (defence in depth): each
transaction sets `ragkit.principals` (the reader's tokens) or `ragkit.admin`, and the policies hide every row
the tokens hold no grant for, even from a query that forgot ragkit's own condition. RLS binds a role that is
neither a superuser nor BYPASSRLS (FORCE makes it bind the tables' owner too): see docs/access-control.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ragkit.access import Principal
from ragkit.indexes.sql_store import AuditRow, DocumentRow, GrantRow, bump_generation

# Test hook: False leaves ragkit's own SQL condition out, to show that PostgreSQL's RLS alone still holds.
# Never set it outside tests.
ENFORCE_IN_SQL = True

_SEP = "\x1f"  # between tokens in the ragkit.principals setting (names cannot hold it)
# Whose read the current transaction serves; None = ragkit's own work (ingest, sync, check), which sees all.
_READER: ContextVar[tuple[str, ...] | None] = ContextVar("ragkit_reader", default=None)


def readable(principal: Principal | None) -> Select[Any] | None:
    """SELECT of the document ids `principal` may read; None = no restriction (no principal, or an admin)."""
    if principal is None or principal.admin or not ENFORCE_IN_SQL:
        return None
    return select(GrantRow.doc_id).where(GrantRow.principal.in_(principal.tokens))


@contextlib.contextmanager
def reading_as(principal: Principal | None) -> Iterator[None]:
    """Within this block, PostgreSQL transactions begun by this thread run with the principal's RLS setting."""
    token = _READER.set(None if principal is None or principal.admin else principal.tokens)
    try:
        yield
    finally:
        _READER.reset(token)


def grants_by_uri(engine: Engine, uris: Sequence[str]) -> dict[str, list[str]]:
    """{uri: sorted grant tokens} for these documents (an empty list: no grant, admins only)."""
    out: dict[str, list[str]] = {u: [] for u in uris}
    with Session(engine) as s:
        for lo in range(0, len(uris), 500):
            part = list(uris[lo : lo + 500])
            stmt = (
                select(DocumentRow.uri, GrantRow.principal)
                .join(GrantRow, GrantRow.doc_id == DocumentRow.id)
                .where(DocumentRow.uri.in_(part))
            )
            for uri, token in s.execute(stmt):
                out[uri].append(token)
    return {u: sorted(v) for u, v in out.items()}


def change_grants(
    engine: Engine, uris: Sequence[str], tokens: Sequence[str], *, add: bool, actor: str, replace: bool = False
) -> int:
    """Add (or remove) grant tokens on these documents in one transaction, recording it in the audit log.

    replace: the documents' grants become exactly `tokens` (ingest's declaration). Returns how many documents
    changed.
    """
    changed = 0
    with Session(engine) as s, s.begin():
        bump_generation(s)  # cached allowed ids (ragkit/indexes/allowed.py) are stale from the next read on
        for lo in range(0, len(uris), 500):
            rows = s.execute(select(DocumentRow.id, DocumentRow.uri).where(DocumentRow.uri.in_(uris[lo : lo + 500])))
            for doc_id, _uri in rows.all():
                have = set(s.scalars(select(GrantRow.principal).where(GrantRow.doc_id == doc_id)))
                want = set(tokens) if replace else (have | set(tokens) if add else have - set(tokens))
                if want == have:
                    continue
                s.execute(delete(GrantRow).where(GrantRow.doc_id == doc_id, GrantRow.principal.in_(have - want)))
                s.add_all(GrantRow(doc_id=doc_id, principal=t) for t in sorted(want - have))
                changed += 1
        action = "set" if replace else "grant" if add else "revoke"
        detail = f"{', '.join(tokens) or '(none)'} on {changed} of {len(uris)} documents"
        s.add(_audit_row(actor, action, _targets_text(uris), detail))
    return changed


def uri_of(engine: Engine, doc_id: int) -> str | None:
    """The uri of the stored document with this id, or None."""
    with Session(engine) as s:
        return s.scalar(select(DocumentRow.uri).where(DocumentRow.id == doc_id))


def ungranted(engine: Engine) -> int:
    """How many stored documents have no grant at all (admins only read them)."""
    with Session(engine) as s:
        granted = select(GrantRow.doc_id)
        return len(s.scalars(select(DocumentRow.id).where(DocumentRow.id.not_in(granted))).all())


def audit(engine: Engine, actor: str, action: str, target: str, detail: str = "") -> None:
    """Append one entry to the audit log (its own transaction)."""
    with Session(engine) as s, s.begin():
        s.add(_audit_row(actor, action, target, detail))


def audit_log(engine: Engine, limit: int | None = None) -> list[dict[str, str]]:
    """The audit log, newest first: [{at (ISO, UTC), actor, action, target, detail}]."""
    stmt = select(AuditRow).order_by(AuditRow.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    with Session(engine) as s:
        rows = s.scalars(stmt).all()
        return [
            {"at": _iso(r.at), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}
            for r in rows
        ]


def _iso(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _audit_row(actor: str, action: str, target: str, detail: str) -> AuditRow:
    return AuditRow(at=datetime.now(UTC), actor=actor[:200], action=action, target=target[:4000], detail=detail)


def _targets_text(uris: Sequence[str]) -> str:
    shown = ", ".join(uris[:20])
    return shown + (f" and {len(uris) - 20} more" if len(uris) > 20 else "")


# -- PostgreSQL row-level security ----------------------------------------------------------------------------

_POLICY = """
CREATE POLICY ragkit_acl ON {table} USING (
  current_setting('ragkit.admin', true) = 'on'
  OR EXISTS (
    SELECT 1 FROM doc_grants g WHERE g.doc_id = {table}.{doc_col}
    AND g.principal = ANY (string_to_array(current_setting('ragkit.principals', true), chr(31)))
  )
)"""
_TABLES = (("documents", "id"), ("chunks", "doc_id"))


def set_row_security(engine: Engine, enabled: bool) -> None:
    """Install (or drop) the RLS policies on PostgreSQL and the per-transaction setting that feeds them.

    Idempotent. Every transaction on this engine then says whose read it serves (see reading_as); ragkit's own
    work (ingest, sync) runs as admin.
    """
    if engine.url.get_backend_name() != "postgresql":
        return
    with engine.begin() as conn:
        present = {
            r[0] for r in conn.execute(text("SELECT tablename FROM pg_policies WHERE policyname = 'ragkit_acl'"))
        }
        for table, doc_col in _TABLES:
            if enabled and table not in present:
                conn.execute(text(_POLICY.format(table=table, doc_col=doc_col)))
                conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
                conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
            elif not enabled and table in present:
                conn.execute(text(f"DROP POLICY ragkit_acl ON {table}"))
                conn.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
                conn.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
    if enabled and not event.contains(engine, "begin", _set_reader):
        event.listen(engine, "begin", _set_reader)


def _set_reader(conn: Any) -> None:
    """Each transaction's RLS setting, local to it (set_config(..., true) ends with the transaction)."""
    tokens = _READER.get()
    conn.exec_driver_sql(
        "SELECT set_config('ragkit.admin', %(admin)s, true), set_config('ragkit.principals', %(p)s, true)",
        {"admin": "on" if tokens is None else "off", "p": _SEP.join(tokens or ())},
    )
