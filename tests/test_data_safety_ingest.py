"""Ingest never silently changes or loses data (issue 18, NEWCOMER.md findings 7, 8, 9, 12, 13, 16, 18, 20, 28).

The KBs here embed with the hash embedder: no model is loaded, so this file is in the fast tier.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import run  # the CLI in-process, fixed width; the `hashed` fixture is there too

import ragkit
from ragkit import build
from ragkit.errors import SourceError, UsageError
from ragkit.ingest import check_sources
from ragkit.testing import HashEmbedder


def write_files(folder: Path, n: int, words: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"f{i:03d}.txt"
        body = " ".join(f"w{i}x{j}" for j in range(words))
        path.write_text(f"File {i} about topic{i}.\n\n{body}.\n", encoding="utf-8")
        paths.append(path)
    return paths


class SpyEmbedder(HashEmbedder):
    """Records, for each embed call, how many files the progress callback had reported done; can press Ctrl-C
    (SIGINT to the main thread, as a terminal does) during its first call."""

    def __init__(self, ctrl_c: bool = False) -> None:
        super().__init__(64, name="hash")
        self.ctrl_c = ctrl_c
        self.done_at_call: list[int] = []
        self.done = 0

    def progress(self, done: int, total: int, current: str) -> None:
        self.done = done

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.done_at_call.append(self.done)
        if self.ctrl_c and len(self.done_at_call) == 1:
            # ingest embeds in a thread of its own; the signal reaches the main thread, waiting for these vectors
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
            time.sleep(0.2)
        return super().embed(texts)


# -- 16: Ctrl-C and progress -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Python's own Ctrl-C handler, as in a terminal: a shell starts a background job (`pytest ... &`) with SIGINT
    ignored, and Python then leaves it ignored, so the Ctrl-C these tests press would do nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_commits_the_files_being_embedded(tmp_path: Path, hashed: None) -> None:
    write_files(tmp_path / "docs", 5)
    with ragkit.open(tmp_path / "kb") as kb:
        spy = SpyEmbedder(ctrl_c=True)  # Ctrl-C while the first (and only) group is being embedded
        kb.embedder = spy
        report = kb.ingest([tmp_path / "docs"], progress=spy.progress)
        assert report.interrupted
        assert report.ingested == 5 and kb.store.counts()["documents"] == 5  # the batch in flight was kept
        assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())
        assert kb.ingest([tmp_path / "docs"]).unchanged == 5


def test_ctrl_c_drops_a_large_file_mid_embedding_instead_of_waiting_for_all_of_it(tmp_path: Path, hashed: None) -> None:
    # a file's chunks go together, so one large file is one large group: Node's all.html took two minutes to stop
    write_files(tmp_path / "docs", 1, words=20000)
    with ragkit.open(tmp_path / "kb", **{"ingest.batch_chunks": 32}) as kb:
        spy = SpyEmbedder(ctrl_c=True)  # Ctrl-C during the first call of 32 chunks
        kb.embedder = spy
        report = kb.ingest([tmp_path / "docs"], progress=spy.progress)
        assert report.interrupted and report.ingested == 0 and kb.store.counts()["documents"] == 0
        assert len(spy.done_at_call) == 1  # the rest of the file was not embedded
        assert kb.index.ids().tolist() == kb.store.chunk_ids().tolist() == []
        kb.embedder = SpyEmbedder()
        again = kb.ingest([tmp_path / "docs"])
        assert again.ingested == 1 and again.chunks_added > 64  # it was more than two calls' worth


def test_a_second_ctrl_c_stops_at_once_and_keeps_what_was_committed(tmp_path: Path, hashed: None) -> None:
    write_files(tmp_path / "docs", 5)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.embedder = SpyEmbedder(ctrl_c=True)

        def second_ctrl_c(items: object) -> list[list[int]]:  # pressed again while the group in flight is written
            raise KeyboardInterrupt

        kb.store.write_documents = second_ctrl_c  # type: ignore[method-assign, assignment]
        report = kb.ingest([tmp_path / "docs"])
        del kb.store.write_documents
        assert report.interrupted and report.ingested == 0 and kb.store.counts()["documents"] == 0
        assert kb.ingest([tmp_path / "docs"]).ingested == 5


def test_progress_moves_per_group_of_files_not_once_at_the_end(tmp_path: Path, hashed: None) -> None:
    write_files(tmp_path / "docs", 40, words=400)  # ~3 chunks each, embedded and committed in groups of ~32
    with ragkit.open(tmp_path / "kb", **{"ingest.batch_chunks": 32}) as kb:
        spy = SpyEmbedder()
        kb.embedder = spy
        report = kb.ingest([tmp_path / "docs"], progress=spy.progress)
    assert report.ingested == 40
    assert len(spy.done_at_call) >= 3 and spy.done_at_call[-1] > 0  # files were saved before the last embed call


# -- 8, 9: --meta ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["size", "mtime", "MTIME"])
def test_reserved_meta_keys_are_refused(tmp_path: Path, hashed: None, key: str) -> None:
    write_files(tmp_path / "docs", 2)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([tmp_path / "docs"])
        with pytest.raises(UsageError, match="reserved"):
            kb.ingest([tmp_path / "docs" / "f000.txt"], meta={key: "5"})
        sizes = {s.size for s in kb.store.document_states().values()}
    assert 5 not in sizes
    result = run("ingest", tmp_path / "docs", "--kb", tmp_path / "kb", "--meta", f"{key}=7")
    assert result.exit_code == 2 and "reserved" in result.output


def test_meta_is_applied_to_unchanged_documents_without_reembedding(tmp_path: Path, hashed: None) -> None:
    files = write_files(tmp_path / "docs", 3)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([tmp_path / "docs"])
        spy = SpyEmbedder()
        kb.embedder = spy
        os.utime(files[0], (1, 1))  # touched: hashed again, same bytes
        report = kb.ingest([tmp_path / "docs"], meta={"tenant": "acme"})
        assert (report.ingested, report.unchanged, report.restamped) == (0, 3, 3)
        assert spy.done_at_call == []  # nothing embedded
        assert kb.store.count("tenant=acme") == kb.store.counts()["chunks"]
        again = kb.ingest([tmp_path / "docs"], meta={"tenant": "acme"})
        assert again.restamped == 0  # already stamped: nothing changed
    result = run("ingest", tmp_path / "docs", "--kb", tmp_path / "kb", "--meta", "team=ops")
    assert result.exit_code == 0 and "--meta applied to 3 unchanged documents" in result.output


# -- 12, 13: unreadable folders and links ------------------------------------------------------------------------


def test_an_unreadable_folder_is_reported_not_skipped_silently(
    tmp_path: Path, hashed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    write_files(docs, 1)
    write_files(docs / "lockeddir", 1)
    real_scandir = os.scandir

    def scandir(path: object = "."):  # type: ignore[no-untyped-def]
        if str(path).endswith("lockeddir"):  # as without read permission (the tests may run as root)
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
    assert report.ingested == 1 and report.partial
    assert [(Path(f.uri).name, f.reason) for f in report.failed] == [
        ("lockeddir", "cannot read folder (Permission denied)")
    ]


def test_broken_links_loops_and_folder_links_are_reported(tmp_path: Path, hashed: None) -> None:
    docs = tmp_path / "links"
    write_files(docs, 1)
    (docs / "alias.txt").symlink_to(docs / "f000.txt")  # a link to a file: followed, ingested once
    (docs / "dangling.txt").symlink_to(docs / "gone.txt")
    (docs / "loopA.txt").symlink_to(docs / "loopB.txt")
    (docs / "loopB.txt").symlink_to(docs / "loopA.txt")
    (docs / "sub").mkdir()
    (docs / "sub" / "up").symlink_to("..")
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
    assert report.ingested == 1
    reasons = {Path(f.uri).name: f.reason for f in report.failed}
    assert "broken symbolic link" in reasons["dangling.txt"]
    assert reasons["loopA.txt"] == reasons["loopB.txt"] == "symlink loop"
    assert "not followed" in reasons["up"]
    with pytest.raises(SourceError, match="symlink loop"):
        check_sources([docs / "loopA.txt"])


# -- 7, 18: encodings and JSON records ---------------------------------------------------------------------------


def test_a_latin1_text_file_is_read_as_western_european_with_a_note(tmp_path: Path, hashed: None) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin1.txt").write_bytes("Café crème brûlée, the naïve garçon ordered.".encode("latin-1"))
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
        text = kb.store.chunks(kb.store.chunk_ids().tolist())
    assert "Café crème brûlée, the naïve garçon" in next(iter(text.values())).text
    assert [n.reason for n in report.notes] == ["not UTF-8; read as Windows-1252 (Western European)"]
    result = run("ingest", docs, "--kb", tmp_path / "kb2")
    assert result.exit_code == 0 and "Windows-1252" in result.output


def test_a_bad_jsonl_line_is_named_by_its_number_and_records_without_text_are_counted(
    tmp_path: Path, hashed: None
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [json.dumps({"text": f"animal {i}"}) for i in range(3)]
    (docs / "animals.jsonl").write_text("\n".join([*lines, "not json at all"]) + "\n", encoding="utf-8")
    (docs / "sea.json").write_text(json.dumps([{"text": "whales sing"}, {"body": "no text here"}]), "utf-8")
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([docs])
    assert [(Path(f.uri).name, "line 4" in f.reason) for f in report.failed] == [("animals.jsonl", True)]
    assert [(Path(n.uri).name, n.reason) for n in report.notes] == [
        ("sea.json", "1 of 2 records have no text field 'text' and were left out")
    ]


# -- 20, 28: sources checked before anything is created ----------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["does-not-exist.txt", "{tmp}/empty", "sql:sqlite:///{tmp}/none.db#table=t&id=id&text=b"]
)
def test_a_bad_source_leaves_no_new_kb_behind(tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: object) -> None:
        raise AssertionError("the embedder was loaded")

    monkeypatch.setattr(build, "embedder_from", no_model)
    (tmp_path / "empty").mkdir()
    result = run("ingest", source.format(tmp=tmp_path), "--kb", tmp_path / "newkb")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "newkb").exists()
    assert not (tmp_path / "none.db").exists()


def test_a_missing_sqlite_source_is_named_and_not_created(tmp_path: Path, hashed: None) -> None:
    write_files(tmp_path / "docs", 1)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([tmp_path / "docs"])
        with pytest.raises(SourceError, match="database file .*none.db not found"):
            kb.ingest([f"sql:sqlite:///{tmp_path}/none.db#table=t&id=id&text=body"])
    assert not (tmp_path / "none.db").exists()
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table items (id integer primary key, body text)")
    with ragkit.open(tmp_path / "kb") as kb, pytest.raises(SourceError, match="no table t in sqlite:///"):
        kb.ingest([f"sql:sqlite:///{db}#table=t&id=id&text=body"])
