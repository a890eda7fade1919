"""Ingest that holds up: incremental sync, embedding cache, prune/delete, bad input, Ctrl-C, SIGKILL."""

from __future__ import annotations

import gzip
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ragkit
from ragkit.connectors.parsing import SourceOptions, parser_version

HTML_PARSER = parser_version(".html", SourceOptions())  # the current version, which a re-read records

pytestmark = pytest.mark.slow


def write_topics(folder: Path, n: int, chars: int = 1500, start: int = 0) -> list[Path]:
    """Real technical English: the Python reference topics, one file each."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in sorted(topics.items())[start : start + n]:
        path = folder / f"{name}.txt"
        path.write_text(f"{name}\n\n{body[:chars]}", encoding="utf-8")
        paths.append(path)
    return paths


def consistent(kb_dir: Path) -> tuple[int, int]:
    """Assert SQL and the FAISS file (after the repair on open) agree; return (documents, chunks)."""
    with ragkit.open(kb_dir, create=False) as kb:
        sql_ids = sorted(kb.store.chunk_ids().tolist())
        assert sorted(kb.index.ids().tolist()) == sql_ids
        assert len(set(sql_ids)) == len(sql_ids)
        counts = kb.store.counts()
    return counts["documents"], counts["chunks"]


def top_texts(kb_dir: Path, queries: list[str]) -> list[list[str]]:
    with ragkit.open(kb_dir, create=False) as kb:
        return [[h.chunk.text for h in hits] for hits in kb.search_batch(queries, k=5)]


class CountingEmbedder:
    """Wraps the real embedder and counts the texts it is asked to embed."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.embedded = inner, 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return self.inner.embed(texts)


def test_unchanged_files_are_not_read_and_identical_chunks_not_reembedded(tmp_path: Path) -> None:
    files = write_topics(tmp_path / "docs", 4)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([tmp_path / "docs"])
        spy = CountingEmbedder(kb.embedder)
        kb.embedder = spy
        n_chunks = kb.store.counts()["chunks"]

        os.utime(files[0], (1, 1))  # touched, same bytes: hashed, not re-parsed or re-embedded
        report = kb.ingest([tmp_path / "docs"])
        assert (report.ingested, report.unchanged, spy.embedded) == (0, 4, 0)

        files[1].write_text(files[1].read_text() + "\n\nA new closing paragraph about decorators.", encoding="utf-8")
        report = kb.ingest([tmp_path / "docs"])
        assert report.ingested == 1
        assert spy.embedded <= 2  # only the chunk(s) whose text changed
        assert kb.store.counts()["chunks"] >= n_chunks


def test_a_document_read_by_an_older_parser_is_read_again(tmp_path: Path) -> None:
    # an upgrade that changes a parser's output (HTML definition lists) re-reads stored HTML on the next ingest,
    # although the file is unchanged; other formats stay as they are
    docs = tmp_path / "docs"
    write_topics(docs, 1)
    page = "<h1>OPTIONS</h1><dl><dt>-k --keep</dt><dd><p>Keep (don't delete) input files.</p></dd></dl>"
    (docs / "manual.html").write_text(page, encoding="utf-8")
    with ragkit.open(tmp_path / "kb") as kb:
        assert kb.ingest([docs]).ingested == 2
        states = kb.store.document_states()
        assert states[str(docs / "manual.html")].parser == HTML_PARSER
    with sqlite3.connect(tmp_path / "kb" / "ragkit.db") as db:  # as an older ragkit left it: no version, one
        db.execute(  # element per <dt> and <dd>
            "UPDATE documents SET meta = json_remove(meta, '$.parser') WHERE uri LIKE '%.html'"
        )
        db.execute("UPDATE chunks SET text = 'OPTIONS -k --keep Keep input files.' WHERE text LIKE '%keep%'")
    with ragkit.open(tmp_path / "kb") as kb:
        assert kb.store.document_states()[str(docs / "manual.html")].parser == 1
        report = kb.ingest([docs])
        assert (report.ingested, report.unchanged, report.reread) == (1, 1, 1)
        texts = [h.chunk.text for h in kb.search("keep input files", k=3)]
        assert any("-k --keep: Keep (don't delete) input files." in t for t in texts)
        again = kb.ingest([docs])
        assert (again.ingested, again.unchanged, again.reread) == (0, 2, 0)
    consistent(tmp_path / "kb")


def test_a_file_an_older_parser_failed_on_is_tried_again(tmp_path: Path) -> None:
    # a UTF-16 text file was "binary content" before the text parser read byte-order marks (version 2); a file
    # the current parser fails on is reported again without a second parse
    docs = tmp_path / "docs"
    docs.mkdir()
    notes = docs / "notes.txt"
    notes.write_text("The staging server restarts every Sunday at 04:00.", encoding="utf-16")
    (docs / "junk.txt").write_bytes(bytes(range(256)) * 4)
    with ragkit.open(tmp_path / "kb") as kb:
        first = kb.ingest([docs])
        assert (first.ingested, len(first.failed)) == (1, 1)
        stat = notes.stat()  # as an older ragkit left it: failed, parser version 1
        kb.store.record_failure(str(notes), "", "notes.txt: binary content in a text file", stat.st_size, stat.st_mtime)
        assert kb.store.document_states()[str(notes)].status == "error"
        report = kb.ingest([docs])
        assert (report.ingested, report.reread, len(report.failed)) == (1, 1, 1)
        assert "Sunday at 04:00" in kb.search("when does staging restart", k=1)[0].chunk.text
        again = kb.ingest([docs])
        assert (again.ingested, again.unchanged, again.reread, len(again.failed)) == (0, 1, 0, 1)
    consistent(tmp_path / "kb")


def test_include_exclude_prune_and_delete(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    files = write_topics(docs, 3)
    (docs / "drafts").mkdir()
    (docs / "drafts" / "draft.md").write_text("# Draft\n\nUnfinished notes on the walrus operator.", encoding="utf-8")
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs], exclude=["drafts/*"])
        assert report.ingested == 3
        report = kb.ingest([docs], include=["*.md"])
        assert report.ingested == 1
        assert kb.store.counts()["documents"] == 4

        files[0].unlink()
        report = kb.ingest([docs], prune=True)
        assert report.deleted == 1 and kb.store.counts()["documents"] == 3
        assert str(files[0]) not in kb.store.document_states()

        assert kb.delete([docs / "drafts"]) == 1
        assert kb.delete(["*/" + files[1].name]) == 1
        assert kb.delete([docs / "nothing-here.txt"]) == 0
        assert kb.store.counts()["documents"] == 1
    consistent(tmp_path / "kb")


@pytest.mark.parametrize("workers", [None, 2], ids=["parser-thread", "parser-processes"])
def test_folder_of_bad_files_is_reported_and_the_rest_ingested(tmp_path: Path, workers: int | None) -> None:
    docs = tmp_path / "docs"
    good = write_topics(docs, 2)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntrailer garbage")
    (docs / "junk.docx").write_bytes(os.urandom(4096))
    (docs / "latin1.txt").write_bytes("Le café coûte trois euros au rez-de-chaussée.".encode("latin-1"))
    with open(docs / "huge.txt", "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # a 200 MB file (sparse: instant to make)
    (docs / "vanishing.md").write_text("# Soon gone\n\nThis file is deleted before it is read.", encoding="utf-8")
    (docs / "bomb.txt.gz").write_bytes(gzip.compress(bytes(120 * 1024 * 1024)))  # 120 MB inside 120 KB
    (docs / "caching.md.gz").write_bytes(gzip.compress(b"# Caching\n\npip keeps an HTTP cache of downloads."))

    def vanish(done: int, total: int, current: str) -> None:
        (docs / "vanishing.md").unlink(missing_ok=True)  # after discovery, before the parser reads it

    with ragkit.open(tmp_path / "kb", **{"ingest.parse_workers": workers}) as kb:
        report = kb.ingest([docs], progress=vanish)
        texts = sorted(c.text for c in kb.store.chunks(kb.store.chunk_ids().tolist()).values())
    if workers:  # processes chunk exactly as the thread does
        with ragkit.open(tmp_path / "kb2") as kb2:
            kb2.ingest([docs])
            assert texts == sorted(c.text for c in kb2.store.chunks(kb2.store.chunk_ids().tolist()).values())
    reasons = {Path(f.uri).name: f.reason for f in report.failed}
    assert set(reasons) == {"empty.txt", "corrupt.pdf", "junk.docx", "huge.txt", "vanishing.md", "bomb.txt.gz"}
    assert "over the 100 MB limit once decompressed" in reasons["bomb.txt.gz"]
    assert "empty file" in reasons["empty.txt"]
    assert "not a readable PDF" in reasons["corrupt.pdf"]
    assert "cannot parse" in reasons["junk.docx"]
    assert "over the 100 MB limit" in reasons["huge.txt"]
    assert "cannot read" in reasons["vanishing.md"]
    assert report.ingested == len(good) + 2 and report.partial  # latin1.txt decoded, caching.md.gz read


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    write_topics(docs, 1)
    secret = docs / "secret.txt"
    secret.write_text("classified", encoding="utf-8")
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the read fail the way it does for everyone else
        real_read = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == "secret.txt":
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
    assert [("secret.txt" in f.uri, "denied" in f.reason.lower()) for f in report.failed] == [(True, True)]
    assert report.ingested == 1


def test_ctrl_c_keeps_committed_files_and_the_rerun_finishes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_topics(docs, 8)

    def interrupt(done: int, total: int, current: str) -> None:
        if done >= 3:
            raise KeyboardInterrupt

    with ragkit.open(tmp_path / "kb", **{"ingest.batch_chunks": 1}) as kb:
        report = kb.ingest([docs], progress=interrupt)
        assert report.interrupted and 3 <= report.ingested < 8
        kept = kb.store.counts()["documents"]
        assert kept == report.ingested
        again = kb.ingest([docs])
        assert again.unchanged == kept and again.ingested == 8 - kept
    consistent(tmp_path / "kb")


def test_random_add_change_delete_sequences_match_a_fresh_rebuild(tmp_path: Path) -> None:
    from pydoc_data.topics import topics

    bodies = [f"{name}\n\n{body[:700]}" for name, body in sorted(topics.items())[20:40]]
    queries = ["how does the for statement work", "exception handling with try", "class definitions", "import"]
    rng = random.Random(1338)
    docs = tmp_path / "docs"
    docs.mkdir()
    with ragkit.open(tmp_path / "kb") as kb:
        for _step in range(6):
            present = sorted(docs.iterdir())
            op = rng.choice(["add", "add", "change", "delete"] if present else ["add"])
            if op == "add":
                (docs / f"f{rng.randrange(10_000)}.txt").write_text(rng.choice(bodies), encoding="utf-8")
            elif op == "change":
                rng.choice(present).write_text(rng.choice(bodies), encoding="utf-8")
            else:
                rng.choice(present).unlink()
            if any(docs.iterdir()):
                kb.ingest([docs], prune=True)
    fresh = tmp_path / "fresh"
    with ragkit.open(fresh) as kb:
        kb.ingest([docs])
    assert consistent(tmp_path / "kb") == consistent(fresh)
    assert top_texts(tmp_path / "kb", queries) == top_texts(fresh, queries)


INGEST_SCRIPT = """
import sys, ragkit
with ragkit.open(sys.argv[1], **{"ingest.batch_chunks": 4}) as kb:
    kb.ingest([sys.argv[2]])
"""


def _documents_in(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("select count(*) from documents").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_ingest_leaves_a_consistent_kb_that_the_rerun_completes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_topics(docs, 24, chars=2500)
    kb_dir = tmp_path / "kb"
    with ragkit.open(kb_dir):
        pass  # create it first, so the subprocesses only ingest
    db = kb_dir / "ragkit.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    committed = 0
    for kill_after in (1, 8, 16):  # documents committed before the SIGKILL
        proc = subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(kb_dir), str(docs)], env=env)
        deadline = time.monotonic() + 240
        while proc.poll() is None and _documents_in(db) < kill_after and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        documents, _ = consistent(kb_dir)
        assert documents >= committed  # nothing already committed is lost
        committed = documents
    with ragkit.open(kb_dir, create=False) as kb:
        report = kb.ingest([docs])
    assert report.unchanged == committed and report.ingested == 24 - committed and not report.failed
    fresh = tmp_path / "fresh"
    with ragkit.open(fresh) as kb:
        kb.ingest([docs])
    assert consistent(kb_dir) == consistent(fresh)
    queries = ["string formatting", "the with statement", "numeric types"]
    assert top_texts(kb_dir, queries) == top_texts(fresh, queries)
    # the search scores agree too: no duplicate or stale vectors survived
    with ragkit.open(kb_dir, create=False) as a, ragkit.open(fresh, create=False) as b:
        sa = [h.score for h in a.search("string formatting", k=5)]
        sb = [h.score for h in b.search("string formatting", k=5)]
    np.testing.assert_allclose(sa, sb, rtol=1e-5)


def test_perl_modules_without_pod_are_left_out_with_one_note(tmp_path: Path) -> None:
    # a folder of Perl code: each module without POD is no document to read, not a failure (exit code 0)
    docs = tmp_path / "lib"
    docs.mkdir()
    (docs / "Tiny.pm").write_text("package Tiny;\n1;\n__END__\n\n=head1 NAME\n\nTiny - a module\n", encoding="utf-8")
    for name in ("Bare.pm", "Other.pm"):
        (docs / name).write_text(f"package {name[:-3]};\nsub x {{ 1 }}\n1;\n", encoding="utf-8")
    note = "left out 2 files that hold no documentation (Perl code without POD)"
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
        assert (report.ingested, report.failed) == (1, ())
        assert [(n.uri, n.reason) for n in report.notes] == [(str(docs), note)]
        again = kb.ingest([docs])  # untouched: not parsed again, still a note
        assert (again.unchanged, again.failed) == (1, ())
        assert [(n.uri, n.reason) for n in again.notes] == [(str(docs), note)]
