"""What enforcement costs, where a test can pin it without timing anything (bench/acl.py measures the latency).

A reader's keyword query carries the allowed chunk ids as `rowid IN (SELECT ...)`. SQLite hands such a term to
FTS5 as a rowid-equality constraint and then runs the MATCH once per allowed id (the plan's `INDEX 0:=M1`): with
thousands of allowed chunks a hybrid search went from ~2 ms to ~15 ms at 4,000 chunks and worse with size. The
query must run the MATCH once and test membership in the materialised id list (`+rowid IN`, plan `INDEX 0:M1`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

import ragkit
from ragkit.access import Principal


def fts_plans(kb: ragkit.KnowledgeBase, run: Any) -> list[str]:
    """The query plan of every FTS5 query `run()` sends, as SQLite's EXPLAIN QUERY PLAN details."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "chunks_fts MATCH" in statement:
            sent.append((statement, parameters))

    event.listen(kb.store.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(kb.store.engine, "before_cursor_execute", capture)
    assert sent, "no keyword query was sent"
    plans = []
    with kb.store.engine.connect() as conn:
        for statement, parameters in sent:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans += [str(r[-1]) for r in rows if "chunks_fts" in str(r[-1])]
    return plans


@pytest.mark.usefixtures("hashed")
def test_a_readers_keyword_query_runs_the_match_once_not_once_per_allowed_chunk(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(30):
        (docs / f"team-{n % 3}-{n:02d}.md").write_text(f"The budget review {n} covers travel and salary policy.")
    (tmp_path / "acl.toml").write_text('[rules]\n"team-0-*" = ["group:a"]\n"team-1-*" = ["group:b"]\n')
    with ragkit.open(tmp_path / "kb", **{"security.access_control": True}) as kb:
        kb.ingest([docs], acl_rules=tmp_path / "acl.toml")
        reader = kb.as_principal(Principal("alice", groups=["a"]))
        for filters in (None, "source=team-*"):
            hits: list[ragkit.Hit] = []
            plans = fts_plans(
                kb,
                lambda f=filters, hits=hits: hits.extend(
                    reader.search("budget travel", k=5, mode="keyword", filters=f)
                ),
            )
            assert len(hits) == 5 and all("/team-0-" in h.chunk.uri for h in hits)
            scans = [p for p in plans if "VIRTUAL TABLE" in p]
            assert scans and not any(":=" in p for p in scans), plans


def test_a_read_only_allowed_array_keeps_its_faiss_selector_and_a_writable_one_does_not() -> None:
    import faiss

    from ragkit.indexes.selectors import SelectorCache

    cache = SelectorCache(faiss)
    fixed = np.arange(0, 1000, 3, dtype=np.int64)
    fixed.setflags(write=False)
    assert cache.get(fixed) is cache.get(fixed)
    assert cache.get(fixed.copy()) is not cache.get(fixed.copy())
    assert cache.get(fixed).is_member(3) and not cache.get(fixed).is_member(4)
