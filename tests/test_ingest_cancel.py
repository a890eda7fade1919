"""Ingest's cancel hook: a set `cancel` event stops the run between files and between embedding batches, keeps
what was committed, drops the rest, raises Cancelled with the partial report, and leaves a KB that `check` finds
clean, that reopens, and whose next run ingests only the rest. Embeddings are HashEmbedder's (fast tier)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import run
from test_ingest import consistent, write_topics

import ragkit
from ragkit.errors import Cancelled
from ragkit.ingest_report import IngestCancelled

pytestmark = pytest.mark.usefixtures("hashed")


def cancel_after(files: int) -> tuple[threading.Event, object]:
    """(event, progress callback that sets it once `files` files are done): the hook fires mid-run."""
    cancel = threading.Event()

    def progress(done: int, total: int, current: str) -> None:
        if done >= files:
            cancel.set()

    return cancel, progress


def test_a_cancelled_ingest_keeps_what_it_committed_and_the_rerun_finishes(tmp_path: Path) -> None:
    docs, root = tmp_path / "docs", tmp_path / "kb"
    write_topics(docs, 8)
    cancel, progress = cancel_after(3)
    with ragkit.open(root, **{"ingest.batch_chunks": 1}) as kb:  # a batch per file: the check between files
        with pytest.raises(Cancelled, match="run it again") as stopped:
            kb.ingest([docs], progress=progress, cancel=cancel)  # type: ignore[arg-type]
        assert isinstance(stopped.value, IngestCancelled)
        report = stopped.value.report
        # the file already embedded when the hook fired (the embedder works one group ahead) is written too
        assert report.interrupted and report.ingested in (3, 4) and not report.failed
        assert kb.store.counts()["documents"] == report.ingested
        assert kb.check(repair=False).ok
    result = run("check", "--kb", root, "--no-repair", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    assert consistent(root) == (report.ingested, report.chunks_added)  # reopens, SQL and FAISS agree
    with ragkit.open(root, create=False) as kb:
        again = kb.ingest([docs])
        assert again.unchanged == report.ingested and again.ingested == 8 - report.ingested and not again.interrupted


def test_cancel_stops_between_embedding_groups(tmp_path: Path) -> None:
    docs, root = tmp_path / "docs", tmp_path / "kb"
    write_topics(docs, 60)
    cancel, progress = cancel_after(1)  # set while the first commit group is being written
    with ragkit.open(root, **{"ingest.batch_chunks": 32}) as kb:  # embedding calls of ~32 chunks (whole files)
        with pytest.raises(IngestCancelled) as stopped:
            kb.ingest([docs], progress=progress, cancel=cancel)  # type: ignore[arg-type]
        report = stopped.value.report
        # the group in flight is finished (whole files, ~32 chunks), the groups after it are never embedded
        assert 1 < report.ingested < 60 and kb.store.counts()["documents"] == report.ingested
        assert kb.check(repair=False).ok
    assert consistent(root)[0] == report.ingested


@pytest.mark.parametrize("new_files", [2, 0])  # with files to embed (stops at the first), and with none
def test_a_cancelled_run_writes_nothing_more_and_prunes_nothing(tmp_path: Path, new_files: int) -> None:
    docs, root = tmp_path / "docs", tmp_path / "kb"
    paths = write_topics(docs, 4)
    with ragkit.open(root) as kb:
        kb.ingest([docs])
        paths[0].unlink()  # a prune would delete it
        write_topics(docs, new_files, start=10)
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(IngestCancelled) as stopped:
            kb.ingest([docs], prune=True, cancel=cancel)
        assert stopped.value.report.ingested == 0 and stopped.value.report.deleted == 0
        assert kb.store.counts()["documents"] == 4 and kb.check(repair=False).ok
