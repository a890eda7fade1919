"""A Document from a parser's raw elements: their text joined, made printable, with offsets and sections."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from ragkit.connectors.base import RawElement
from ragkit.types import Document, Element

# a raw element of this kind only names the section of the elements after it: a POD list's "=back" returns its
# entries' paragraphs to the heading above the list
SECTION = "Section"


# terminal escape sequences (CSI such as colours, OSC such as a window title), then any other C0 or C1 control
# character but tab and newline (a form feed, a page break in text files, becomes a newline): none is text,
# and a document's ESC would otherwise reach a terminal that prints its chunks
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


# typographic ligatures (a PDF's "ﬁle", "deﬁne") as their letters: neither keyword search nor the embedder's
# tokenizer reads "ﬁle" as "file"
_LIGATURES = str.maketrans({chr(c): unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)})


def _printable(text: str) -> str:
    text = text.translate(_LIGATURES)
    if not _CONTROL.search(text) and "\x0c" not in text:
        return text
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text)).replace("\x0c", "\n")


def build_document(uri: str, raw: Iterable[RawElement], content_hash: str, meta: dict) -> Document:
    """Join raw elements into one text (paragraphs separated by a blank line) with offsets and sections.
    Control characters are dropped (a form feed becomes a newline) and ligatures become their letters."""
    parts: list[str] = []
    elements: list[Element] = []
    section: str | None = None
    pos = 0
    for text, kind, page in raw:
        text = _printable(text).strip()
        if kind == SECTION:  # names the section of what follows, and is no text of its own
            section = text[:200] or None
            continue
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
