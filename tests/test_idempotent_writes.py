"""A retried write of the same document is a no-op; it is never half-written or written twice (both backends)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_CORPUS

from ragkit.indexes.engine import make_engine
from ragkit.indexes.idempotent import uri_key
from ragkit.indexes.sql_store import SqlStore
from ragkit.types import ChunkSpan, Document


def _doc(uri: str = "a.md", digest: str = "h1", **meta: object) -> tuple[Document, list[ChunkSpan], np.ndarray]:
    spans = [ChunkSpan(f"chunk {i}", 8 * i, 8 * i + 7, 3) for i in range(3)]
    vectors = np.eye(3, 4, dtype=np.float32)
    return Document(uri, "x", (), digest, meta={"size": 10, "mtime": 1.5, **meta}), spans, vectors


def _count(sql: SqlStore) -> tuple[int, int]:
    c = sql.counts()
    return c["documents"], c["chunks"]


def test_a_retried_write_of_the_same_content_is_a_no_op(db_url: str) -> None:
    sql = SqlStore(make_engine(db_url))
    removed, first = sql.replace_document(*_doc())
    assert removed == [] and len(first) == 3
    assert sql.replace_document(*_doc()) == ([], [])  # the retry: nothing removed, nothing added
    assert _count(sql) == (1, 3) and list(sql.chunk_ids()) == first
    removed, again = sql.replace_document(*_doc(digest="h2"))  # new content: replaced
    assert removed == first and len(again) == 3 and _count(sql) == (1, 3)
    removed, meta = sql.replace_document(*_doc(digest="h2", team="ops"))  # new metadata: rewritten too
    assert removed == again and _count(sql) == (1, 3)
    sql.engine.dispose()


def test_an_incomplete_document_is_rewritten(db_url: str) -> None:
    from sqlalchemy import text

    sql = SqlStore(make_engine(db_url))
    _, ids = sql.replace_document(*_doc())
    with sql.engine.begin() as c:  # as if a chunk were lost: the stored document is not complete
        c.execute(text("DELETE FROM chunks WHERE id = :i"), {"i": ids[-1]})
    removed, new = sql.replace_document(*_doc())
    assert sorted(removed) == ids[:2] and len(new) == 3 and _count(sql) == (1, 3)
    sql.engine.dispose()


def test_racing_writers_of_one_document_store_it_once(pg_url: str) -> None:
    sql = SqlStore(make_engine(pg_url))
    results: list[object] = []

    def write() -> None:
        try:
            results.append(sql.replace_document(*_doc()))
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            results.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(1 for r in results if r != ([], [])) == 1  # one wrote, the others found it written
    assert _count(sql) == (1, 3)
    sql.engine.dispose()


def test_uri_keys_are_stable_signed_64_bit() -> None:
    assert uri_key("a.md") == uri_key("a.md") != uri_key("b.md")
    assert all(-(2**63) <= uri_key(u) < 2**63 for u in ("", "a", "ü" * 100))


def test_a_second_ray_coordinator_on_one_database_is_refused(pg_url: str, tmp_path: Path, hashed: None) -> None:
    import ragkit
    from ragkit.errors import KnowledgeBaseError
    from ragkit.indexes.coordination import exclusive

    other = make_engine(pg_url)
    with ragkit.open(tmp_path / "kb", database_url=pg_url, **{"runtime.backend": "ray"}) as kb:
        with exclusive(other, "ingest") as first:  # a coordinator on another machine holds the database
            assert first
            with pytest.raises(KnowledgeBaseError, match="another ragkit ingest --ray is writing to"):
                kb.ingest([SAMPLE_CORPUS])
            with exclusive(kb.store.engine, "ingest") as second:
                assert not second
        with exclusive(kb.store.engine, "ingest") as after:  # released with the block (or the session)
            assert after
        assert kb.store.counts()["documents"] == 0
    other.dispose()
