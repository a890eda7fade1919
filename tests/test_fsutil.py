"""ragkit.fsutil: a rewrite leaves the old content or the new one, never a half file or a stray temp file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ragkit.fsutil import atomic_dir, atomic_write, atomic_write_lines, atomic_write_path


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    atomic_write(f, "old")
    atomic_write(f, "névé")
    assert f.read_text(encoding="utf-8") == "névé" and [p.name for p in tmp_path.iterdir()] == ["m.json"]
    atomic_write_lines(f, ["a", "b"])
    assert f.read_text(encoding="utf-8") == "a\nb\n"


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    f = tmp_path / "index.faiss"
    f.write_bytes(b"old")

    def half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_path(f, half_then_crash)
    assert f.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["index.faiss"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "models" / "tiny"
    target.mkdir(parents=True)
    (target / "old.bin").write_bytes(b"1")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "adapter.bin").write_bytes(b"half")
        raise KeyboardInterrupt
    assert [p.name for p in target.iterdir()] == ["old.bin"] and not list((tmp_path / "models").glob("*.tmp"))
    with atomic_dir(target) as tmp:
        (tmp / "adapter.bin").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["adapter.bin"]


def test_two_writers_of_one_file_at_once_both_succeed(tmp_path: Path) -> None:
    """Two `ragkit` commands started together on a fresh machine assemble the same bundled model: each writer has
    its own temp file, so neither rename finds the other's gone."""
    import threading

    target, both_written, errors = tmp_path / "model.gguf", threading.Barrier(2, timeout=10), []

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"weights")
        both_written.wait()  # both temp files exist before either is renamed into place

    def writer() -> None:
        try:
            atomic_write_path(target, write)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and target.read_bytes() == b"weights" and not list(tmp_path.glob("*.tmp"))


def test_a_dead_writers_stale_temp_is_swept_by_the_next_writer(tmp_path: Path) -> None:
    """kill -9 in the middle of assembling a bundled model left a 1 GB "NAME.<pid>-<id>.tmp" for good; the next
    writer of the same file removes it once its writer is gone and it sat untouched (a live writer on another
    machine sharing the folder keeps touching its own)."""
    import os
    import subprocess
    import sys

    from ragkit.fsutil import STALE_TEMP_SECONDS

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid no process has now
    target = tmp_path / "model.gguf"
    old = tmp_path / f"model.gguf.{child.pid}-0badc0de.tmp"
    fresh = tmp_path / f"model.gguf.{child.pid}-0000beef.tmp"
    live = tmp_path / f"model.gguf.{os.getpid()}-0000cafe.tmp"
    other = tmp_path / f"other.bin.{child.pid}-0badc0de.tmp"
    long_ago = time.time() - STALE_TEMP_SECONDS - 60
    for tmp in (old, fresh, live, other):
        tmp.write_bytes(b"half a model")
    for tmp in (old, live, other):
        os.utime(tmp, (long_ago, long_ago))
    atomic_write(target, b"weights")
    assert target.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == sorted(p.name for p in (fresh, live, other))
