"""Files and folders -> Documents.

Parser per format, with engine="auto" (the default):
- DOCX, PPTX, XLSX, CSV/TSV, e-mail (.eml): `unstructured` (kept offline, see _unstructured.py); tables keep
  their rows, spreadsheet sheets and slide numbers become sections and pages;
- JSON/JSONL: one element per record, from a text field the user names;
- Markdown, HTML, plain text: the light parsers in light.py, 100-300x faster than unstructured, whose spaCy
  pass per element would otherwise bound ingest throughput (docs/benchmarks.md); engine="unstructured" sends
  them through unstructured too;
- PDF: pypdf, one element per paragraph with its page number. unstructured's `pdf` extra pulls a torchvision
  that breaks beside the local torch build, and its hi_res strategy needs a hub model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatch
from pathlib import Path

from ragkit.connectors._unstructured import ensure_offline_unstructured
from ragkit.connectors.light import RawElement, html_elements, markdown_elements, text_elements
from ragkit.errors import ParseError, SourceError
from ragkit.types import Document, Element

# plain formats: light parsers by default, unstructured with engine="unstructured"
_TEXT_KINDS = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",  # unstructured's rst partitioner needs pandoc; the text parser knows RST headings
}
# office and mail formats: always unstructured
_UNSTRUCTURED_KINDS = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "tsv", ".eml": "eml"}
SUPPORTED_SUFFIXES = frozenset({*_TEXT_KINDS, *_UNSTRUCTURED_KINDS, ".pdf", ".json", ".jsonl"})


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


def _partitioner(kind: str):  # type: ignore[no-untyped-def]
    import importlib

    module, func = {
        "docx": ("docx", "partition_docx"),
        "pptx": ("pptx", "partition_pptx"),
        "xlsx": ("xlsx", "partition_xlsx"),
        "csv": ("csv", "partition_csv"),
        "tsv": ("tsv", "partition_tsv"),
        "eml": ("email", "partition_email"),
        "md": ("md", "partition_md"),
        "html": ("html", "partition_html"),
        "text": ("text", "partition_text"),
    }[kind]
    return getattr(importlib.import_module(f"unstructured.partition.{module}"), func)


def _unstructured_elements(path: Path, kind: str, data: bytes) -> list[RawElement]:
    ensure_offline_unstructured()
    partition = _partitioner(kind)
    text_kind = kind in ("md", "html", "text")  # decoded by ragkit, so mis-encoded files get the same handling
    elements = partition(text=_decode(data, path)) if text_kind else partition(filename=str(path))
    out: list[RawElement] = []
    if kind == "eml":
        from email.parser import BytesParser

        subject = BytesParser().parsebytes(data, headersonly=True).get("Subject")
        if subject:
            out.append((str(subject), "Title", None))
    sheet = None
    for e in elements:
        meta = e.metadata
        page = getattr(meta, "page_number", None)
        if kind == "xlsx" and getattr(meta, "page_name", None) and meta.page_name != sheet:
            sheet = meta.page_name
            out.append((f"Sheet {sheet}", "Title", page))  # each sheet becomes a section
        text = str(e)
        html = getattr(meta, "text_as_html", None)
        if e.category == "Table" and html:
            # "item | price" rows keep a table's structure, which the flattened "item price widget 3.5" loses
            text = "\n".join(t for t, _, _ in html_elements(html)) or text
        if e.category != "PageBreak":
            out.append((text, e.category, page))
    return out


def _json_elements(path: Path, data: bytes, field: str) -> list[RawElement]:
    """One element per record that has `field` (JSON: an object or a list of objects; JSONL: one per line)."""
    text = _decode(data, path)
    try:
        if path.suffix.lower() == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            loaded = json.loads(text)
            records = loaded if isinstance(loaded, list) else [loaded]
    except json.JSONDecodeError as exc:
        raise ParseError(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    out: list[RawElement] = []
    for record in records:
        value = record.get(field) if isinstance(record, dict) else None
        if isinstance(value, str) and value.strip():
            title = record.get("title") or record.get("id")
            if isinstance(title, (str, int)):
                out.append((str(title), "Title", None))
            out.append((value, "NarrativeText", None))
    if not out:
        raise ParseError(f"{path.name}: no record has a text field {field!r} (set ingest.json_text_field)")
    return out


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


def parse_file(path: Path, data: bytes | None = None, engine: str = "auto", json_field: str = "text") -> Document:
    """Parse one file into a Document. Raises ParseError with a reason for anything unreadable.

    engine: "auto" (light parsers for Markdown/HTML/text) or "unstructured" (it parses those too).
    json_field: the field of each JSON/JSONL record that holds its text.
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
    elif suffix in (".json", ".jsonl"):
        parser = lambda: _json_elements(path, data, json_field)  # noqa: E731
    elif suffix in _UNSTRUCTURED_KINDS or engine == "unstructured":
        kind = _UNSTRUCTURED_KINDS.get(suffix) or _TEXT_KINDS[suffix]
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
