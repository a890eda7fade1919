"""The knowledge base directory: its files, manifest and writer lock (DESIGN.md §4)."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkit.errors import KnowledgeBaseError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class KbPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "ragkit.toml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def database(self) -> Path:
        return self.root / "ragkit.db"

    @property
    def index(self) -> Path:
        return self.root / "index.faiss"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def exists(self) -> bool:
        return self.manifest.exists()


def read_manifest(paths: KbPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise KnowledgeBaseError(f"cannot read {paths.manifest}: {exc}") from exc
    if data.get("format_version") != FORMAT_VERSION:
        raise KnowledgeBaseError(
            f"{paths.root} has KB format {data.get('format_version')}, this ragkit reads {FORMAT_VERSION}; "
            "re-ingest into a new --kb directory"
        )
    return data


def write_manifest(paths: KbPaths, data: dict[str, Any]) -> None:
    """Write manifest.json atomically."""
    tmp = paths.manifest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, **data}, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, paths.manifest)


class WriterLock:
    """One writer per KB: an exclusive flock on kb/.lock, released by the OS if the process dies."""

    def __init__(self, paths: KbPaths) -> None:
        self._path = paths.lock
        self._fh: Any = None

    def __enter__(self) -> WriterLock:
        fh = open(self._path, "a+")  # noqa: SIM115 - held for the lifetime of the lock
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise KnowledgeBaseError(
                f"knowledge base {self._path.parent} is locked by PID {holder} (an ingest is running); "
                "wait for it to finish"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
