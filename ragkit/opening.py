"""Opening a knowledge base: read (or create) its folder, config and manifest, and build the facade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragkit import kbdir
from ragkit._version import __version__
from ragkit.access import Principal
from ragkit.api import KnowledgeBase
from ragkit.assets import default_generator, default_retrieval_mode
from ragkit.config import dump_config, load_config
from ragkit.errors import KnowledgeBaseError
from ragkit.fsutil import atomic_write
from ragkit.indexes.engine import check_same_database
from ragkit.kbdir import KbPaths


def open_kb(
    path: str | Path,
    *,
    create: bool = True,
    overrides: dict[str, Any] | None = None,
    principal: Principal | None = None,
) -> KnowledgeBase:
    """Open the knowledge base at `path`, creating it with defaults (plus overrides) if missing.

    overrides take dotted keys, e.g. {"generator.max_new_tokens": 64}. A new KB records its resolved config in
    ragkit.toml and its embedder's name and dimension in manifest.json. principal: who reads (ragkit.access).
    """
    root = Path(path).expanduser().resolve()
    paths = KbPaths(root)
    if paths.exists():
        manifest = kbdir.read_manifest(paths)
        config = load_config(paths.config, overrides)
        check_same_database(root, load_config(paths.config).database_url, config.database_url)
        kbdir.check_database_file(paths, manifest, config.database_url)
        return KnowledgeBase(root, config, manifest, principal)
    interrupted = _interrupted_creation(paths)  # raises while another process is creating it
    if root.exists() and not interrupted and (not root.is_dir() or any(root.iterdir())):  # with or without create
        raise KnowledgeBaseError(f"{path} is not a ragkit knowledge base (no manifest.json); choose another --kb")
    if not create:
        why = " (its creation was interrupted)" if interrupted else ""
        raise KnowledgeBaseError(f"no knowledge base at {path}{why}; create one with: ragkit ingest PATH --kb {path}")
    config = load_config(None, _with_default_retrieval(_with_default_generator(overrides or {})))
    root.mkdir(parents=True, exist_ok=True)
    # held until manifest.json exists: another process sees a creation under way, not a foreign folder, and a
    # creation killed before the end (Ctrl-C while the embedder loads) is recognised and redone by the next run
    with kbdir.WriterLock(paths):
        for name in interrupted:
            if name != ".lock":  # the file this lock holds
                (root / name).unlink(missing_ok=True)
        atomic_write(root / _CREATING, "")
        kb = KnowledgeBase(root, config, {}, principal)
        emb = kb.embedder  # loads the model once, so the manifest records the real dimension
        atomic_write(paths.config, dump_config(config))
        kb.manifest = kbdir.new_manifest(emb, config.index.spec, config.chunking.model_dump(), __version__)
        kbdir.write_manifest(paths, kb.manifest)
        (root / _CREATING).unlink()
    return kb


# a creation under way: removed once manifest.json is written
_CREATING = ".creating"
# what a creation writes before its manifest: its marker, the lock it holds, the SQLite database, the config
_CREATION_FILES = frozenset(
    {_CREATING, ".lock", "ragkit.db", "ragkit.db-wal", "ragkit.db-shm", "ragkit.db-journal", "ragkit.toml"}
)


def _interrupted_creation(paths: KbPaths) -> list[str]:
    """The files a killed creation left in paths.root (no manifest, its .lock free, nothing but creation files);
    [] when it is no such folder. Raises KnowledgeBaseError while another process holds the lock (creating)."""
    root = paths.root
    if not (root / _CREATING).is_file():
        return []
    names = [p.name for p in root.iterdir()]
    if any(n not in _CREATION_FILES and not n.endswith(".tmp") for n in names):
        return []  # someone else's files too: not ours to remove
    with kbdir.WriterLock(paths):  # raises "locked by PID n" while the creating process is alive
        pass
    return names


def _with_default_generator(overrides: dict[str, Any]) -> dict[str, Any]:
    """A new KB that names no generator gets the best bundled one installed (assets.default_generator); the
    choice is written to its ragkit.toml, so installing another model later does not change an existing KB."""
    if _named(overrides, "generator", "model") is not None or _named(overrides, "generator", "backend") is not None:
        return overrides
    return {**overrides, "generator.model": default_generator()}


def _named(overrides: dict[str, Any], section: str, key: str) -> Any:
    """The value overrides give SECTION.KEY, dotted or nested; None when they give none."""
    nested = overrides.get(section)
    return overrides.get(f"{section}.{key}", nested.get(key) if isinstance(nested, dict) else None)


def _with_default_retrieval(overrides: dict[str, Any]) -> dict[str, Any]:
    """A new KB that names no retrieval mode gets the one measured for its generator (assets.default_retrieval_mode:
    keyword search for Qwen 1.5B, hybrid otherwise), written to its ragkit.toml so search and ask agree on it. With
    keyword search it also gets `rescore = "entries"` unless it names a rescore (rule O, measured with the two)."""
    model = _named(overrides, "generator", "model")
    if _named(overrides, "retrieval", "mode") is not None or not isinstance(model, str):
        return overrides
    chosen = {"mode": default_retrieval_mode(model)}
    if chosen["mode"] == "keyword" and _named(overrides, "retrieval", "rescore") is None:
        chosen["rescore"] = "entries"
    nested = overrides.get("retrieval")
    if isinstance(nested, dict):  # one form per section: a dotted key beside a nested table would depend on order
        return {**overrides, "retrieval": {**nested, **chosen}}
    return {**overrides, **{f"retrieval.{key}": value for key, value in chosen.items()}}
