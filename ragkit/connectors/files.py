"""Files and folders: recursive discovery with hidden entries skipped and include/exclude globs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path

from ragkit.connectors.base import SourceItem
from ragkit.connectors.parsing import SUPPORTED_SUFFIXES, SourceOptions, parse_bytes
from ragkit.errors import ParseError, SourceError
from ragkit.types import Document


def _selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Glob filters on a path relative to the folder given ("drafts/*", "*.pdf"); exclude wins."""
    name = rel.rsplit("/", 1)[-1]

    def hit(patterns: Sequence[str]) -> bool:
        return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)

    return (not include or hit(include)) and not hit(exclude)


def discover_files(
    paths: Sequence[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Path], list[Path]]:
    """Expand files and folders (recursively, hidden entries skipped) into (supported, unsupported) files.

    include/exclude are glob patterns matched against the path relative to each folder and the file name.
    Raises SourceError for a path that does not exist or a folder without a single supported file.
    """
    supported: list[Path] = []
    unsupported: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"{raw}: no such file or folder")
        if path.is_file():
            (supported if path.suffix.lower() in SUPPORTED_SUFFIXES else unsupported).append(path.resolve())
            continue
        found = [
            p.resolve()
            for p in sorted(path.rglob("*"))
            if p.suffix.lower() in SUPPORTED_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            and _selected(p.relative_to(path).as_posix(), include, exclude)
            and p.is_file()
        ]
        if not found:
            kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise SourceError(f"{raw}: no supported files in this folder (looked for {kinds})")
        supported.extend(found)
    # the same file named twice (or via two folders) is ingested once
    return list(dict.fromkeys(supported)), unsupported


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc


def parse_file(path: Path, data: bytes | None = None, options: SourceOptions | None = None) -> Document:
    """Parse one file into a Document (uri = its absolute path). Raises ParseError with a reason."""
    path = Path(path)
    data = read_file(path) if data is None else data
    try:
        st = path.stat()
        meta = {"size": st.st_size, "mtime": st.st_mtime}
    except OSError:
        meta = {"size": len(data), "mtime": 0.0}
    return parse_bytes(
        data, uri=str(path), name=path.name, suffix=path.suffix, options=options or SourceOptions(), meta=meta
    )


class FileConnector:
    """A file or a folder on disk."""

    def __init__(self, source: str | Path, options: SourceOptions) -> None:
        self.path = Path(source).expanduser()
        self.options = options
        self.include, self.exclude = options.include, options.exclude
        self.scope = str(self.path.resolve()).rstrip("/") + "/" if self.path.is_dir() else None
        self.unsupported: list[str] = []

    def items(self) -> Iterator[SourceItem]:
        files, unsupported = discover_files([self.path], self.include, self.exclude)
        self.unsupported = [str(p) for p in unsupported]
        for path in files:
            try:
                st = path.stat()
            except OSError:
                st = None  # vanished or unreadable: read() reports why
            yield SourceItem(
                uri=str(path),
                name=path.name,
                size=st.st_size if st else 0,
                mtime=st.st_mtime if st else 0.0,
                read=lambda p=path: read_file(p),  # type: ignore[misc]
                parse=lambda data, p=path: parse_file(p, data, self.options),  # type: ignore[misc]
                local=(path, self.options),
            )
