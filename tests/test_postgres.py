"""Knowledge bases whose database is PostgreSQL: a real server started by the tests (tests/pgserver.py).

The store contract itself runs on both backends in tests/test_store_and_index.py; here: connection errors
that say what to do, `--db` recorded by a new KB and refused when it contradicts an existing one, and the
whole CLI (ingest, search, delete, re-ingest, info) plus the FAISS repair from the vectors kept in Postgres.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

import ragkit
from ragkit.cli import app
from ragkit.errors import ConfigError, DependencyError, KnowledgeBaseError
from ragkit.indexes.sql_store import SqlStore, check_same_database, make_engine, parse_database_url

runner = CliRunner()


def run(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def test_plain_postgres_urls_mean_psycopg_3() -> None:
    for url in ("postgresql://me@db/kb", "postgres://me@db/kb", "postgresql+psycopg://me@db/kb"):
        assert parse_database_url(url).drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL only"):
        parse_database_url("mysql://me@db/kb")
    with pytest.raises(ConfigError, match="not a database URL"):
        parse_database_url("kb.db")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails, as where it is not installed
    with pytest.raises(DependencyError, match=r"ragkit\[pg\]"):
        make_engine("postgresql+psycopg://me@127.0.0.1/kb")


def test_unreachable_server_says_what_to_do_and_hides_the_password() -> None:
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'ragkit[pg]'")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(KnowledgeBaseError) as err:
        SqlStore(make_engine(f"postgresql://me:s3cret@127.0.0.1:{port}/kb"))
    msg = str(err.value)
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in msg and "start the server" in msg
    assert "s3cret" not in msg and "***" in msg


def test_missing_database_says_how_to_create_it(pg_url: str) -> None:
    url = make_url(pg_url).set(database="no_such_db")
    with pytest.raises(KnowledgeBaseError, match=f"createdb -h 127.0.0.1 -p {url.port} no_such_db"):
        SqlStore(make_engine(url.render_as_string(hide_password=False)))


def test_a_kb_refuses_another_database_than_its_own(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    check_same_database(kb, None, None)
    check_same_database(kb, "postgresql://me@db/a", "postgresql+psycopg://me@db/a")  # same, spelled otherwise
    with pytest.raises(KnowledgeBaseError, match="keeps its data in its SQLite file, not postgresql"):
        check_same_database(kb, None, "postgresql+psycopg://me:pw@db/a")
    with pytest.raises(KnowledgeBaseError, match=r"me:\*\*\*@db/a") as err:
        check_same_database(kb, "postgresql+psycopg://me:pw@db/a", "postgresql+psycopg://me:pw@db/b")
    assert ":pw@" not in str(err.value)


def test_keyword_search_on_postgres_follows_every_write_and_honours_filters(pg_url: str) -> None:
    from ragkit.connectors.parsing import build_document
    from ragkit.indexes.filters import compile_filters
    from ragkit.indexes.keyword import PostgresFullText, keyword_index
    from ragkit.types import ChunkSpan

    store = SqlStore(make_engine(pg_url))
    kw = keyword_index(store.engine)
    assert isinstance(kw, PostgresFullText)
    vec = np.eye(1, 8, dtype=np.float32)
    for uri, sentence in (("/x/a.md", "Rotate the production keys every 90 days."), ("/x/b.txt", "Staging keys?")):
        doc = build_document(uri, [(sentence, "NarrativeText", None)], uri, {})
        store.replace_document(doc, [ChunkSpan(doc.text, 0, len(doc.text), 9)], vec)
    a_id, b_id = store.chunk_ids().tolist()
    hits = kw.search("how often are production keys rotated?", 5)
    assert [i for i, _ in hits] == [a_id, b_id] and hits[0][1] > hits[1][1]  # english stemming: rotated/rotate
    assert [i for i, _ in kw.search("keys", 5, allowed=compile_filters("source=*.txt"))] == [b_id]
    assert kw.search("", 5) == [] and kw.search('") | !( :* \\ 日本', 5) == []  # no tsquery syntax errors
    store.delete_documents(["/x/a.md"])
    assert [i for i, _ in kw.search("production keys", 5)] == [b_id]
    assert kw.check()
    assert isinstance(keyword_index(store.engine), PostgresFullText)  # reopening adds nothing twice
    # CJK words inside runs without spaces (to_tsvector reads the run as one word): searched as character pairs
    doc = build_document("/x/ja.txt", [("東京の会議は午後三時に始まります。", "NarrativeText", None)], "ja", {})
    _, (ja_id,) = store.replace_document(doc, [ChunkSpan(doc.text, 0, len(doc.text), 9)], vec)
    assert [i for i, _ in kw.search("会議 keys", 5)] == [ja_id, b_id]
    store.engine.dispose()


def test_filters_select_exactly_the_matching_chunks_on_postgres(tmp_path: Path, pg_url: str) -> None:
    """The filter truth table of tests/test_retrieval.py, on Postgres; non-numeric metadata never breaks it."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session
    from test_retrieval import FILTER_CASES, generated_store

    from ragkit.indexes.filters import compile_filters

    store, truth = generated_store(tmp_path, docs=12, per_doc=10, url=pg_url)
    with Session(store.engine) as s:
        uri_to_docid = dict(s.execute(text("SELECT uri, id FROM documents")).all())
    for expr, want in FILTER_CASES:
        if want is None:  # "doc in 1,2"
            wanted = {u for u, i in uri_to_docid.items() if i in (1, 2)}
            want = lambda t, wanted=wanted: t["uri"] in wanted  # noqa: E731
        with Session(store.engine) as s:
            assert set(s.scalars(compile_filters(expr))) == {c for c, t in truth.items() if want(t)}, expr
    # a document whose "year" is text: numeric filters skip it instead of failing the query
    from ragkit.connectors.parsing import build_document
    from ragkit.types import ChunkSpan

    doc = build_document("/data/odd.md", [("odd", "NarrativeText", None)], "odd", {"year": "unknown"})
    store.replace_document(doc, [ChunkSpan("odd", 0, 3, 2)], np.eye(1, 16, dtype=np.float32))
    with Session(store.engine) as s:
        assert len(list(s.scalars(compile_filters("meta.year>=2008")))) == 10 * sum(
            1 for d in range(12) if 2000 + d >= 2008
        )
        assert len(list(s.scalars(compile_filters("meta.year=unknown")))) == 1
    store.engine.dispose()


@pytest.mark.slow
def test_cli_on_postgres_end_to_end(corpus: Path, tmp_path: Path, pg_url: str) -> None:
    """ingest -> info -> search -> delete -> re-ingest -> FAISS repaired from Postgres, all on the test server."""
    kb = tmp_path / "kb"
    first = run("ingest", corpus, "--kb", kb, "--db", pg_url, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["ingested"] == 5 and report["chunks_added"] > 5
    assert not (kb / "ragkit.db").exists()  # everything SQL lives in Postgres
    assert pg_url in (kb / "ragkit.toml").read_text()  # recorded: later commands need no --db

    stats = json.loads(run("info", "--kb", kb, "--json").output)
    assert stats["documents"] == 5 and stats["chunks"] == report["chunks_added"]
    assert stats["database"].startswith("postgresql+psycopg://")

    found = run("search", "hotel costs per night", "--kb", kb, "--json", "-k", "2")
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert Path(hits[0]["chunk"]["uri"]).name == "expenses.pdf" and hits[0]["chunk"]["page"] == 2

    keyword = json.loads(run("search", "hotel per night", "--kb", kb, "--json", "--mode", "keyword").output)["hits"]
    assert Path(keyword[0]["chunk"]["uri"]).name == "expenses.pdf"
    filtered = run("search", "hotel costs per night", "--kb", kb, "--json", "--filter", "source=*.md")
    assert filtered.exit_code == 0, filtered.output
    assert {Path(h["chunk"]["uri"]).suffix for h in json.loads(filtered.output)["hits"]} == {".md"}

    deleted = run("delete", corpus / "expenses.pdf", "--kb", kb, "--json")
    assert json.loads(deleted.output)["deleted"] == 1  # the count; delete --json lists the uris too
    after = json.loads(run("search", "hotel costs per night", "--kb", kb, "--json", "-k", "3").output)["hits"]
    assert all(Path(h["chunk"]["uri"]).name != "expenses.pdf" for h in after)

    again = json.loads(run("ingest", corpus, "--kb", kb, "--json").output)
    assert (again["ingested"], again["unchanged"]) == (1, 4)  # only the deleted file comes back

    checked = run("check", "--kb", kb, "--json")
    assert checked.exit_code == 0, checked.output

    (kb / "index.faiss").unlink()  # FAISS is derived: rebuilt from the vectors stored in Postgres
    with ragkit.open(kb, create=False) as base:
        assert base.store.backend == "postgresql"
        assert np.array_equal(np.sort(base.index.ids()), base.store.chunk_ids())
        assert Path(base.search("hotel costs per night", k=1)[0].chunk.uri).name == "expenses.pdf"

    # a KB directory copied elsewhere reaches the same database; --db naming another one is refused
    shutil.copytree(kb, tmp_path / "copy")
    other = make_url(pg_url).set(database="other").render_as_string(hide_password=False)
    refused = run("search", "hotel", "--kb", tmp_path / "copy", "--db", other)
    assert refused.exit_code == 1 and "keeps its data in postgresql+psycopg://" in refused.output
    assert "Traceback" not in refused.output


@pytest.mark.usefixtures("hashed")
def test_documents_are_named_on_postgres_as_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    # rule DN2 reads each document's first chunk (a manual's NAME section) through SQL: the same on PostgreSQL
    from test_named_documents import BUNZIP2_QUESTION, BZIP2_PAGE, CP_PAGE

    from ragkit.indexes.named import DocumentNames

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bzip2.1").write_text(BZIP2_PAGE, encoding="utf-8")
    (folder / "cp.md").write_text(CP_PAGE, encoding="utf-8")
    with ragkit.open(tmp_path / "kb", database_url=pg_url, **{"retrieval.mode": "keyword"}) as kb:
        kb.ingest([folder])
        names = DocumentNames(kb.store.sql.engine)
        assert names.named(BUNZIP2_QUESTION) == names.named("Which bzcat flag?") != ()
        assert names.named("I run my cp with -n") == ()  # "my cp" is the user's, not cp.md
        assert kb.search(BUNZIP2_QUESTION, 1)[0].chunk.source_name == "bzip2.1"
