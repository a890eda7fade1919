"""Atomic file and folder writes with one durability policy.

Policy: a file is written to a temp name beside its target, flushed and fsynced, then renamed over the
target, so a crash or Ctrl-C leaves either the old content or the new one, never half of either. Folders
(an adapter, a converted checkpoint) are filled under a temp name and renamed into place the same way.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import IO

from ragkit.errors import RagkitError, StorageError, driver_message

# how a full disk, or a read-only one, reads when it is not an OSError: SQLite, PostgreSQL ("could not extend
# file ... No space left on device"), FAISS's writer (a RuntimeError quoting strerror)
_DISK_FULL_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")
_READ_ONLY_WORDS = ("read-only file system", "attempt to write a readonly database")


def _said(exc: BaseException | None, errnos: tuple[int, ...], words: tuple[str, ...]) -> bool:
    """Whether exc, or an exception it was raised from or while handling, has one of these errnos or words."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in errnos:
            return True
        said = driver_message(exc).lower()
        if any(w in said for w in words):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full(exc: BaseException | None) -> bool:
    """Whether exc, or an exception it was raised from or while handling, says that the disk is full."""
    return _said(exc, (errno.ENOSPC, errno.EDQUOT), _DISK_FULL_WORDS)


def storage_problem(exc: BaseException, where: Path | None = None) -> str | None:
    """What to tell the user when exc says the disk is full or read-only (where: the KB it was writing); None
    for anything else."""
    place = f"the disk holding {where}" if where is not None else "the disk"
    if disk_full(exc):
        return f"no space left on {place}: free some space and run the same command again (what was committed is kept)"
    if _said(exc, (errno.EROFS,), _READ_ONLY_WORDS):
        return (
            f"{place} is read-only: search and ask work, but ingest, delete, reindex, repairs and eval runs write; "
            "copy the knowledge base to a writable disk for those"
        )
    return None


@contextmanager
def storage_errors(where: Path | None = None) -> Iterator[None]:
    """Raise a full or read-only disk met inside as one StorageError that says what to do (the chain is kept)."""
    try:
        yield
    except RagkitError:
        raise
    except BaseException as exc:
        message = storage_problem(exc, where)
        if message is None:
            raise
        raise StorageError(message) from exc


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry, not only the file's bytes."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems refuse to open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# a temp left by a writer that died unasked (kill -9, power lost, out of memory) is swept by the next writer of
# the same target once it has sat unchanged this long: a live writer on another machine sharing the folder (its
# pid means nothing here) keeps touching its temp
STALE_TEMP_SECONDS = 600.0


def _beside(path: Path) -> Path:
    """A temp name beside `path` no other writer uses: two processes assembling the same bundled model on a fresh
    machine (two `ragkit` commands started together) shared one "NAME.tmp", and the second rename found it gone.
    Temps of earlier writers of `path` that died (a 1 GB model assembly killed half way) are removed first."""
    _sweep_dead_writers(path)
    return path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sweep_dead_writers(path: Path) -> None:
    """Remove "NAME.<pid>-<hex>.tmp" beside `path` whose writer is gone and which no one touched for
    STALE_TEMP_SECONDS."""
    try:
        leftovers = list(path.parent.glob(f"{glob_escape(path.name)}.*-*.tmp"))
    except OSError:
        return
    now = time.time()
    for tmp in leftovers:
        pid = tmp.name[len(path.name) + 1 :].split("-", 1)[0]
        try:
            stale = now - tmp.stat().st_mtime > STALE_TEMP_SECONDS
            if not (pid.isdigit() and stale and not _alive(int(pid))):
                continue
            if tmp.is_dir():  # atomic_dir's
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except OSError:
            continue  # gone already, or not ours to remove: the write itself goes on


def atomic_write(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace `path` with `data` atomically (temp file, fsync, rename)."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    atomic_write_with(path, lambda fh: fh.write(raw))


def atomic_write_with(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Replace `path` with whatever `write(fh)` writes to a binary file handle, atomically."""
    path = Path(path)
    tmp = _beside(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_path(path: str | Path, write: Callable[[Path], object]) -> None:
    """Replace `path` with a file that `write(tmp_path)` writes by name (FAISS, a checksummed assembly),
    atomically. If `write` raises, the temp file is removed and `path` is untouched."""
    path = Path(path)
    tmp = _beside(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_lines(path: str | Path, lines: Iterator[str] | list[str]) -> None:
    """Replace a text file (JSONL, say) with `lines` (each without its newline), atomically."""
    atomic_write_with(path, lambda fh: fh.writelines((line + "\n").encode("utf-8") for line in lines))


def fsync_file(path: str | Path) -> None:
    """fsync a file some library wrote by name (FAISS, safetensors) before it is renamed into place."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Fill a folder that appears at `target` whole or not at all.

        with atomic_dir(kb / "models" / name) as tmp:
            model.save_pretrained(tmp)

    The body writes into a fresh temp folder beside the target; on success the old target (if any) is
    removed and the temp folder renamed into its place; on an exception the temp folder is removed.
    """
    target = Path(target)
    tmp = _beside(target)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for f in tmp.rglob("*"):
        if f.is_file():
            fsync_file(f)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    _fsync_dir(target.parent)
