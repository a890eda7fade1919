"""Files and folders -> Documents.

Parser per format, with engine="auto" (the default):
- DOCX: `unstructured` (kept offline, see _unstructured.py);
- Markdown, HTML, plain text: the light parsers in light.py, 100-300x faster than unstructured, whose spaCy
  pass per element would otherwise bound ingest throughput (docs/benchmarks.md); engine="unstructured" sends
  them through unstructured too;
- PDF: pypdf, one element per paragraph with its page number. unstructured's `pdf` extra pulls a torchvision
  that breaks beside the local torch build, and its hi_res strategy needs a hub model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatch
from pathlib import Path

from ragkit.connectors._unstructured import ensure_offline_unstructured
from ragkit.connectors.light import RawElement, html_elements, markdown_elements, text_elements
from ragkit.errors import ParseError, SourceError
from ragkit.types import Document, Element

_TEXT_KINDS = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
}
SUPPORTED_SUFFIXES = frozenset({*_TEXT_KINDS, ".docx", ".pdf"})


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


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data[:8192]:
        raise ParseError(f"{path.name}: binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise ParseError(f"{path.name}: not valid UTF-8 and no other text encoding fits") from None
        return str(best)


def _light_elements(path: Path, kind: str, data: bytes) -> list[RawElement]:
    text = _decode(data, path)
    if kind == "md":
        return markdown_elements(text)
    if kind == "html":
        return html_elements(text)
    return text_elements(text)


def _unstructured_elements(path: Path, kind: str, data: bytes) -> list[RawElement]:
    ensure_offline_unstructured()
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        elements = partition_docx(filename=str(path))
    else:
        text = _decode(data, path)
        if kind == "md":
            from unstructured.partition.md import partition_md

            elements = partition_md(text=text)
        elif kind == "html":
            from unstructured.partition.html import partition_html

            elements = partition_html(text=text)
        else:
            from unstructured.partition.text import partition_text

            elements = partition_text(text=text)
    return [(str(e), e.category, getattr(e.metadata, "page_number", None)) for e in elements]


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _pdf_elements(path: Path, data: bytes) -> list[RawElement]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ParseError(f"{path.name}: the PDF is encrypted; decrypt it first")
        out: list[RawElement] = []
        for page_no, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for para in _PARAGRAPH_BREAK.split(text):
                if para.strip():
                    out.append((para.strip(), "NarrativeText", page_no))
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise ParseError(f"{path.name}: not a readable PDF ({exc})") from exc
    if not out:
        raise ParseError(f"{path.name}: the PDF has no extractable text (a scan? OCR is not supported yet)")
    return out


def build_document(uri: str, raw: Iterable[RawElement], content_hash: str, meta: dict) -> Document:
    """Join raw elements into one text (paragraphs separated by a blank line) with offsets and sections."""
    parts: list[str] = []
    elements: list[Element] = []
    section: str | None = None
    pos = 0
    for text, kind, page in raw:
        text = text.strip()
        if not text:
            continue
        if kind == "Title":
            section = text[:200]
        if parts:
            pos += 2
        elements.append(Element(text=text, kind=kind, start=pos, end=pos + len(text), page=page, section=section))
        parts.append(text)
        pos += len(text)
    return Document(uri=uri, text="\n\n".join(parts), elements=tuple(elements), content_hash=content_hash, meta=meta)


def content_hash(data: bytes) -> str:
    """sha256 hex digest of a source's raw bytes."""
    return hashlib.sha256(data).hexdigest()


def parse_file(path: Path, data: bytes | None = None, engine: str = "auto") -> Document:
    """Parse one file into a Document. Raises ParseError with a reason for anything unreadable.

    engine: "auto" (light parsers for Markdown/HTML/text, unstructured for DOCX) or "unstructured".
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ParseError(f"{path.name}: unsupported file type {suffix or '(none)'}")
    try:
        data = path.read_bytes() if data is None else data
    except OSError as exc:
        raise ParseError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ParseError(f"{path.name}: empty file")
    parser: Callable[[], list[RawElement]]
    if suffix == ".pdf":
        parser = lambda: _pdf_elements(path, data)  # noqa: E731
    elif suffix == ".docx" or engine == "unstructured":
        kind = "docx" if suffix == ".docx" else _TEXT_KINDS[suffix]
        parser = lambda: _unstructured_elements(path, kind, data)  # noqa: E731
    else:
        parser = lambda: _light_elements(path, _TEXT_KINDS[suffix], data)  # noqa: E731
    try:
        raw = parser()
    except ParseError:
        raise
    except Exception as exc:  # parsers raise anything from zipfile.BadZipFile to lxml errors on bad input
        raise ParseError(f"{path.name}: cannot parse ({type(exc).__name__}: {exc})") from exc
    stat = path.stat()
    doc = build_document(str(path), raw, content_hash(data), {"size": stat.st_size, "mtime": stat.st_mtime})
    if not doc.text:
        raise ParseError(f"{path.name}: no text found")
    return doc
