"""Files and folders: recursive discovery with hidden entries skipped and include/exclude globs."""

from __future__ import annotations

import errno
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path

from ragkit.connectors.base import SourceItem
from ragkit.connectors.parsing import (
    SUPPORTED_SUFFIXES,
    SourceOptions,
    is_supported,
    parse_bytes,
    parser_version,
    source_suffix,
)
from ragkit.errors import ParseError, SourceError
from ragkit.kbdir import KbPaths
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
    Raises SourceError for a path that does not exist or a folder without a single supported file. What a
    folder holds but cannot be read (see `discover`) is left out here.
    """
    supported, unsupported, _ = discover(paths, include, exclude)
    return supported, unsupported


def discover(
    paths: Sequence[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    others: Counter[str] | None = None,
) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """discover_files, plus (path, why) for each entry inside the folders that was skipped: an unreadable
    folder, a broken link, a link loop, a link to a folder (not followed, so no cycle)."""
    supported: list[Path] = []
    unsupported: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"{raw}: {_why_missing(path)}")
        if path.is_file():
            (supported if is_supported(source_suffix(path.name)) else unsupported).append(path.resolve())
            continue
        found, problems = _walk(path, include, exclude, others)
        if not found:
            if problems and problems[0][0] == str(path.absolute()):
                raise SourceError(f"{raw}: {problems[0][1]}")
            if include and _walk(path, (), exclude)[0]:  # files are there; the --include patterns matched none
                shown = " ".join(f"--include '{p}'" for p in include)
                raise SourceError(f"{raw}: no file in this folder matches {shown}")
            kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise SourceError(f"{raw}: no supported files in this folder (looked for {kinds}, each also gzipped)")
        supported.extend(found)
        skipped.extend(problems)
    # the same file named twice (or via two folders) is ingested once
    return list(dict.fromkeys(supported)), unsupported, skipped


def _why_missing(path: Path) -> str:
    """Why a path that does not exist as a file or folder cannot be read: a broken link, a link loop, or absent."""
    if not path.is_symlink():
        return "no such file or folder"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 says "Symlink loop"
        return "symlink loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
    return "no such file or folder"


def _walk(
    folder: Path, include: Sequence[str], exclude: Sequence[str], others: Counter[str] | None = None
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under a folder (sorted), and what was skipped with why; `others` counts the files of
    types ragkit does not read by suffix. Hidden entries are skipped quietly."""
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    root = folder.absolute()

    def unreadable(exc: OSError) -> None:
        problems.append((str(exc.filename or root), f"cannot read folder ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        kb = KbPaths(here)
        if kb.is_kb():  # `ingest . --kb ./kb`: a KB's own files are no sources; its uploads are
            dirnames[:] = [d for d in dirnames if here / d == kb.uploads]
            continue
        for d in dirnames:
            if (here / d).is_symlink():  # os.walk lists it but does not enter it
                problems.append((str(here / d), "a link to a folder, not followed (give its target as a source)"))
        for name in sorted(filenames):
            p = here / name
            rel = p.relative_to(root).as_posix()
            if name.startswith(".") or not _selected(rel, include, exclude):
                continue
            if not is_supported(suffix := source_suffix(name)):
                if others is not None:
                    others[_kind(suffix)] += 1
                continue
            if p.is_file():
                found.append(p.resolve())
            elif p.is_symlink():
                problems.append((str(p), _why_missing(p)))
    return sorted(found), problems


def _kind(suffix: str) -> str:
    """A suffix as the left-out note names it: any .gz as ".gz", a name's last dotted part that is no file type
    ("v2.38-ReleaseNotes") as none."""
    if suffix.endswith(".gz"):
        return ".gz"
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def left_out(others: Counter[str]) -> str:
    """The note for a folder's files of types ragkit does not read: "left out 57 files of types ragkit does not
    read (54 .gz, 2 .png, 1 without a suffix)"; a gzipped file counts as .gz when its inner type is unknown."""
    ranked = sorted(others.items(), key=lambda kv: (-kv[1], kv[0] == "", kv[0]))[:5]  # ties: by name, "" last
    kinds = [f"{n} {suffix or 'without a suffix'}" for suffix, n in ranked]
    more = " and more" if len(others) > 5 else ""
    total = sum(others.values())
    return f"left out {total} file{'s' * (total != 1)} of types ragkit does not read ({', '.join(kinds)}{more})"


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
        data,
        uri=str(path),
        name=path.name,
        suffix=source_suffix(path.name),
        options=options or SourceOptions(),
        meta=meta,
    )


class FileConnector:
    """A file or a folder on disk."""

    def __init__(self, source: str | Path, options: SourceOptions) -> None:
        self.path = Path(source).expanduser()
        self.options = options
        self.include, self.exclude = options.include, options.exclude
        self.scope = str(self.path.resolve()).rstrip("/") + "/" if self.path.is_dir() else None
        self.unsupported: list[str] = []
        self.skipped: list[tuple[str, str]] = []  # (path, why): unreadable folders, broken links, link loops
        self.left_out: list[tuple[str, str]] = []  # (folder, note): files inside of types ragkit does not read

    def items(self) -> Iterator[SourceItem]:
        others: Counter[str] = Counter()
        files, unsupported, skipped = discover([self.path], self.include, self.exclude, others)
        self.unsupported = [str(p) for p in unsupported]
        self.skipped = skipped
        self.left_out = [(str(self.path), left_out(others))] if others else []
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
                parser=parser_version(source_suffix(path.name), self.options),
            )
