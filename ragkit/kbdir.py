"""The knowledge base directory: its files, manifest, writer lock and fine-tuned adapters (DESIGN.md §4)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError, KnowledgeBaseError, ModelError
from ragkit.fsutil import atomic_write, storage_errors

FORMAT_VERSION = 1
ADAPTER_FILE = "adapter_config.json"  # what PEFT writes: a folder holding it is an adapter


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

    @property
    def models(self) -> Path:
        """kb/models: one folder per fine-tuned adapter."""
        return self.root / "models"

    @property
    def runs(self) -> Path:
        """kb/runs: one folder per evaluation run."""
        return self.root / "runs"

    @property
    def uploads(self) -> Path:
        """kb/uploads: documents uploaded through ragkit serve (the only documents kept inside a KB)."""
        return self.root / "uploads"

    def is_kb(self) -> bool:
        """Whether root is a knowledge base folder (its manifest and config are there)."""
        return self.manifest.is_file() and self.config.is_file()

    def holds_own_file(self, uri: str) -> bool:
        """Whether uri is a file ragkit keeps in this KB (manifest, database, runs, models), not an upload."""
        root = str(self.root).rstrip("/") + "/"
        return uri.startswith(root) and not uri.startswith(str(self.uploads) + "/")

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


def check_database_file(paths: KbPaths, manifest: dict[str, Any], database_url: str | None) -> None:
    """Refuse to open a KB whose own ragkit.db vanished while manifest.json records documents: opening it would
    create an empty database, and a repair would then drop every vector. Other databases are not checked here."""
    if database_url is not None or paths.database.exists():
        return
    counts = manifest.get("counts") or {}
    docs, chunks = int(counts.get("documents") or 0), int(counts.get("chunks") or 0)
    if docs or chunks or int(counts.get("failed_documents") or 0):
        raise KnowledgeBaseError(
            f"{paths.database} is missing, but manifest.json records {docs} documents and {chunks} chunks; "
            f"restore ragkit.db from a backup, or ingest again into a new --kb directory"
        )


def new_manifest(embedder: Any, index_spec: str, chunking: dict[str, Any], version: str) -> dict[str, Any]:
    """The manifest of a new, empty KB: the embedder it is built with (name, dim, max_tokens) and its settings."""
    return {
        "embedder": {"name": embedder.name, "dim": embedder.dim, "max_tokens": embedder.max_tokens},
        "index": {"spec": index_spec},
        "chunking": chunking,
        "counts": {"documents": 0, "chunks": 0, "failed_documents": 0},
        "ragkit_version": version,
    }


def write_manifest(paths: KbPaths, data: dict[str, Any]) -> None:
    """Write manifest.json atomically."""
    atomic_write(paths.manifest, json.dumps({"format_version": FORMAT_VERSION, **data}, indent=2, sort_keys=True))


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
        self._fh = fh
        with contextlib.suppress(OSError):  # who holds it, for the message above; unbuffered: a full disk
            os.ftruncate(fh.fileno(), 0)  # leaves nothing to flush later
            os.pwrite(fh.fileno(), str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fh.fileno(), 0)
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


@contextmanager
def writing(paths: KbPaths) -> Iterator[None]:
    """The writer lock held; a full or read-only disk met inside is raised as one StorageError that says what to do."""
    with storage_errors(paths.root), WriterLock(paths):
        yield


# -- fine-tuned adapters under kb/models/ ----------------------------------------------------------------


@dataclass(frozen=True)
class AdapterInfo:
    """One fine-tuned adapter in kb/models/: what `ragkit models` lists."""

    name: str
    path: str
    created: str | None
    base_model: str | None
    steps: int | None
    interrupted: bool
    examples: int | None
    bytes: int
    comparison: dict[str, Any] | None  # before/after headline metrics, when they were measured

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def models_dir(kb_root: Path) -> Path:
    """kb/models: one folder per fine-tuned adapter."""
    return KbPaths(Path(kb_root)).models


def resolve_adapter(kb_root: Path, spec: str, base_model: str | None = None) -> Path:
    """The adapter folder for generator.adapter: a name under kb/models/ or a path to an adapter folder.

    Raises ModelError when there is none, and ConfigError when it was trained on another base model.
    """
    named = models_dir(kb_root) / spec
    path = _adapter_path(kb_root, spec)
    if not (path / ADAPTER_FILE).exists():
        names = [m.name for m in list_adapters(kb_root)]
        hint = f"; fine-tuned models in this KB: {', '.join(names)}" if names else "; make one with: ragkit finetune"
        raise ModelError(f"no fine-tuned model {spec!r} (no {ADAPTER_FILE} in {named} or {path}){hint}")
    info = read_json(path / "finetune.json")
    trained_on = info.get("base_model")
    if base_model and trained_on and trained_on != base_model:
        raise ConfigError(
            f"adapter {spec!r} was trained on {trained_on!r} but generator.model is {base_model!r}; "
            "use that model or fine-tune again"
        )
    return path.resolve()


def is_adapter_name(kb_root: Path, name: str) -> bool:
    """Whether kb/models/NAME is a folder (an adapter made by `ragkit finetune`, perhaps unfinished), or NAME is
    a folder holding an adapter (one trained in another KB): what resolve_adapter accepts."""
    return (models_dir(kb_root) / name).is_dir() or (Path(name).expanduser() / ADAPTER_FILE).is_file()


def _adapter_path(kb_root: Path, spec: str) -> Path:
    """kb/models/SPEC when that holds an adapter, else SPEC as a path (which may hold none)."""
    named = models_dir(kb_root) / spec
    return named if (named / ADAPTER_FILE).exists() else Path(spec).expanduser()


def adapter_base_model(kb_root: Path, spec: str) -> str | None:
    """The generator.model an adapter (a name under kb/models/ or a folder) was trained on; None if unknown."""
    base = read_json(_adapter_path(kb_root, spec) / "finetune.json").get("base_model")
    return str(base) if base else None


def list_adapters(kb_root: Path) -> list[AdapterInfo]:
    """The fine-tuned adapters in kb/models/, oldest first."""
    root = models_dir(kb_root)
    out: list[AdapterInfo] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not (d / ADAPTER_FILE).exists():
            continue
        info = read_json(d / "finetune.json")
        data = read_json(d / "data.json")
        training = info.get("training", {})
        out.append(
            AdapterInfo(
                name=d.name,
                path=str(d),
                created=info.get("created"),
                base_model=info.get("base_model"),
                steps=training.get("steps"),
                interrupted=training.get("interrupted", False),
                examples=data.get("examples", {}).get("total"),
                bytes=sum(p.stat().st_size for p in d.rglob("*") if p.is_file()),
                comparison=read_json(d / "comparison.json").get("metrics"),
            )
        )
    return sorted(out, key=lambda m: str(m.created or ""))


def list_models(kb_root: Path) -> list[dict[str, Any]]:
    """list_adapters as JSON-ready dicts (the shape `ragkit models --json` prints)."""
    return [a.to_json() for a in list_adapters(kb_root)]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing or unreadable (optional bookkeeping files)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
