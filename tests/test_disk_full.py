"""A full disk: one clear error, committed work kept, and the next run finishes. A KB on read-only media: searched
and asked, and every write refused in one line. Both on a real tmpfs where it can be mounted (root); the
classification of errors is tested everywhere."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run  # the CLI in-process; the `hashed` fixture is there too
from sqlalchemy.exc import IntegrityError, OperationalError

import ragkit
from ragkit.errors import KnowledgeBaseError, StorageError
from ragkit.fsutil import disk_full, storage_problem


def _raised_during(first: BaseException, then: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise then  # noqa: B904 - the implicit __context__ is the point
    except BaseException as exc:
        return exc


def test_a_full_disk_is_recognised_in_every_form_it_takes() -> None:
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    assert disk_full(OperationalError("COMMIT", {}, sqlite_full))
    assert disk_full(RuntimeError("write error in index.faiss.tmp: 4014 != 459264 (No space left on device)"))
    # the manifest write failing in a finally block while the SQL write's failure propagates
    assert disk_full(_raised_during(OperationalError("COMMIT", {}, sqlite_full), ValueError("later")))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(KeyboardInterrupt())
    # a statement's parameters are document text: a chunk about full disks is no full disk
    clash = IntegrityError("INSERT INTO chunks", ("the log said: No space left on device",), Exception("UNIQUE"))
    assert not disk_full(clash)
    read_only = storage_problem(OSError(errno.EROFS, "Read-only file system"), Path("/srv/kb"))
    assert read_only and read_only.startswith("the disk holding /srv/kb is read-only: search and ask work")
    sqlite_ro = sqlite3.OperationalError("attempt to write a readonly database")
    assert storage_problem(OperationalError("INSERT", {}, sqlite_ro)) is not None
    assert storage_problem(ValueError("no")) is None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, grown later by remounting; skipped where mounting is not allowed (not root)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)]).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_ingest_with_one_error_and_the_next_run_finishes(small_disk: Path, hashed: None) -> None:
    from pydoc_data.topics import topics

    docs = small_disk.parent / "docs"
    docs.mkdir()
    for name, body in sorted(topics.items())[:40]:
        (docs / f"{name}.txt").write_text(body, encoding="utf-8")
    kb_dir = small_disk / "kb"
    # commit groups of ~32 chunks, as on a CPU: the hashing embedder is so fast that groups sized by time would
    # put every file in one transaction, which fails whole (kept == 0 below)
    ragkit.open(kb_dir, **{"ingest.batch_chunks": 32}).close()
    result = run("ingest", docs, "--kb", kb_dir)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: no space left on the disk holding {kb_dir}: free some space" in result.output
    with pytest.raises(StorageError, match="no space left"), ragkit.open(kb_dir) as kb:
        kb.ingest([docs])

    subprocess.run(["mount", "-o", "remount,size=64M", str(small_disk)], check=True)
    with ragkit.open(kb_dir) as kb:
        kept = kb.store.counts()["documents"]
        assert 0 < kept < 40  # what was committed before the disk filled
        report = kb.ingest([docs])
        assert (report.ingested, report.unchanged, len(report.failed)) == (40 - kept, kept, 0)
        assert kb.check(repair=False).ok


@pytest.mark.slow
def test_the_server_answers_507_with_what_to_do_when_its_disk_is_full(small_disk: Path, hashed: None) -> None:
    from fastapi.testclient import TestClient

    from ragkit.server import create_app

    with ragkit.open(small_disk / "kb") as kb:
        kb.ingest([Path(__file__).resolve().parent.parent / "examples" / "sample_corpus" / "on-call.txt"])
        with TestClient(create_app(kb, require_keys=False, warm=False)) as c:
            big = ("report.txt", b"quarterly numbers " * 200_000, "text/plain")  # 3.6 MB onto a 1 MB disk
            response = c.post("/v1/documents", files={"files": big})
            assert response.status_code == 507
            assert response.json()["error"].startswith("no space left on the disk: free some space")
            assert c.post("/v1/search", json={"query": "who is on call"}).status_code == 200  # reads still work


@pytest.mark.slow
def test_a_kb_on_read_only_media_is_searched_and_refuses_writes_in_one_line(small_disk: Path, hashed: None) -> None:
    # it could not be opened at all: SQLite's WAL mode creates files beside the database
    subprocess.run(["mount", "-o", "remount,size=16M", str(small_disk)], check=True)
    kb_dir = small_disk / "kb"
    sample = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"
    assert run("ingest", sample / "on-call.txt", sample / "security", "--kb", kb_dir).exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    found = run("search", "who is on call", "--kb", kb_dir, "-k", "1")
    assert found.exit_code == 0 and "on-call.txt" in found.stdout
    assert run("check", "--kb", kb_dir, "--no-repair").exit_code == 0  # keyword index compared read-only
    for args in (["ingest", sample / "data-retention.html"], ["delete", "*on-call*"], ["reindex"]):
        refused = run(*args, "--kb", kb_dir)
        assert refused.exit_code == 1 and "Traceback" not in refused.output, refused.output
        assert refused.output.strip() == (
            f"Error: the disk holding {kb_dir} is read-only: search and ask work, but ingest, delete, reindex, "
            "repairs and eval runs write; copy the knowledge base to a writable disk for those"
        )
    questions = small_disk.parent / "q.jsonl"
    questions.write_text('{"question": "who is on call?"}\n', encoding="utf-8")
    evaluated = run("eval", "run", questions, "--kb", kb_dir, "--retrieval-only")
    assert evaluated.exit_code == 1 and "is read-only: search and ask work" in evaluated.output
    with ragkit.open(kb_dir) as kb:
        assert kb.search("rotate keys", k=1)[0].chunk.uri.endswith("key-rotation.md")
        with pytest.raises(StorageError, match="read-only"):
            kb.ingest([sample / "data-retention.html"])


def test_unmerged_writes_on_read_only_media_are_named(tmp_path: Path, hashed: None) -> None:
    from ragkit.indexes import engine

    db = tmp_path / "ragkit.db"
    sqlite3.connect(db).close()
    (tmp_path / "ragkit.db-wal").write_bytes(b"journal")  # copied mid-write
    with pytest.raises(KnowledgeBaseError, match="unmerged writes in ragkit.db-wal"):
        engine._read_only_sqlite(db)
