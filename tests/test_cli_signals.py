"""SIGTERM stops a command as Ctrl-C does, and a long run outside a terminal prints plain progress lines."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import run

import ragkit
from ragkit import build
from ragkit.cli.app import stop_on_sigterm
from ragkit.cli.common import EXIT_INTERRUPTED, plain_progress
from ragkit.testing import HashEmbedder


class TerminatingEmbedder(HashEmbedder):
    """Sends SIGTERM to the main thread during its first call, as `timeout` or `docker stop` would."""

    def __init__(self) -> None:
        super().__init__(64, name="hash")
        self.seen = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += 1
        if self.seen == 1:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # type: ignore[arg-type]
            time.sleep(0.2)
        return super().embed(texts)


@pytest.fixture
def sigterm_handled() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    yield
    signal.signal(signal.SIGTERM, before)


def test_sigterm_during_ingest_keeps_the_files_in_flight_and_says_how_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_handled: None
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\nThe vault rotates key number {i} every {i + 2} days.\n")
    monkeypatch.setattr(build, "embedder_from", lambda cfg, manifest, root: TerminatingEmbedder())
    result = run("ingest", docs, "--kb", tmp_path / "kb")
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "Interrupted after 5 files were saved; run the same command to finish." in result.output
    assert "Stopping: saving the files already embedded" in result.output  # said at once, before the wait
    assert "Traceback" not in result.output
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM ends the process at once
    with ragkit.open(tmp_path / "kb", create=False) as kb:
        assert kb.store.counts()["documents"] == 5
        assert sorted(kb.index.ids().tolist()) == sorted(kb.store.chunk_ids().tolist())


def test_outside_a_terminal_a_long_run_prints_a_plain_line_now_and_then(capsys: pytest.CaptureFixture[str]) -> None:
    report = plain_progress("Ingesting (files)", every_s=0)
    report(3, 1030)
    assert capsys.readouterr().err == "Ingesting (files): 3 of 1,030 (0 min 0 s)\n"
    plain_progress("Ingesting (files)", quiet=True, every_s=0)(3, 1030)  # --json prints nothing else
    slow = plain_progress("Evaluating (questions)")  # every 30 s: not yet
    slow(1, None)
    assert capsys.readouterr().err == ""
