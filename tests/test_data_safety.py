"""No command destroys, corrupts or silently changes data by accident (issue 18, NEWCOMER.md findings 1-4, 10, 14).

The KBs here embed with the hash embedder: no model is loaded, so this file is in the fast tier.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run  # the CLI in-process, fixed width; the `hashed` fixture is there too

import ragkit
from ragkit.errors import ConfigError, KnowledgeBaseError, UsageError
from ragkit.indexes.faiss_index import FaissIndex


def make_docs(folder: Path, n: int = 3) -> Path:
    """b1/alpha.md, b1/beta.md, notes.txt, and n - 3 more one-line text files under more/."""
    (folder / "b1").mkdir(parents=True)
    (folder / "b1" / "alpha.md").write_text("# Alpha\n\nThe hotel costs ninety euros per night.\n", encoding="utf-8")
    (folder / "b1" / "beta.md").write_text("# Beta\n\nKeys are rotated every ninety days.\n", encoding="utf-8")
    (folder / "notes.txt").write_text("The on-call engineer answers a page within five minutes.\n", encoding="utf-8")
    if n > 3:
        (folder / "more").mkdir()
        for i in range(n - 3):
            (folder / "more" / f"m{i:02d}.txt").write_text(f"Topic {i}: word{i} appears here once.\n", "utf-8")
    return folder


@pytest.fixture
def kb(tmp_path: Path, hashed: None) -> Path:
    root = tmp_path / "kb"
    with ragkit.open(root) as base:
        report = base.ingest([make_docs(tmp_path / "docs")])
    assert report.ingested == 3 and not report.failed
    return root


def documents(root: Path) -> list[str]:
    with ragkit.open(root, create=False) as base:
        return sorted(Path(u).name for u in base.store.document_states())


# -- 1, 10: delete ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["", "   "])
def test_an_empty_delete_target_is_a_usage_error_and_deletes_nothing(
    kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.chdir(tmp_path / "docs")  # `delete "$UNSET"` from the inputs folder used to delete all of it
    result = run("delete", target, "--kb", kb)
    assert result.exit_code == 2, result.output
    assert "empty" in result.output and "Traceback" not in result.output
    assert documents(kb) == ["alpha.md", "beta.md", "notes.txt"]
    with ragkit.open(kb, create=False) as base, pytest.raises(UsageError):
        base.delete([target])


def test_delete_reports_targets_that_match_nothing_and_fails_when_nothing_went(kb: Path) -> None:
    result = run("delete", "nothing-here.txt", "--kb", kb)
    assert result.exit_code == 1
    assert "nothing-here.txt: no stored document matches" in result.output
    assert "0 documents deleted" in result.output
    assert documents(kb) == ["alpha.md", "beta.md", "notes.txt"]


@pytest.mark.parametrize(
    ("target", "gone"),
    [
        ("b1/*", ["alpha.md", "beta.md"]),  # a relative glob matches a uri's tail, as -f source=b1/* does
        ("*.MD", ["alpha.md", "beta.md"]),  # case-insensitive, as -f source=*.MD
        ("alpha.md", ["alpha.md"]),  # a bare name matches the file of that name anywhere
        ("b1/", ["alpha.md", "beta.md"]),  # a trailing / means everything under it
    ],
)
def test_delete_globs_follow_the_source_filter_rules(kb: Path, target: str, gone: list[str]) -> None:
    with ragkit.open(kb, create=False) as base:
        assert sorted(Path(h.chunk.uri).name for h in base.search("hotel keys", k=10, filters=f"source={target}"))
    result = run("delete", target, "--kb", kb, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deleted"] == len(gone) and sorted(Path(u).name for u in data["uris"]) == gone
    assert data["unmatched"] == [] and data["dry_run"] is False
    assert sorted(set(documents(kb)) | set(gone)) == ["alpha.md", "beta.md", "notes.txt"]
    assert not set(documents(kb)) & set(gone)


def test_delete_lists_the_uris_and_dry_run_changes_nothing(kb: Path) -> None:
    dry = run("delete", "b1/*", "missing.pdf", "--kb", kb, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output and "alpha.md" in dry.output and "beta.md" in dry.output
    assert "missing.pdf: no stored document matches" in dry.output
    assert documents(kb) == ["alpha.md", "beta.md", "notes.txt"]
    real = run("delete", "b1/alpha.md", "--kb", kb)
    assert real.exit_code == 0 and "deleted" in real.output and "alpha.md" in real.output
    assert "1 document deleted" in real.output
    assert documents(kb) == ["beta.md", "notes.txt"]
    with ragkit.open(kb, create=False) as base:
        assert sorted(base.index.ids().tolist()) == sorted(base.store.chunk_ids().tolist())


# -- 2: reindex ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["Flat,IDMap", "IDMap2,Flat", "idmap,HNSW32"])
def test_reindex_refuses_idmap_specs_and_keeps_the_config(kb: Path, spec: str) -> None:
    toml = (kb / "ragkit.toml").read_text()
    faiss_bytes = (kb / "index.faiss").read_bytes()
    result = run("reindex", "--kb", kb, "--spec", spec)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "IDMap" in lines[0], result.output
    assert (kb / "ragkit.toml").read_text() == toml
    assert (kb / "index.faiss").read_bytes() == faiss_bytes
    assert run("check", "--kb", kb).exit_code == 0


def test_a_faiss_error_during_the_rebuild_is_a_config_error_and_changes_nothing(
    kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = (kb / "ragkit.toml").read_text()
    faiss_bytes = (kb / "index.faiss").read_bytes()

    def broken_add(self: FaissIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise RuntimeError("Error in virtual void faiss::Index::add at Index.cpp:42: add does not make sense")

    monkeypatch.setattr(FaissIndex, "add", broken_add)
    with ragkit.open(kb, create=False) as base, pytest.raises(ConfigError, match="add does not make sense"):
        base.reindex("HNSW32")
    assert (kb / "ragkit.toml").read_text() == toml
    assert (kb / "index.faiss").read_bytes() == faiss_bytes


# -- 3: a corrupt or truncated index.faiss ---------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_a_corrupt_index_file_is_rebuilt_from_sql_like_a_missing_one(kb: Path, damage: str) -> None:
    path = kb / "index.faiss"
    data = path.read_bytes()
    path.write_bytes(np.random.default_rng(0).bytes(1000) if damage == "random" else data[: len(data) // 2])

    with ragkit.open(kb, create=False) as base:  # the library warns in the report, never prints
        found = base.check(repair=False)
        assert not found.ok and found.missing_from_faiss == found.sql_chunks > 0
        assert found.warnings and "index.faiss" in found.warnings[0]
        hits = base.search("hotel", k=1, mode="dense")  # search rebuilds it in memory, with a warning
        assert Path(hits[0].chunk.uri).name == "alpha.md"
        assert base.store.warnings and "rebuilt from the vectors in SQL" in base.store.warnings[0]

    no_repair = run("check", "--kb", kb, "--no-repair")
    assert no_repair.exit_code == 1 and "Traceback" not in no_repair.output
    assert "index.faiss is unreadable" in no_repair.output
    repaired = run("check", "--kb", kb)
    assert repaired.exit_code == 0, repaired.output
    assert "repaired" in repaired.output and "Traceback" not in repaired.output
    again = run("check", "--kb", kb, "--no-repair")
    assert again.exit_code == 0 and "consistent" in again.output and "unreadable" not in again.output


# -- 4: HNSW tombstones ----------------------------------------------------------------------------------------


def test_hnsw_tombstones_are_no_inconsistency_and_repaired_means_something_changed(
    tmp_path: Path, hashed: None
) -> None:
    root = tmp_path / "kb"
    with ragkit.open(root) as base:
        base.ingest([make_docs(tmp_path / "docs", n=30)])
    assert run("reindex", "--kb", root, "--spec", "HNSW32").exit_code == 0
    assert run("delete", "b1/beta.md", "--kb", root).exit_code == 0  # 1 of 30 vectors: kept as a tombstone

    no_repair = run("check", "--kb", root, "--no-repair", "--json")
    assert no_repair.exit_code == 0, no_repair.output
    report = json.loads(no_repair.stdout)
    assert report["tombstones"] == 1 and report["extra_in_faiss"] == 0 and report["ok"] is True
    assert report["faiss_vectors"] == report["sql_chunks"] == 29
    for _ in range(2):
        plain = run("check", "--kb", root)
        assert plain.exit_code == 0 and "consistent" in plain.output and "repaired" not in plain.output
        assert "tombstones: 1" in plain.output


def test_a_real_inconsistency_is_repaired_and_the_next_check_finds_nothing(kb: Path) -> None:
    with ragkit.open(kb, create=False) as base:
        index = base.index
        index.remove(base.store.chunk_ids()[:2])
        index.save(kb / "index.faiss")
    fixed = run("check", "--kb", kb, "--json")
    assert fixed.exit_code == 0
    report = json.loads(fixed.stdout)
    assert report["repaired"] is True and report["missing_from_faiss"] == 2 and report["ok"] is True
    again = run("check", "--kb", kb)
    assert again.exit_code == 0 and "consistent" in again.output and "repaired" not in again.output


def test_a_repair_that_does_not_fix_the_index_is_not_reported_as_repaired(
    kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (kb / "index.faiss").unlink()
    monkeypatch.setattr(FaissIndex, "save", lambda self, path: None)  # a repair that never reaches the disk
    with ragkit.open(kb, create=False) as base:
        report = base.check()
    assert report.repaired is False and report.ok is False and "run ragkit reindex" in report.warnings[-1]


# -- 14: a vanished ragkit.db ----------------------------------------------------------------------------------


def test_a_vanished_database_is_refused_and_not_recreated_empty(kb: Path) -> None:
    for name in ("ragkit.db", "ragkit.db-wal", "ragkit.db-shm"):
        (kb / name).unlink(missing_ok=True)
    for args in (("info",), ("check", "--no-repair"), ("search", "hotel")):
        result = run(*args, "--kb", kb)
        assert result.exit_code == 1, result.output
        assert "ragkit.db is missing" in result.output and "3 documents" in result.output
        assert not (kb / "ragkit.db").exists()
    with pytest.raises(KnowledgeBaseError, match="restore ragkit.db"):
        ragkit.open(kb)
    assert not (kb / "ragkit.db").exists()


def test_an_empty_kb_without_its_database_still_opens(tmp_path: Path, hashed: None) -> None:
    root = tmp_path / "kb"
    ragkit.open(root).close()
    (root / "ragkit.db").unlink()
    with ragkit.open(root, create=False) as base:
        assert base.store.counts()["documents"] == 0


def test_copying_a_kb_keeps_it_whole(kb: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(kb, copy)
    assert run("check", "--kb", copy, "--no-repair").exit_code == 0


# a process that starts creating a KB at ROOT and stops inside the creation, while the embedder loads
_CREATOR = """
import os, sys, time
from ragkit import build, open as open_kb
def stop(*args):
    if sys.argv[2] == "die":
        os._exit(1)  # killed: no cleanup, no exception
    print("creating", flush=True)
    time.sleep(120)
build.embedder_from = stop
open_kb(sys.argv[1])
"""


def test_a_creation_killed_halfway_is_redone_by_the_next_open(tmp_path: Path, hashed: None) -> None:
    import subprocess
    import sys

    root = tmp_path / "kb"
    proc = subprocess.run([sys.executable, "-c", _CREATOR, str(root), "die"], capture_output=True, text=True)
    assert proc.returncode == 1 and (root / "ragkit.db").exists() and not (root / "manifest.json").exists()
    with pytest.raises(KnowledgeBaseError, match="its creation was interrupted"):  # it said "not a ragkit KB"
        ragkit.open(root, create=False)
    with ragkit.open(root) as kb:
        assert kb.ingest([make_docs(tmp_path / "docs")]).ingested == 3
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [".lock"]
    result = run("info", "--kb", root, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["documents"] == 3


def test_a_kb_being_created_is_not_taken_for_a_foreign_folder(tmp_path: Path, hashed: None) -> None:
    import subprocess
    import sys

    root = tmp_path / "kb"
    proc = subprocess.Popen([sys.executable, "-c", _CREATOR, str(root), "wait"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "creating"
        with pytest.raises(KnowledgeBaseError, match=f"is locked by PID {proc.pid}"):
            ragkit.open(root)
    finally:
        proc.kill()
        proc.wait()
    with ragkit.open(root) as kb:  # the creator died: its leftovers are redone
        assert kb.ingest([make_docs(tmp_path / "docs")]).ingested == 3


def test_a_folder_with_other_files_is_never_cleared(tmp_path: Path, hashed: None) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    (root / ".creating").write_text("")
    (root / "thesis.tex").write_text("my work")
    with pytest.raises(KnowledgeBaseError, match="not a ragkit knowledge base"):
        ragkit.open(root)
    assert (root / "thesis.tex").read_text() == "my work"


def test_text_from_documents_reaches_the_terminal_without_escape_sequences(kb: Path) -> None:
    import sqlite3

    with sqlite3.connect(kb / "ragkit.db") as db:  # as an older parser stored it, or a SQL row holds it
        db.execute("UPDATE chunks SET text = text || ' \x1b]0;owned\x07\x1b[8m' WHERE text LIKE '%hotel%'")
    result = run("search", "hotel euros per night", "--kb", kb, "-k", "1")
    assert result.exit_code == 0 and "hotel" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    as_json = run("search", "hotel euros per night", "--kb", kb, "-k", "1", "--json")
    assert "\\u001b]0;owned" in as_json.stdout  # --json keeps the stored text, escaped


def test_a_kb_inside_the_folder_it_ingests_never_ingests_itself(tmp_path: Path, hashed: None) -> None:
    # `ragkit ingest . --kb ./kb`: its manifest.json failed as a document, and eval reports became chunks
    docs = make_docs(tmp_path / "docs")
    root = docs / "kb"
    with ragkit.open(root) as kb:
        assert kb.ingest([docs]).ingested == 3
    report = root / "runs" / "20260101-000000-q" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<h1>Evaluation report</h1><p>The hotel costs ninety euros per night.</p>", encoding="utf-8")
    with ragkit.open(root) as kb:
        again = kb.ingest([docs], prune=True)
        assert (again.ingested, again.unchanged, again.failed, again.deleted) == (0, 3, (), 0)
        assert all(not d.uri.startswith(str(root)) for d in kb.documents.list())
        upload = root / "uploads" / "bob" / "note.txt"  # what ragkit serve keeps there is a document
        upload.parent.mkdir(parents=True)
        upload.write_text("Bob's note: the gym opens at six.", encoding="utf-8")
        assert kb.ingest([docs]).ingested == 1 and kb.search("gym", k=1)[0].chunk.uri == str(upload)
