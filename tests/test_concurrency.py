"""The store's readers-writer lock, and cancelling generation from the streaming callback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import ragkit
from ragkit.errors import Cancelled
from ragkit.lazy import ReadWriteLock


def test_readers_share_and_a_writer_waits_for_them_and_goes_first() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    reading = threading.Event()
    release = threading.Event()

    def reader(name: str) -> None:
        with lock.read():
            events.append(f"{name}+")
            reading.set()
            release.wait(5)
            events.append(f"{name}-")

    def writer() -> None:
        with lock.write():
            events.append("w")

    first = threading.Thread(target=reader, args=("r1",))
    first.start()
    reading.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.05)  # the writer is waiting for r1 now
    late = threading.Thread(target=reader, args=("r2",))
    late.start()
    time.sleep(0.05)
    assert events == ["r1+"]  # the writer waits for r1; r2 waits behind the writer
    release.set()
    for t in (first, w, late):
        t.join(5)
    assert events[:3] == ["r1+", "r1-", "w"] and events[3] == "r2+"


@pytest.mark.usefixtures("hashed")
def test_an_on_text_callback_that_raises_cancelled_stops_the_answer(tmp_path: Path) -> None:
    from ragkit.testing import ScriptedGenerator

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Production API keys must be rotated every 90 days by the security team.")
    with ragkit.open(tmp_path / "kb", **{"generator.min_relevance": 0.0}) as kb:
        kb.ingest([docs])
        kb._generator.set(ScriptedGenerator(["Keys are rotated every 90 days [1]. " * 5]))
        pieces: list[str] = []

        def on_text(piece: str) -> None:
            pieces.append(piece)
            if len(pieces) == 3:
                raise Cancelled("client went away")

        with pytest.raises(Cancelled):
            kb.ask("How often are production API keys rotated?", on_text=on_text)
        assert len(pieces) == 3
