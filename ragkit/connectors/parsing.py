"""Bytes -> Document, by format. Connectors (files, web, SQL) fetch bytes; this turns them into elements.

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

import io
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace

from ragkit.connectors._unstructured import ensure_offline_unstructured
from ragkit.connectors.compressed import GZIP, gunzip
from ragkit.connectors.debcopyright import dep5_elements, is_dep5
from ragkit.connectors.document import build_document, content_hash
from ragkit.connectors.info import SPLIT_PART, info_text, without_markers
from ragkit.connectors.light import RawElement, html_elements, markdown_elements, text_elements
from ragkit.connectors.mdoc import is_mdoc, mdoc_elements
from ragkit.connectors.pdf import pdf_elements
from ragkit.connectors.pod import pod_elements, pod_text
from ragkit.connectors.records import json_elements
from ragkit.connectors.rendered_man import is_rendered_man, rendered_man_elements, without_overstrikes
from ragkit.connectors.roff import MAN_SECTION, man_elements
from ragkit.errors import ParseError
from ragkit.types import GENERIC_TEXT_NAMES, PARSER_META, Document

# pypdf logs warnings about damaged files ("EOF marker not found"); with no handler configured, Python would
# print them to stderr. The reason reaches the user through ParseError instead; an application that sets up
# logging still receives the records (they propagate to its handlers).
logging.getLogger("pypdf").addHandler(logging.NullHandler())


_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-f]+>")


@dataclass(frozen=True)
class SourceOptions:
    """How connectors read sources (ingest builds it from the config's [ingest] section)."""

    engine: str = "auto"  # "auto" or "unstructured"
    json_field: str = "text"  # the field of each JSON/JSONL record that holds its text
    max_bytes: int = 100_000_000  # larger files and responses are reported and skipped
    timeout_s: float = 20.0  # per URL
    include: tuple[str, ...] = ()  # globs for folders
    exclude: tuple[str, ...] = ()


# plain formats: light parsers by default, unstructured with engine="unstructured"
_TEXT_KINDS = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",  # XHTML is HTML to lxml's HTML parser (html_elements silences bs4's XMLParsedAsHTMLWarning)
    ".xht": "html",
    ".txt": "text",
    ".text": "text",
    ".rst": "rst",  # unstructured's rst partitioner needs pandoc; the text parser knows RST headings
    ".info": "info",  # GNU Info manuals: plain text once their navigation is left out (connectors/info.py)
    ".man": "man",  # manual pages, "tar.1" (connectors/roff.py); source_suffix names every section ".man"
    ".pod": "pod",  # Perl's documentation (connectors/pod.py)
    ".pm": "pod",  # a Perl module: the POD inside it, not its code
}
# formats only ragkit reads (unstructured would read their markup as text)
_OWN_READERS = frozenset({".man", ".pod", ".pm"})
# office and mail formats: always unstructured
_UNSTRUCTURED_KINDS = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "tsv", ".eml": "eml"}
SUPPORTED_SUFFIXES = frozenset({*_TEXT_KINDS, *_UNSTRUCTURED_KINDS, ".pdf", ".json", ".jsonl"})


# the plain-text files a project or a distribution ships without a suffix: "README", "NEWS.gz",
# "changelog.Debian.gz", util-linux's "v2.38-ReleaseNotes.gz"
_NAMED_TEXT = re.compile(rf"(?:{GENERIC_TEXT_NAMES}|(?:.*[-_.])?release-?notes)(?:\.(?:debian|source|txt))?")


def source_suffix(name: str) -> str:
    """The suffix that picks a file's parser, lower-cased: ".md" for "news.md", ".md.gz" for "news.md.gz" (a
    gzipped Markdown file), ".txt" for a plain-text file known by its name ("README", "NEWS.Debian"), "" for none.
    Supported when in SUPPORTED_SUFFIXES or a supported suffix + ".gz"."""
    base = name.lower().rsplit("/", 1)[-1]
    plain = base.removesuffix(GZIP)
    if _NAMED_TEXT.fullmatch(plain):
        return ".txt" + (GZIP if plain != base else "")
    parts = base.split(".")
    suffix = f".{parts[-1]}" if len(parts) > 1 else ""
    if suffix == GZIP and len(parts) > 2:
        return _normal(f".{parts[-2]}") + GZIP
    return _normal(suffix)


def _normal(suffix: str) -> str:
    """ "find.info-2" (a part of a split Info manual) is Info; "tar.1", "openssl.1ssl" are manual pages."""
    return ".man" if MAN_SECTION.match(suffix) else SPLIT_PART.sub(r"\1", suffix)


def is_supported(suffix: str) -> bool:
    """True when source_suffix's `suffix` names a format ragkit reads, gzipped or not."""
    suffix = suffix.lower()
    return suffix.removesuffix(GZIP) in SUPPORTED_SUFFIXES if suffix.endswith(GZIP) else suffix in SUPPORTED_SUFFIXES


# the light parsers' output version per suffix, for formats whose output changed since a KB may have read them
# (ingest re-parses a stored document read by an older version, even when the file is unchanged; the embedding
# cache keeps that to parsing).
# - html 2: a definition list's term and definition are one element, and a <dd><p> paragraph is read once, not
#   twice; html 3: a heading's permalink ("#", "¶") is not part of its title; html 4: nor is a defined term's, and
#   a manual's navigation (role="navigation", Texinfo's "Next: ..., Up: ..." links) is left out; html 5: text
#   straight in a <div> is read ("Added in: v20.17.0" in Node's pages was lost); html 6: DocBook's navigation
#   tables and tables of contents are left out, and a layout table (an old site's page, DocBook's Q and A) is read
#   as the page's blocks, a question row as a title; html 7: a button's label is no text, spans side by side in a
#   div and code blocks side by side in a pre do not run together (Node's "v0.7.5Deprecated since: v6.0.0").
# - Markdown and text 2: base64 data URIs are left out of the text, and text files with a UTF-16 or UTF-32
#   byte-order mark are read (they were "binary content"); text 3: an indented line is never a title (nor, for a
#   while, an unadorned line in a file that underlines its headings; text 4 undoes that: Git's release notes
#   head their lists with unadorned lines). Markdown 3: a `<!-- YAML -->` comment's version history
#   is read ("Added in: v20.17.0.", Node's API docs); md 5: after md 4 named the API in that line for a
#   while, back to Node's own words.
# - rst 3: only underlined headings are titles (".. versionadded:: 3.19" was one), comments and link targets are
#   left out; rst 4: roles, literals and version directives read as Sphinx shows them (":command:`while`" ->
#   "`while`", ".. versionadded:: 3.24" -> "Added in version 3.24."), "include" and admonition lines left out.
# - md 6: MyST (Sphinx's Markdown): "```{versionadded} 6.0```" -> "Added in version 6.0.", a "{tab}" block's label
#   above its body, roles as their title or target, "(target)=" lines left out; rst 5: ".. tab:: Unix/macOS"
#   keeps its label too; text 5: a line of one repeated punctuation mark ("-----") is a rule between records,
#   not a section title; text 6: a Debian machine-readable copyright file is read by its stanzas
#   (connectors/debcopyright.py); text 7: a manual page saved as `man` prints it is read by its layout, entries
#   and sections (connectors/rendered_man.py), and a terminal's overstrikes ("N\bNA\bA", bold "NA") are read as
#   the characters they print; text 8: such a page whose long name overlaps its header, or whose flags stand over
#   a blank line before their text (Google Cloud SDK's), or whose entries each fit their line, is read so too.
# - man 2: a bullet (".IP \(bu 4") is no item's tag (one-line bullets were stacked as tags and lost), "\." is a
#   full stop (ronn's pages), tbl tables are read as rows, not as their layout lines.
# - man 3: "\t" is a tab, not nothing (unzip's "v6.0\t20 Apr 09" read "v6.020 Apr 09").
# - man 4: strings are read: ".ds n mawk" then "\*n" (every "mawk" of mawk's page was dropped), pod2man's "\*(Aq"
#   apostrophe ("doesnt") and terminal quotes; a text line opening with a string stays text (perf's pages lost
#   such lines); pod2man's ".el\{" troff branch is skipped. 297 of the 17,581 pages of man1 read differently.
#   Versions 2 and 3 never reached a KB's stored pages (parser_version did not know ".man"); 4 does.
# - man 5: a line opening with "\.B" is the request ".B", as groff reads it (find's page showed ".B -perm +MODE");
#   accented letters and Unicode glyphs ("\[:u]", "\[u00FC]") print as groff prints them (patch's "Grnbacher").
# - man 6: "\:" (a break point) prints nothing, and a link's address (".UR", ".MT") has its escapes read (ps's
#   author read "lankeste@\:fwi.\:uva.\:nl", which a held-out answer quoted).
# - man 7: DocBook's definition list (".PP", the terms, ".RS 4", the text) is an entry, tag over text, as ".TP"
#   is (git's, PostgreSQL's and D-Bus's pages: a chunk ended on a term whose text opened the next chunk).
# - man 8: Asciidoctor's entries (DocBook's, opened by ".sp"), its ".URL"/".MTO" links and "\(at" are read
#   (util-linux's pages lost their authors and bug trackers).
# - man 9: a backslash ending a line continues it (pod2man's preamble printed "\" and ran troff-only requests).
# - man 10: BSD mdoc pages are read (connectors/mdoc.py: OpenSSH's, tmux's, dash's were skipped), and text between
#   ".ig" and ".." is left out, as roff ignores it (gzip's pages printed their licence notes), and so are macros
#   defined with ".de1" or appended to with ".am" (rst2man's preamble printed "\$1 \n[an-margin] level ..." on
#   Sphinx's and docutils' pages: LLVM's, CMake's, ctags').
# - man 11: ".ie n .IP tag" runs its request, the terminal's branch (pod2man's items named in code: half of
#   objdump's option entries lost their tags and were glued to the paragraph before them).
_MAN_VERSION = 11
# - info 2, pod 2: their parsers' output changed after they were added (an index node's reader markers are no
#   text; a POD text item heads its entry, "=item o" is a tag) without a version, so stored manuals kept the old
#   reading; 2 re-reads them once (found in the twenty-ninth session with the ".man" gap above).
# - pod 3: a link to a URL keeps its URL, "text <url>", as pod2text prints it (CPAN's Meta spec lost its addresses).
_PARSER_VERSIONS = {
    ".info": 2,
    ".pod": 3,
    ".pm": 3,
    ".html": 7,
    ".htm": 7,
    ".xhtml": 7,
    ".xht": 7,
    ".md": 6,
    ".markdown": 6,
    ".txt": 8,
    ".text": 8,
    ".rst": 5,
}


def parser_version(suffix: str, options: SourceOptions) -> int:
    """The version of the parser that reads files ending in `suffix` under `options` (1 for most)."""
    if options.engine == "unstructured":
        return 1
    plain = suffix.lower().removesuffix(GZIP)
    # source_suffix names every manual page ".man" ("tar.1" -> ".man"): without it, man 2-4 never re-read a page
    return _MAN_VERSION if plain == ".man" or MAN_SECTION.match(plain) else _PARSER_VERSIONS.get(plain, 1)


# what parsing the current document noticed but did not fail on (a guessed encoding, records without text);
# parse_bytes collects them into Document.notes, which ingest reports
_NOTES: ContextVar[list[str] | None] = ContextVar("ragkit_parse_notes", default=None)


def _note(message: str) -> None:
    notes = _NOTES.get()
    if notes is not None:
        notes.append(message)


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file -> str: UTF-8 (with or without BOM), else Windows-1252 when it reads as Western
    European text (the usual non-UTF-8 file; charset_normalizer misreads short ones as Central European), else
    the most likely other encoding. A non-UTF-8 file gets a note naming the encoding used."""
    for bom, codec in _UNICODE_BOMS:  # UTF-32 first: its little-endian mark starts with UTF-16's
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ParseError(f"{name}: starts with a {codec.upper()} byte-order mark but is not {codec}") from exc
    if b"\x00" in data[:8192]:
        raise ParseError(f"{name}: binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    western = _as_western(data)
    if western is not None:
        _note("not UTF-8; read as Windows-1252 (Western European)")
        return western
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ParseError(f"{name}: not valid UTF-8 and no other text encoding fits") from None
    _note(f"not UTF-8; read as {best.encoding} (a guess: convert the file to UTF-8 if the text looks wrong)")
    return str(best)


# Windows tools (Notepad's "Unicode", PowerShell's > redirection) write UTF-16 with a byte-order mark
_UNICODE_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

# an image pasted into a Markdown note is a data URI of base64: one 300 KB image made 1,200 chunks of noise
_DATA_URI = re.compile(r"(data:[\w.+-]*/?[\w.+-]*(?:;[\w.+-]+=[^;,\s)\"']*)*;base64,)[A-Za-z0-9+/=]{100,}")


def _without_data_uris(raw: list[RawElement]) -> list[RawElement]:
    """raw with each base64 data URI's payload replaced by "…" (the "data:image/png;base64," part stays), and
    a note of how much was left out."""
    left_out = count = 0
    out: list[RawElement] = []
    for text, kind, page in raw:
        if "base64," in text:
            for m in _DATA_URI.finditer(text):
                left_out += m.end() - m.end(1)
                count += 1
            text = _DATA_URI.sub(lambda m: m.group(1) + "…", text)
        out.append((text, kind, page))
    if count:
        size = f"{left_out:,} bytes" if left_out < 10_000 else f"{left_out // 1000:,} KB"
        _note(f"{count} embedded base64 data URI(s) ({size}) left out of the text")
    return out


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{4,}")


def _as_western(data: bytes) -> str | None:
    """data as Windows-1252 when that reads like Western European text: it decodes, has no control characters,
    and its non-ASCII letters are sparse accents inside mostly-ASCII words (Cyrillic or Greek bytes read this
    way give long runs of accented letters, and CJK encodings mostly fail to decode)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    letters = [c for c in text if c.isalpha()]
    accented = sum(1 for c in letters if ord(c) > 127)
    if not letters or accented > 0.3 * len(letters) or _NON_ASCII_RUN.search(text):
        return None
    return text


def _light_elements(name: str, kind: str, data: bytes) -> list[RawElement]:
    if kind == "pod":
        return pod_elements(pod_text(data, lambda raw: decode_text(raw, name)), name)
    text = decode_text(without_markers(data) if kind == "info" else data, name)
    if kind == "md":
        return markdown_elements(text)
    if kind == "man":
        return mdoc_elements(text, name) if is_mdoc(text) else man_elements(text, name)
    if kind == "html":
        return html_elements(text)
    if kind == "info":  # makeinfo underlines every heading: a short line alone is text ("Then", "'--unlink'")
        return text_elements(info_text(text), underlined=True)
    if kind == "text" and "\b" in text:  # `man ls > ls.txt` where man keeps its bold and underline as overstrikes
        text = without_overstrikes(text)
    if kind == "text" and is_dep5(text):
        return dep5_elements(text)
    if kind == "text" and is_rendered_man(text):
        return rendered_man_elements(text)
    return text_elements(text, rst=kind == "rst")


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
        "rst": ("text", "partition_text"),
        "info": ("text", "partition_text"),
    }[kind]
    return getattr(importlib.import_module(f"unstructured.partition.{module}"), func)


def _unstructured_elements(name: str, kind: str, data: bytes) -> list[RawElement]:
    ensure_offline_unstructured()
    partition = _partitioner(kind)
    text_kind = kind in ("md", "html", "text", "rst", "info")  # decoded by ragkit: mis-encoded files are handled alike
    if kind == "info":
        data = without_markers(data)
    text = info_text(decode_text(data, name)) if kind == "info" else decode_text(data, name) if text_kind else ""
    elements = partition(text=text) if text_kind else partition(file=io.BytesIO(data))
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


def parse_bytes(
    data: bytes, *, uri: str, name: str, suffix: str, options: SourceOptions, meta: dict | None = None
) -> Document:
    """Parse a source's bytes into a Document; suffix (".pdf", ".md", ...) picks the parser.

    name is used in messages. Raises ParseError with a reason for anything unreadable.
    """
    suffix = suffix.lower()
    if not is_supported(suffix):
        raise ParseError(f"{name}: unsupported file type {suffix or '(none)'}")
    if not data.strip():
        raise ParseError(f"{name}: empty file")
    if suffix.endswith(GZIP):
        data, suffix = gunzip(name, data, options.max_bytes), suffix.removesuffix(GZIP)
        if not data.strip():
            raise ParseError(f"{name}: empty file (once decompressed)")
    parser: Callable[[], list[RawElement]]
    if suffix == ".pdf":
        parser = lambda: pdf_elements(name, data)  # noqa: E731
    elif suffix in (".json", ".jsonl"):
        parser = lambda: json_elements(name, suffix, decode_text(data, name), options.json_field, _note)  # noqa: E731
    elif suffix in _UNSTRUCTURED_KINDS or (options.engine == "unstructured" and suffix not in _OWN_READERS):
        kind = _UNSTRUCTURED_KINDS.get(suffix) or _TEXT_KINDS[suffix]
        parser = lambda: _unstructured_elements(name, kind, data)  # noqa: E731
    else:
        parser = lambda: _light_elements(name, _TEXT_KINDS[suffix], data)  # noqa: E731
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        raw = _without_data_uris(parser())
    except ParseError:
        raise
    except Exception as exc:  # parsers raise anything from zipfile.BadZipFile to lxml errors on bad input
        detail = _OBJECT_REPR.sub("", str(exc)).rstrip(": ")  # "<_io.BytesIO object at 0x..>" says nothing
        raise ParseError(f"{name}: cannot parse ({type(exc).__name__}: {detail})") from exc
    finally:
        _NOTES.reset(token)
    version = parser_version(suffix, options)
    meta = {**(meta or {}), PARSER_META: version} if version > 1 else meta or {}
    doc = build_document(uri, raw, content_hash(data), meta)
    if not doc.text:
        raise ParseError(f"{name}: no text found")
    return replace(doc, notes=tuple(notes)) if notes else doc
